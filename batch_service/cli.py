"""`batchhub`: submit and follow batch jobs from a terminal with a hub API token.

    batchhub submit train.ipynb -p lr 0.01 --profile gpu-1 --time-limit 2h --follow
    batchhub submit pkg.zip --entry-point pkg -- --epochs 3
    batchhub list | show ID | logs ID [--follow] | cancel ID | release ID | download ID
    batchhub data upload ./cifar --name cifar | data list | data delete NAME
    batchhub sweep model.ipynb -g lr=0.1,0.01 -g layers=1:4 --max-parallel 4 --follow
    batchhub sweep results ID [--csv]

The hub's public URL comes from --url, else BATCHHUB_URL, else `url:` in the config file
(~/.config/batchhub.yaml, or $XDG_CONFIG_HOME/batchhub.yaml), else http://127.0.0.1:8000. The
token comes from --token, else JUPYTERHUB_API_TOKEN, else `token:` in the config file (read
only when nobody else may read the file: chmod 600). `-p NAME VALUE` reads the value as
papermill's CLI does; `-y NAME YAML` takes any YAML value (a list, a dict). A time limit is
written like on the Batch page: 90m, 2h, 1h30m, 3600s; a plain number means minutes.
After `--`, the arguments of a .py file or a zipped module (its sys.argv[1:]).
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from papermill.cli import _resolve_type

from batch_service.durations import DurationError, parse_duration

FINISHED = ("succeeded", "failed", "timed_out", "cancelled")
DEFAULT_URL = "http://127.0.0.1:8000"
CONFIG_KEYS = ("url", "token")
MAX_CONFIG_BYTES = 64 * 1024


class CliError(Exception):
    """A failure to report in one line, with exit status 1."""


class Api:
    """Calls to the batch API with a hub token."""

    def __init__(self, url: str, token: str) -> None:
        if not token:
            raise CliError(
                "no token: pass --token, set JUPYTERHUB_API_TOKEN or put 'token:' in "
                f"{config_path()} (hub page: Token)"
            )
        self.base = url.rstrip("/") + "/services/batch/api/v1/"
        self.token = token

    def call(
        self, method: str, path: str, body: bytes | None = None, content_type: str = ""
    ) -> tuple[int, bytes]:
        """One request; HTTP errors become CliError with the service's message."""
        request = urllib.request.Request(self.base + path, data=body, method=method)
        request.add_header("Authorization", f"token {self.token}")
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                message = json.loads(raw)["message"]
            except (ValueError, KeyError, TypeError):
                message = raw.decode(errors="replace")[:300] or e.reason
            raise CliError(f"{e.code}: {message}") from None
        except urllib.error.URLError as e:
            raise CliError(f"cannot reach {self.base}: {e.reason}") from None

    def json(self, method: str, path: str, body: Any = None) -> Any:
        """A JSON request and answer."""
        data = json.dumps(body).encode() if body is not None else None
        _, raw = self.call(method, path, data, "application/json" if data else "")
        return json.loads(raw) if raw else None


def multipart(fields: dict[str, str], file_name: str, content: bytes) -> tuple[bytes, str]:
    """Encode a form with one file part."""
    boundary = "batchhub" + secrets.token_hex(12)
    parts = []
    for name, value in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(f"{head}{value}\r\n".encode())
    media = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
    safe_name = file_name.replace('"', "")
    parts.append(
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{safe_name}"\r\nContent-Type: {media}\r\n\r\n'
        ).encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _clock(epoch: Any) -> str:
    """A time of day (or date and time if not today), local time."""
    if not isinstance(epoch, (int, float)):
        return ""
    moment = time.localtime(epoch)
    same_day = time.strftime("%Y-%m-%d", moment) == time.strftime("%Y-%m-%d")
    return time.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M", moment)


def waits(job: dict[str, Any]) -> bool:
    """True while a job waits (it has a reason code other than `none`)."""
    return job.get("state") == "queued" and (job.get("reason_code") or "none") != "none"


def expected_start(job: dict[str, Any]) -> str:
    """When a waiting job is expected to start, or why that is not known."""
    if not waits(job):
        return ""
    if not job.get("estimated_start"):
        return "expected start: not known yet"
    return f"expected start {_clock(job['estimated_start'])}"


def why(job: dict[str, Any]) -> str:
    """Why a job waits or ended as it did: its reason code and words, and any expected start."""
    code = job.get("reason_code") or ""
    code = "" if code == "none" else code
    words = job.get("reason") or ""
    text = f"{code}: {words}" if code and words else code or words
    if waits(job) and job.get("estimated_start"):
        text = f"{text} ({expected_start(job)})".strip()
    return text


def reason_column(job: dict[str, Any]) -> str:
    """The REASON column: a waiting job's code (as squeue's) and expected start; otherwise
    the words of how it ended."""
    if not waits(job):
        return job.get("reason") or ""
    start = job.get("estimated_start")
    return job["reason_code"] + (f" (start {_clock(start)})" if start else "")


