"""The runner beside papermill and nbconvert, on the same machine in one run.

Each figure is the median of --samples (default 5) turns after a discarded warm-up turn; in
each turn batchhub and its baselines run one after the other, who goes first alternating
(ABAB...). No figure uses the times the runner reports to the service.

1. A trivial 2-cell notebook: submit -> executed notebook stored (wall clock, seen from
   outside), through batchhub vs the `papermill` CLI (cold: a new process and kernel):
   - cold: a batch server started for the run (the user has none: the previous one's idle
     time, batch.warm_idle, is waited out first), runner, upload. Goal <= 1.5x.
   - warm: the run starts on the server the user's previous run left idle (its kernel
     released and shut down), in a fresh kernel. Goal <= 0.5x. Beside it, for information:
     submit -> its first cell starts (papermill's cell metadata, this machine's clock).
2. Per-cell cost of 200 trivial cells, from the cell events nbclient records in each executed
   notebook (`metadata.execution`, the kernel's message timestamps): the latest
   `shell.execute_reply` minus the earliest `iopub.status.busy`, divided by the cells. The
   same measure for batchhub (each cell's papermill metadata recorded and progress reported),
   `jupyter nbconvert --execute` (goal <= 1.2x) and the `papermill` CLI (for information);
   kernel start-up and upload are outside it.
3. Job end -> live kernel usable: from seeing the run finished to the first reply of the same
   kernel over the Jupyter websocket, as JupyterLab would get it (for information).

--quick runs 50 cells instead of 200.

    .venv/bin/python bench/runner_overhead.py [--samples 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._hub import bench_hub  # noqa: E402
from bench._table import Figure, arguments, report  # noqa: E402
from tests.batch import Batch, notebook  # noqa: E402
from tests.kernels import execute  # noqa: E402

BIN = Path(sys.executable).parent
# Seconds a server stays warm here: short, so each turn's cold run finds none left.
WARM_IDLE = 3


def timed(command: list[str]) -> float:
    """Wall time of a command that must succeed."""
    t0 = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - t0


def per_cell_ms(executed: dict) -> float:
    """Milliseconds per cell from the earliest cell start to the latest cell reply.

    Earliest and latest rather than first and last cell: an out-of-order timestamp can then
    never make the span negative; a notebook without every cell's events is an error."""
    cells = [c for c in executed["cells"] if c["cell_type"] == "code"]
    starts, replies = [], []
    for cell in cells:
        events = cell["metadata"].get("execution", {})
        if "iopub.status.busy" not in events or "shell.execute_reply" not in events:
            raise RuntimeError("an executed cell carries no cell events (metadata.execution)")
        starts.append(datetime.fromisoformat(events["iopub.status.busy"]))
        replies.append(datetime.fromisoformat(events["shell.execute_reply"]))
    span = (max(replies) - min(starts)).total_seconds()
    if span <= 0:
        raise RuntimeError(f"cell events span {span} s: the kernel's timestamps are unusable")
    return span * 1000 / len(cells)


def papermill_run(folder: Path, nb: bytes, name: str) -> tuple[float, float]:
    """The papermill CLI's wall time and per-cell cost."""
    path = folder / f"{name}.ipynb"
    path.write_bytes(nb)
    output = folder / f"{name}.pm.ipynb"
    took = timed([str(BIN / "papermill"), str(path), str(output)])
    return took, per_cell_ms(json.loads(output.read_text()))


def nbconvert_cell(folder: Path, nb: bytes, name: str) -> float:
    """nbconvert's per-cell cost."""
    path = folder / f"{name}.ipynb"
    path.write_bytes(nb)
    command = [str(BIN / "jupyter"), "nbconvert", "--to", "notebook", "--execute"]
    timed([*command, "--output", f"{name}.nbc.ipynb", str(path)])
    return per_cell_ms(json.loads((folder / f"{name}.nbc.ipynb").read_text()))


def submit_and_wait(batch: Batch, nb: bytes) -> tuple[float, dict, float, dict]:
    """Seconds from submit until the executed notebook is stored; the job; when that was seen;
    the executed notebook."""
    t0 = time.perf_counter()
    job = batch.submit("bench.ipynb", nb).json()
    while time.perf_counter() - t0 < 600:
        seen = batch.job(job["id"])
        if seen["state"] in ("succeeded", "failed", "timed_out", "cancelled"):
            output = batch.call("GET", f"jobs/{job['id']}/output")
            if output.status_code == 200:
                now = time.perf_counter()
                return now - t0, seen, now, output.json()
            if not seen["started_at"]:
                raise RuntimeError(f"job {job['id']} never ran: {seen['reason']}")
        time.sleep(0.05)
    raise TimeoutError(f"job {job['id']} gave no executed notebook in 600 s")


