"""`batchhub sweep`: a parameter sweep from a terminal, and its results table.

    batchhub sweep model.ipynb -g lr=0.1,0.01 -g layers=1:4 --max-parallel 4 --follow
    batchhub sweep model.ipynb --table points.csv
    batchhub sweep model.ipynb --optimise loss --space x=0:5 --space lr=1e-4:0.1:log \
        --space act=relu,tanh --max-trials 30 --max-parallel 4 [--maximise] [--seed 1]
    batchhub sweep model.ipynb --explore --start x=0,y=0 --space x=-5:5:int \
        --space y=-5:5:int --max-points 200 --max-depth 10
    batchhub sweep results ID [--csv] | show ID | cancel ID | pause ID | resume ID | retry ID

`-g name=values` is one axis of a grid: a list (`lr=0.1,0.01`) or a range with both ends
included (`layers=1:4`, `x=0:1:0.25`). `--table` reads points from a CSV file (a header row of
parameter names) or a JSON list of objects. `--follow` draws a progress bar of points done,
running and failed until the sweep ends.

`--optimise NAME` runs Optuna's trials on the recorded value NAME; `--explore` runs the
`--start` points and what the runs propose (glued `next_points`). `--space name=low:high`
bounds a parameter (`:int` whole numbers, `:log` log scale; `name=a,b,c` choices).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from batch_service.cli import Api, CliError, multipart, time_limit
from batch_service.sweep_points import literal

ACTIONS = ("results", "show", "cancel", "pause", "resume", "retry")
BAR = 30


def add_commands(commands: Any) -> None:
    """The `sweep` command."""
    p = commands.add_parser(
        "sweep",
        help="run a notebook over a grid or table of parameters; `sweep results ID` for results",
    )
    p.add_argument(
        "file", help=f"the notebook, .py or .zip to sweep; or one of {', '.join(ACTIONS)}"
    )
    p.add_argument("sweep_id", nargs="?", help="the sweep (with results, show, cancel, ...)")
    p.add_argument("-g", "--grid", action="append", default=[], metavar="NAME=VALUES")
    p.add_argument("--table", metavar="FILE", help="points from a CSV file or a JSON list")
    p.add_argument("--spec", help="the sweep's spec as JSON (see the API document)")
    p.add_argument("--max-parallel", type=int, default=1, help="most points running at once")
    p.add_argument("--profile", default="")
    p.add_argument("--time-limit", type=time_limit, metavar="DURATION", help="for each point")
    p.add_argument("--entry-point", help="for a .zip: path.py or package.module to run")
    p.add_argument("--record", help="papermill-style outputs to read besides glued values: a,b")
    p.add_argument("--failed-live-window", type=int, metavar="SECONDS")
    p.add_argument("--keep-succeeded", action="store_true", help="keep succeeded points' kernels")
    p.add_argument("--into", metavar="SWEEP_ID", help="add the points to this sweep of yours")
    p.add_argument("--follow", action="store_true", help="a progress bar until the sweep ends")
    p.add_argument("--optimise", metavar="VALUE", help="optimise this recorded value (Optuna)")
    p.add_argument("--maximise", action="store_true", help="with --optimise: the larger the better")
    p.add_argument("--explore", action="store_true", help="run --start points and their proposals")
    p.add_argument(
        "--space",
        action="append",
        default=[],
        metavar="NAME=BOUNDS",
        help="a parameter's bounds: low:high[:int][:log] or choices a,b,c",
    )
    p.add_argument("--start", action="append", default=[], metavar="NAME=V,NAME=V")
    p.add_argument("--max-trials", type=int, help="with --optimise: trials in all")
    p.add_argument("--seed", type=int, help="with --optimise: the sampler's seed")
    p.add_argument("--max-points", type=int, help="with --explore: points in all")
    p.add_argument("--max-depth", type=int, help="with --explore: proposals after proposals")
    p.add_argument("--csv", action="store_true", help="results as CSV")


def bounds_from(items: list[str]) -> dict[str, Any]:
    """`--space name=low:high[:int][:log]` or `name=a,b,c` as the API's bounds."""
    bounds: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name or name in bounds:
            raise CliError(f"--space {item!r}: write name=low:high[:int][:log] or name=a,b,c")
        if ":" not in text:
            bounds[name] = {"choices": [literal(v) for v in text.split(",")]}
            continue
        low, high, *flags = text.split(":")
        if set(flags) - {"int", "log"}:
            raise CliError(f"--space {item!r}: after low:high only :int and :log")
        try:
            bounds[name] = {"low": float(low), "high": float(high)}
        except ValueError:
            raise CliError(f"--space {item!r}: low and high are numbers") from None
        bounds[name].update({flag: True for flag in flags})
    return bounds


def adaptive_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The API's spec of --optimise or --explore."""
    if not args.space:
        raise CliError("give each parameter's bounds with --space name=low:high or name=a,b,c")
    if args.optimise:
        if args.max_trials is None:
            raise CliError("--optimise needs --max-trials")
        spec = {
            "kind": "optuna",
            "space": bounds_from(args.space),
            "objective": args.optimise,
            "direction": "maximize" if args.maximise else "minimize",
            "max_trials": args.max_trials,
        }
        if args.seed is not None:
            spec["seed"] = args.seed
        return spec
    if not args.start:
        raise CliError("--explore needs at least one --start name=value,name=value")
    start = []
    for item in args.start:
        point = {}
        for pair in item.split(","):
            name, sep, value = pair.partition("=")
            if not sep or not name.strip():
                raise CliError(f"--start {item!r}: write name=value,name=value")
            point[name.strip()] = literal(value)
        start.append(point)
    spec = {"kind": "explore", "start": start, "bounds": bounds_from(args.space)}
    if args.max_points is not None:
        spec["max_points"] = args.max_points
    if args.max_depth is not None:
        spec["max_depth"] = args.max_depth
    return spec