def describe(job: dict[str, Any]) -> str:
    """One line about a job."""
    progress = job.get("progress") or {}
    where = f" cell {progress['index']}/{progress['total']}" if progress.get("total") else ""
    position = f" #{job['position']} in line" if job.get("position") else ""
    live = f" live kernel until {_clock(job.get('live_until'))}" if job.get("live") else ""
    line = f"{job['id']}  {job['state']}{position}{where}{live}  {job['profile']}  "
    line += job["input_name"]
    reason = why(job)
    return f"{line}  ({reason})" if reason else line


def job_table(jobs: list[dict[str, Any]]) -> str:
    """Jobs as columns, like squeue: a LIVE column for live kernels, REASON last."""
    header = ("JOB", "STATE", "LIVE", "POS", "PROFILE", "INPUT", "REASON")
    rows = [header]
    for job in jobs:
        progress = job.get("progress") or {}
        state = job["state"]
        if state == "running" and progress.get("total"):
            state += f" {progress['index']}/{progress['total']}"
        live = f"until {_clock(job.get('live_until'))}" if job.get("live") else "-"
        rows.append(
            (
                job["id"],
                state,
                live,
                str(job.get("position") or "-"),
                job["profile"],
                job["input_name"],
                reason_column(job),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
        for row in rows
    )


def follow(api: Api, job_id: str, out: Any = sys.stdout) -> dict[str, Any]:
    """Print state changes and output lines until the run ends; return the job."""
    after, last = 0, ""
    while True:
        job = api.json("GET", f"jobs/{job_id}")
        logs = api.json("GET", f"jobs/{job_id}/logs?after={after}")
        for line in logs["lines"]:
            print(line["text"], file=out)
        after = logs["next"]
        status = describe(job)
        if status != last:
            print(f"[batchhub] {status}", file=sys.stderr)
            last = status
        # A kept kernel is handed over (live) moments after the run ends: wait for it.
        if job["state"] in FINISHED and not job.get("live_pending"):
            if job.get("error"):
                print(
                    f"[batchhub] {job['error']['name']}: {job['error']['value']}", file=sys.stderr
                )
            if job.get("reason"):
                print(f"[batchhub] {job['reason']}", file=sys.stderr)
            if job.get("live"):
                link = f"{api.base.removesuffix('api/v1/')}jobs/{job_id}/live"
                print(f"[batchhub] live kernel: {link}", file=sys.stderr)
            return job
        time.sleep(0.25 if job.get("live_pending") else 1)


def parameters_from(args: argparse.Namespace) -> dict[str, Any]:
    """-p NAME VALUE (papermill's typing) and -y NAME YAML."""
    values: dict[str, Any] = {}
    for name, value in args.parameters or []:
        values[name] = _resolve_type(value)
    for name, value in args.yaml_parameters or []:
        try:
            values[name] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise CliError(f"parameter {name!r}: not YAML ({e})") from None
    return values


def submit(api: Api, args: argparse.Namespace) -> int:
    """Upload a file as a job; with --follow, wait for its end."""
    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"no such file: {path}")
    fields = {"profile": args.profile or "", "parameters": json.dumps(parameters_from(args))}
    if args.time_limit:
        fields["time_limit"] = str(args.time_limit)  # seconds, already parsed
    if args.entry_point:
        fields["entry_point"] = args.entry_point
    if args.group:
        fields["group"] = args.group
    if args.report_mode:
        fields["report_mode"] = "true"
    if args.args:
        fields["args"] = json.dumps(args.args)
    body, content_type = multipart(fields, path.name, path.read_bytes())
    _, raw = api.call("POST", "jobs", body, content_type)
    job = json.loads(raw)
    print(job["id"])
    for warning in job.get("warnings") or []:
        print(f"[batchhub] warning: {warning}", file=sys.stderr)
    if not args.follow:
        return 0
    job = follow(api, job["id"])
    return 0 if job["state"] == "succeeded" else 1


def config_path() -> Path:
    """Where the CLI's settings live (XDG_CONFIG_HOME, else ~/.config)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "batchhub.yaml"


def load_config(path: Path) -> dict[str, str]:
    """The config file's settings; a missing file is no settings."""
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise CliError(f"{path} is over {MAX_CONFIG_BYTES} bytes: not a batchhub config")
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"cannot read {path}: {e}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise CliError(f"{path} is not YAML: {e}") from None
    if not isinstance(data, dict):
        raise CliError(f"{path} must be a mapping such as 'url: http://host:8000'")
    unknown = sorted(str(k) for k in data if k not in CONFIG_KEYS)
    if unknown:
        raise CliError(f"{path}: unknown key {unknown[0]!r}; allowed: {', '.join(CONFIG_KEYS)}")
    for key, value in data.items():
        if not isinstance(value, str):
            raise CliError(f"{path}: {key} must be text")
    if data.get("token") and path.stat().st_mode & 0o077:
        raise CliError(f"{path} holds a token but others may read it: run 'chmod 600 {path}'")
    return data


