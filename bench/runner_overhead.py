"""The runner beside papermill and nbconvert, on the same machine in one run.

1. A trivial 2-cell notebook: submit -> executed notebook stored, through batchhub (hub, batch
   server start, runner, upload) vs `papermill` CLI on the same notebook.
2. 200 trivial cells: per-cell time of the runner (from its own cell events) vs `papermill` CLI
   and `jupyter nbconvert --execute` (both whole-run time / 200, kernel start excluded by
   subtracting a 1-cell run).
3. Job end -> live kernel usable: from the job's finished time to the first reply of the same
   kernel over the Jupyter websocket, as JupyterLab would get it.

    .venv/bin/python bench/runner_overhead.py
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._hub import bench_hub
from tests.batch import Batch, notebook
from tests.kernels import execute

BIN = Path(sys.executable).parent


def timed(command: list[str]) -> float:
    """Wall time of a command that must succeed."""
    t0 = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - t0


def cli_times(folder: Path, nb: bytes, name: str) -> tuple[float, float]:
    """papermill and nbconvert wall times for one notebook."""
    path = folder / f"{name}.ipynb"
    path.write_bytes(nb)
    papermill = timed([str(BIN / "papermill"), str(path), str(folder / f"{name}.pm.ipynb")])
    nbconvert = timed(
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
    return papermill, nbconvert


def submit_and_wait(batch: Batch, nb: bytes) -> tuple[float, dict]:
    """Seconds from submit until the executed notebook is stored; the finished job."""
    t0 = time.perf_counter()
    job = batch.submit("bench.ipynb", nb).json()
    while True:
        seen = batch.job(job["id"])
        if seen["state"] in ("succeeded", "failed", "timed_out"):
            if batch.call("GET", f"jobs/{job['id']}/output").status_code == 200:
                return time.perf_counter() - t0, seen
        time.sleep(0.05)


def main() -> None:
    """Print the three figures with their baselines and ratios."""
    two = notebook("a = 1", "print(a + 1)")
    one = notebook("a = 1")
    many = notebook(*[f"v{i} = {i}" for i in range(200)])
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        pm_two, _ = cli_times(base, two, "two")
        pm_one, nbc_one = cli_times(base, one, "one")
        pm_many, nbc_many = cli_times(base, many, "many")
    with bench_hub() as hub:
        person = hub.ready_user("bench-runner")
        batch = Batch(person)
        ours_two, job = submit_and_wait(batch, two)
        batch.call("POST", f"jobs/{job['id']}/release")
        _, job = submit_and_wait(batch, many)
        # 3. live kernel usable: first reply from the run's own kernel after the run ended.
        server = f"{hub.url}/user/{person.name}/{job['server_name']}/"
        person.wait_server(job["server_name"], ready=True)
        result = asyncio.run(execute(server, person.token, job["kernel_id"], "print(v199)"))
        usable = time.time() - job["finished_at"]
        assert result.stdout.strip() == "199"
        events_span = job["finished_at"] - job["started_at"]
        _, one_job = submit_and_wait(batch, one)
        one_span = one_job["finished_at"] - one_job["started_at"]
        for j in (job, one_job):
            batch.call("POST", f"jobs/{j['id']}/release")
    runner_cell = (events_span - one_span) / 199 * 1000
    papermill_cell = (pm_many - pm_one) / 199 * 1000
    nbconvert_cell = (nbc_many - nbc_one) / 199 * 1000
    print("1. trivial 2-cell notebook, submit -> output stored")
    print(
        f"   batchhub {ours_two:.2f} s   papermill CLI {pm_two:.2f} s   "
        f"ratio {ours_two / pm_two:.2f} (goal <= 1.5)"
    )
    print("2. 200 trivial cells, time per cell")
    print(
        f"   runner {runner_cell:.1f} ms   papermill {papermill_cell:.1f} ms   "
        f"nbconvert {nbconvert_cell:.1f} ms   runner/nbconvert {runner_cell / nbconvert_cell:.2f}"
        " (goal <= 1.2)"
    )
    print("3. job end -> live kernel usable (same kernel answers over the websocket)")
    print(f"   {usable:.2f} s")


if __name__ == "__main__":
    main()
