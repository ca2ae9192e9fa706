"""The runner beside papermill and nbconvert, on the same machine in one run.

Every figure is the median of SAMPLES runs, each beside its baseline measured in the same run;
no figure uses the times the runner reports to the service.

1. A trivial 2-cell notebook: submit -> executed notebook stored (wall clock, seen from
   outside), through batchhub (hub, batch server start, runner, upload) vs the `papermill` CLI.
2. Per-cell cost of 200 trivial cells: from the first cell's start to the last cell's reply, as
   nbclient records them in each executed notebook (`metadata.execution`, kernel timestamps),
   divided by 199: the same measure for batchhub (each cell's papermill metadata recorded and
   progress reported), the `papermill` CLI and `jupyter nbconvert --execute`; kernel start-up
   is outside it.
3. Job end -> live kernel usable: from seeing the run finished to the first reply of the same
   kernel over the Jupyter websocket, as JupyterLab would get it.

    .venv/bin/python bench/runner_overhead.py [samples]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._hub import bench_hub  # noqa: E402
from tests.batch import Batch, notebook  # noqa: E402
from tests.kernels import execute  # noqa: E402

BIN = Path(sys.executable).parent
SAMPLES = int(sys.argv[1]) if len(sys.argv) > 1 else 5


def timed(command: list[str]) -> float:
    """Wall time of a command that must succeed."""
    t0 = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - t0


def per_cell_ms(executed: dict) -> float:
    """Milliseconds per cell between the first cell's start and the last cell's reply."""
    cells = [c for c in executed["cells"] if c["cell_type"] == "code"]
    first = cells[0]["metadata"]["execution"]["iopub.status.busy"]
    last = cells[-1]["metadata"]["execution"]["shell.execute_reply"]
    span = datetime.fromisoformat(last) - datetime.fromisoformat(first)
    return span.total_seconds() * 1000 / (len(cells) - 1)


def cli_times(folder: Path, nb: bytes, name: str) -> tuple[float, float, float]:
    """papermill's wall time and per-cell cost; nbconvert's per-cell cost."""
    path = folder / f"{name}.ipynb"
    path.write_bytes(nb)
    output = folder / f"{name}.pm.ipynb"
    papermill = timed([str(BIN / "papermill"), str(path), str(output)])
    pm_cell = per_cell_ms(json.loads(output.read_text()))
    timed(
        [
            str(BIN / "jupyter"),
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--output",
            f"{name}.nbc.ipynb",
            str(path),
        ]
    )
    return papermill, pm_cell, per_cell_ms(json.loads((folder / f"{name}.nbc.ipynb").read_text()))


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


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    """Print the three figures with their baselines and ratios."""
    two = notebook("a = 1", "print(a + 1)")
    many = notebook(*[f"v{i} = {i}" for i in range(200)])
    ours_two, pm_two = [], []
    ours_cell, pm_cell, nbc_cell = [], [], []
    usable = []
    with bench_hub() as hub, tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        person = hub.ready_user("bench-runner")
        batch = Batch(person)
        for _ in range(SAMPLES):
            # 1. trivial notebook, ours and papermill's, one after the other
            took, job, _, _ = submit_and_wait(batch, two)
            batch.call("POST", f"jobs/{job['id']}/release")
            ours_two.append(took)
            pm_two.append(cli_times(base, two, "two")[0])
            # 2. per-cell: 200 cells, each way
            _, job, seen_at, executed = submit_and_wait(batch, many)
            # 3. live kernel usable: the run's own kernel answers after the run
            server = f"{hub.url}/user/{person.name}/{job['server_name']}/"
            person.wait_server(job["server_name"], ready=True)
            result = asyncio.run(execute(server, person.token, job["kernel_id"], "print(v199)"))
            usable.append(time.perf_counter() - seen_at)
            assert result.stdout.strip() == "199"
            batch.call("POST", f"jobs/{job['id']}/release")
            ours_cell.append(per_cell_ms(executed))
            _, pm_many, nbc_many = cli_times(base, many, "many")
            pm_cell.append(pm_many)
            nbc_cell.append(nbc_many)
    runner, papermill, nbconvert = median(ours_cell), median(pm_cell), median(nbc_cell)
    print(f"medians of {SAMPLES} runs each, baselines measured in the same run")
    print("1. trivial 2-cell notebook, submit -> output stored")
    print(
        f"   batchhub {median(ours_two):.2f} s   papermill CLI {median(pm_two):.2f} s   "
        f"ratio {median(ours_two) / median(pm_two):.2f} (before: 1.3-1.45)"
    )
    print("2. time per cell over 200 cells (first start to last reply), papermill's metadata on")
    print(
        f"   runner {runner:.1f} ms   papermill {papermill:.1f} ms   nbconvert {nbconvert:.1f} ms"
        f"   runner/papermill {runner / papermill:.2f}   runner/nbconvert {runner / nbconvert:.2f}"
        " (goal <= 1.2)"
    )
    print("3. job seen finished -> live kernel answers (same kernel, over the websocket)")
    print(f"   {median(usable):.2f} s")


if __name__ == "__main__":
    main()