def first_cell_start(executed: dict) -> float:
    """Epoch seconds when the first code cell started (papermill's cell metadata)."""
    cell = next(c for c in executed["cells"] if c["cell_type"] == "code")
    start = datetime.fromisoformat(cell["metadata"]["papermill"]["start_time"])
    # papermill writes UTC, without a zone on older versions.
    return (start if start.tzinfo else start.replace(tzinfo=UTC)).timestamp()


def no_server_left(batch: Batch, timeout: float = 60) -> None:
    """Until the user has no batch server (a cold start follows)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        servers = batch.user.api("GET", f"{batch.user.hub.url}/hub/api/users/{batch.user.name}")
        if not [n for n in servers.json().get("servers", {}) if n.startswith("batch-")]:
            return
        time.sleep(0.2)
    raise TimeoutError("the idle batch server was not stopped")


def main() -> None:
    """Take the turns and report the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments(parser)
    args = parser.parse_args()
    cells = 50 if args.quick else 200
    two = notebook("a = 1", "print(a + 1)")
    many = notebook(*[f"v{i} = {i}" for i in range(cells)])
    kept: dict[str, list[float]] = {
        k: []
        for k in (
            "ours",
            "ours warm",
            "warm first cell",
            "papermill",
            "ours cell",
            "pm cell",
            "nbc cell",
            "usable",
        )
    }
    warm = {"batch": {"warm_idle": WARM_IDLE}}
    with bench_hub(warm) as hub, tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        person = hub.ready_user("bench-runner")
        batch = Batch(person)

        def ours() -> dict[str, float]:
            no_server_left(batch)
            took, job, _, _ = submit_and_wait(batch, two)
            batch.call("POST", f"jobs/{job['id']}/release")
            batch.wait_kernel_gone(job)
            submitted = time.time()
            took_warm, job, _, executed = submit_and_wait(batch, two)
            first_cell = first_cell_start(executed) - submitted
            if job["server_name"] == f"batch-{job['id']}":
                raise RuntimeError("the warm run started a server of its own")
            batch.call("POST", f"jobs/{job['id']}/release")
            batch.wait_kernel_gone(job)
            _, job, seen_at, executed = submit_and_wait(batch, many)
            # The run's own kernel answers after the run, through the hub as JupyterLab does.
            server = f"{hub.url}/user/{person.name}/{job['server_name']}/"
            person.wait_server(job["server_name"], ready=True)
            last = f"print(v{cells - 1})"
            result = asyncio.run(execute(server, person.token, job["kernel_id"], last))
            usable = time.perf_counter() - seen_at
            assert result.stdout.strip() == str(cells - 1), result
            batch.call("POST", f"jobs/{job['id']}/release")
            return {
                "ours": took,
                "ours warm": took_warm,
                "warm first cell": first_cell,
                "ours cell": per_cell_ms(executed),
                "usable": usable,
            }

        def theirs() -> dict[str, float]:
            took, _ = papermill_run(base, two, "two")
            _, pm_cell = papermill_run(base, many, "many")
            return {
                "papermill": took,
                "pm cell": pm_cell,
                "nbc cell": nbconvert_cell(base, many, "many"),
            }

        for turn in range(1 + args.samples):  # turn 0 warms up and is discarded
            pair = (ours, theirs) if turn % 2 else (theirs, ours)
            values = {k: v for run in pair for k, v in run().items()}
            if turn:
                for k, v in values.items():
                    kept[k].append(v)
    report(
        [
            Figure(
                "trivial notebook submit -> output, cold",
                "s",
                kept["ours"],
                kept["papermill"],
                "papermill CLI",
                goal_ratio=1.5,
            ),
            Figure(
                "trivial notebook submit -> output, warm server",
                "s",
                kept["ours warm"],
                kept["papermill"],
                "papermill CLI",
                goal_ratio=0.5,
            ),
            Figure("warm server: submit -> first cell starts", "s", kept["warm first cell"]),
            Figure(
                f"per cell ({cells} cells)",
                "ms",
                kept["ours cell"],
                kept["nbc cell"],
                "nbconvert",
                goal_ratio=1.2,
            ),
            Figure(
                f"per cell ({cells} cells), beside papermill",
                "ms",
                kept["ours cell"],
                kept["pm cell"],
                "papermill CLI",
            ),
            Figure("run seen finished -> live kernel answers", "s", kept["usable"]),
        ]
    )


if __name__ == "__main__":
    main()