def spec_from(args: argparse.Namespace) -> dict[str, Any]:
    """The API's spec from -g, --table, --spec, --optimise or --explore (exactly one)."""
    given = [
        bool(args.grid),
        bool(args.table),
        bool(args.spec),
        bool(args.optimise),
        bool(args.explore),
    ]
    if sum(given) != 1:
        raise CliError(
            "give the points with -g name=values (repeatable), --table FILE, --spec, "
            "--optimise VALUE or --explore"
        )
    if args.optimise or args.explore:
        return adaptive_spec(args)
    if args.spec:
        try:
            return json.loads(args.spec)
        except ValueError as e:
            raise CliError(f"--spec is not JSON: {e}") from None
    if args.table:
        path = Path(args.table)
        if not path.is_file():
            raise CliError(f"no such file: {path}")
        text = path.read_text()
        if path.suffix.lower() == ".json":
            try:
                return {"kind": "table", "table": json.loads(text)}
            except ValueError as e:
                raise CliError(f"{path} is not JSON: {e}") from None
        return {"kind": "table", "table": text}
    grid: dict[str, str] = {}
    for item in args.grid:
        name, sep, values = item.partition("=")
        if not sep or not name.strip():
            raise CliError(f"-g {item!r}: write name=values, e.g. lr=0.1,0.01 or layers=1:4")
        if name.strip() in grid:
            raise CliError(f"-g: parameter {name.strip()!r} is given twice")
        grid[name.strip()] = values
    return {"kind": "grid", "grid": grid}


def progress(sweep: dict[str, Any]) -> str:
    """`[####......] 4/9 done, 2 running, 1 failed` of a sweep's points."""
    counts, total = sweep["counts"], max(sweep["points"], 1)
    failed = counts.get("failed", 0) + counts.get("timed_out", 0)
    done = counts.get("succeeded", 0) + failed + counts.get("cancelled", 0)
    running = counts.get("starting", 0) + counts.get("running", 0)
    filled = round(BAR * done / total)
    return (
        f"[{'#' * filled}{'.' * (BAR - filled)}] {done}/{sweep['points']} done, "
        f"{running} running, {failed} failed"
    )


def follow(api: Api, sweep_id: str, out: Any = sys.stderr, poll: float = 1.0) -> dict[str, Any]:
    """Redraw the progress bar until the sweep is done or cancelled."""
    last = ""
    tty = out.isatty()
    while True:
        sweep = api.json("GET", f"sweeps/{sweep_id}")
        line = progress(sweep)
        if line != last:
            out.write(("\r" + line) if tty else (line + "\n"))
            out.flush()
            last = line
        if sweep["state"] in ("done", "cancelled"):
            if tty:
                out.write("\n")
            print(f"[batchhub] sweep {sweep_id} {sweep['state']}", file=out)
            return sweep
        time.sleep(poll)


def submit(api: Api, args: argparse.Namespace) -> int:
    """Upload the file with the points; with --follow, a progress bar to the end."""
    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"no such file: {path} (or use one of: {', '.join(ACTIONS)})")
    fields = {
        "spec": json.dumps(spec_from(args)),
        "profile": args.profile or "",
        "max_parallel": str(args.max_parallel),
    }
    optional = {
        "time_limit": args.time_limit,
        "entry_point": args.entry_point,
        "record": args.record,
        "failed_live_window": args.failed_live_window,
        "into": args.into,
    }
    fields.update({k: str(v) for k, v in optional.items() if v not in (None, "")})
    if args.keep_succeeded:
        fields["keep_succeeded"] = "true"
    body, content_type = multipart(fields, path.name, path.read_bytes())
    _, raw = api.call("POST", "sweeps", body, content_type)
    sweep = json.loads(raw)
    print(sweep["id"])
    print(
        f"[batchhub] {sweep['added']} points queued, {sweep['skipped']} already in the sweep",
        file=sys.stderr,
    )
    if not args.follow:
        return 0
    sweep = follow(api, sweep["id"])
    bad = sum(sweep["counts"].get(s, 0) for s in ("failed", "timed_out", "cancelled"))
    return 0 if bad == 0 else 1


def run(api: Api, args: argparse.Namespace) -> int:
    """`sweep FILE ...` or `sweep ACTION ID`."""
    if args.file not in ACTIONS or Path(args.file).is_file():
        return submit(api, args)
    if not args.sweep_id:
        raise CliError(f"batchhub sweep {args.file} needs the sweep's id")
    sweep_id = args.sweep_id
    if args.file == "results":
        if args.csv:
            _, raw = api.call("GET", f"sweeps/{sweep_id}/results?format=csv")
            sys.stdout.write(raw.decode())
            return 0
        print(json.dumps(api.json("GET", f"sweeps/{sweep_id}/results")["rows"], indent=2))
        return 0
    if args.file == "show":
        sweep = api.json("GET", f"sweeps/{sweep_id}")
        print(json.dumps(sweep, indent=2))
        print(f"[batchhub] {progress(sweep)}", file=sys.stderr)
        return 0
    sweep = api.json("POST", f"sweeps/{sweep_id}/{args.file}", {})
    print(f"{sweep['id']} {sweep['state']}: {progress(sweep)}")
    return 0