def time_limit(text: str) -> int:
    """argparse type: a duration as on the Batch page (a plain number means minutes)."""
    try:
        return parse_duration(text, plain_unit="m")
    except DurationError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="batchhub",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", help="the hub's public URL (else BATCHHUB_URL, else config)")
    parser.add_argument("--token", help="a hub API token (else JUPYTERHUB_API_TOKEN)")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("submit", help="queue a notebook, .py file or zipped module")
    p.add_argument("file")
    p.add_argument(
        "-p", "--parameter", dest="parameters", nargs=2, action="append", metavar=("NAME", "VALUE")
    )
    p.add_argument(
        "-y",
        "--yaml-parameter",
        dest="yaml_parameters",
        nargs=2,
        action="append",
        metavar=("NAME", "YAML"),
    )
    p.add_argument("--profile", default="")
    p.add_argument(
        "--time-limit",
        type=time_limit,
        metavar="DURATION",
        help="90m, 2h, 1h30m or 3600s; a plain number means minutes (as on the Batch page)",
    )
    p.add_argument("--entry-point", help="for a .zip: path.py or package.module to run")
    p.add_argument("--group", help="one of your groups to count this job's GPU time in")
    p.add_argument("--follow", action="store_true", help="print progress and output to the end")
    p.add_argument(
        "--report-mode", action="store_true", help="hide code inputs in the executed notebook"
    )
    p = commands.add_parser("list", help="your jobs, newest first: state, live kernel, reason")
    p.add_argument("--state")
    p.add_argument("--limit", type=int, default=20)
    for name, text in (
        ("show", "one job as JSON; why it waits and its expected start on stderr"),
        ("cancel", "cancel a queued or running job"),
        ("release", "end a finished run's live kernel now"),
        ("delete", "delete a finished job"),
    ):
        commands.add_parser(name, help=text).add_argument("job_id")
    p = commands.add_parser("logs", help="a run's output lines")
    p.add_argument("job_id")
    p.add_argument("--follow", action="store_true")
    p = commands.add_parser("download", help="the executed notebook (or --html)")
    p.add_argument("job_id")
    p.add_argument("-o", "--output")
    p.add_argument("--html", action="store_true")
    from batch_service import cli_data, cli_sweep

    cli_data.add_commands(commands)
    cli_sweep.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `batchhub` command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # Everything after `--` is the run's own command line, never batchhub's options.
    run_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    cli_parser = parser()
    args = cli_parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.args = run_args
    if run_args and args.command != "submit":
        cli_parser.error("arguments after -- go with submit (a .py file's or module's sys.argv)")
    try:
        config = load_config(config_path())
        url = args.url or os.environ.get("BATCHHUB_URL") or config.get("url") or DEFAULT_URL
        token = args.token or os.environ.get("JUPYTERHUB_API_TOKEN") or config.get("token")
        api = Api(url, token or "")
        return run(api, args)
    except CliError as e:
        print(f"batchhub: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`batchhub list | head`): nothing more to say, and no
        # complaint from the final flush of stdout either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130


def run(api: Api, args: argparse.Namespace) -> int:
    """Dispatch one command."""
    command = args.command
    if command == "data":
        from batch_service import cli_data

        return cli_data.run(api, args)
    if command == "sweep":
        from batch_service import cli_sweep

        return cli_sweep.run(api, args)
    if command == "submit":
        return submit(api, args)
    if command == "list":
        query = f"jobs?limit={args.limit}" + (f"&state={args.state}" if args.state else "")
        jobs = api.json("GET", query)["jobs"]
        print(job_table(jobs) if jobs else "no jobs")
        return 0
    if command == "show":
        job = api.json("GET", f"jobs/{args.job_id}")
        print(json.dumps(job, indent=2))
        # For the person at the terminal (stdout stays JSON for scripts): why it waits, and when
        # it may start.
        if waits(job):
            print(f"[batchhub] {job.get('reason_code')}: {job.get('reason')}", file=sys.stderr)
            print(f"[batchhub] {expected_start(job)}", file=sys.stderr)
        return 0
    if command in ("cancel", "release"):
        print(describe(api.json("POST", f"jobs/{args.job_id}/{command}", {})))
        return 0
    if command == "delete":
        api.call("DELETE", f"jobs/{args.job_id}")
        return 0
    if command == "logs":
        if args.follow:
            job = follow(api, args.job_id)
            return 0 if job["state"] == "succeeded" else 1
        for line in api.json("GET", f"jobs/{args.job_id}/logs")["lines"]:
            print(line["text"])
        return 0
    what = "output.html" if args.html else "output"
    _, raw = api.call("GET", f"jobs/{args.job_id}/{what}")
    target = Path(args.output or f"{args.job_id}.{'html' if args.html else 'ipynb'}")
    target.write_bytes(raw)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
