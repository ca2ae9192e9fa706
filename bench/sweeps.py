"""Sweeps: creating a 1,000-point sweep, and the policy's decision with 10,000 queued points.

- creating a 1,000-point grid sweep through the sweep service (every point's parameters checked
  as a job's, its job row, its input linked, one transaction) beside the baseline of writing
  1,000 job rows and their input rows in one transaction with no checks and no files;
- the scheduler's decision (`Admission.decide`: the kept line, the sweep gate holding each
  sweep to max_parallel, the policy) with 10,000 queued points from 20 sweeps of 20 users and
  64 running on all 64 GPUs, beside `decide()` alone on the same requests (the pure policy).
  Between samples a point is added to a sweep and one cancelled, so each pass has news.

    .venv/bin/python bench/sweeps.py [--samples 7]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402

from batch_service.clock import now  # noqa: E402
from batch_service.identity import ADMIN, SUBMIT, Identity  # noqa: E402
from batch_service.jobs import JobService, Submission, new_job_id  # noqa: E402
from batch_service.policy import decide  # noqa: E402
from batch_service.store import Job, JobFile, Store, Sweep  # noqa: E402
from batch_service.sweep_request import new_sweep_id  # noqa: E402
from batch_service.sweeps import SweepRequest, SweepService  # noqa: E402
from batch_service.uploads import check_upload  # noqa: E402
from bench._table import Figure, arguments, interleaved, report  # noqa: E402
from bench.scheduler_pass import GPUS, PROFILES, row, service  # noqa: E402
from tests.batch import notebook  # noqa: E402

NB = notebook("y = a * 2", parameters="a = 1")


def creating(folder: str, samples: int) -> list[Figure]:
    """ms to create a 1,000-point sweep, beside 1,000 plain job rows in one transaction."""
    store = Store(f"sqlite:///{folder}/create.sqlite", f"{folder}/create-files")
    store.migrate()
    sweeps = SweepService(JobService(store, PROFILES), max_points=10_000)
    person = Identity("ana", frozenset({SUBMIT}), ())
    upload = check_upload("nb.ipynb", NB, None, 10, 2**20)
    made = iter(range(10**6))

    def sweep() -> float:
        k = next(made) * 1000
        spec = {"kind": "grid", "grid": {"a": f"{k}:{k + 999}"}}
        request = SweepRequest(Submission("ana", upload, "gpu-1", 600, {}), spec, 4)
        t = time.perf_counter()
        view = sweeps.create(person, request)
        took = (time.perf_counter() - t) * 1000
        assert view["added"] == 1000
        return took

    def rows() -> float:
        t0 = time.time()
        jobs = [row("ana", "queued", t0 + i * 1e-6) for i in range(1000)]
        files = [
            {
                "job_id": j["id"],
                "role": "input",
                "name": "nb.ipynb",
                "size": len(NB),
                "sha256": "0" * 64,
                "stored_at": t0,
            }
            for j in jobs
        ]
        t = time.perf_counter()
        with store.session() as session:
            session.execute(insert(Job), jobs)
            session.execute(insert(JobFile), files)
        return (time.perf_counter() - t) * 1000

    ours, baseline = interleaved(sweep, rows, samples=samples)
    store.dispose()
    return [
        Figure(
            "create a 1,000-point sweep",
            "ms",
            ours,
            baseline,
            "1,000 job rows, one transaction",
        )
    ]


def deciding(folder: str, samples: int, queued: int = 10_000, n_sweeps: int = 20) -> list[Figure]:
    """The scheduler's decision with `queued` points from `n_sweeps` sweeps in line."""
    store = Store(f"sqlite:///{folder}/decide.sqlite")
    store.migrate()
    t0 = now()
    sweep_ids = [new_sweep_id() for _ in range(n_sweeps)]
    sweep_rows = [
        {
            "id": s,
            "owner": f"u{i}",
            "input_name": "nb.ipynb",
            "input_sha256": "0" * 64,
            "profile": "gpu-1",
            "time_limit": 600,
            "max_parallel": 4,
            "state": "active",
            "kind": "grid",
            "spec": {},
            "spec_hash": s,
            "failed_live_window": 120,
            "created_at": t0,
        }
        for i, s in enumerate(sweep_ids)
    ]
    rows = []
    for i in range(queued):
        job = row(f"u{i % n_sweeps}", "queued", t0 - queued + i)
        job.update(sweep_id=sweep_ids[i % n_sweeps], point_hash=new_job_id())
        rows.append(job)
    rows += [row(f"r{i}", "running", t0) for i in range(GPUS)]
    with store.session() as session:
        session.execute(insert(Sweep), sweep_rows)
        session.execute(insert(Job), rows)
    jobs, admission = service(store)
    sweeps = SweepService(jobs, max_points=10_000)
    person = Identity("u0", frozenset({SUBMIT}), ())
    admin = Identity("root", frozenset({ADMIN}))
    upload = check_upload("nb.ipynb", NB, None, 10, 2**20)
    points = [r["id"] for r in rows if r["state"] == "queued"]
    added = iter(range(10**6))

    def news() -> None:
        spec = {"kind": "grid", "grid": {"a": str(next(added))}}
        request = SweepRequest(Submission("u0", upload, "gpu-1", 600, {}), spec, 4)
        sweeps.create(person, request)
        jobs.cancel(admin, points.pop())

    def one_pass() -> float:
        news()
        t = time.perf_counter()
        admission.decide(max_servers=10**6, now=time.time())
        return (time.perf_counter() - t) * 1000

    def policy_alone() -> float:
        config = admission.config()
        requests, allocations, _ = admission.snapshot(config)
        requests = list(requests)
        usage = admission.load_usage()
        t = time.perf_counter()
        decide(requests, allocations, {"fake": GPUS}, usage, config, time.time())
        return (time.perf_counter() - t) * 1000

    ours, baseline = interleaved(one_pass, policy_alone, samples=samples)
    store.dispose()
    name = f"decision, {queued:,} queued points of {n_sweeps} sweeps"
    return [Figure(name, "ms", ours, baseline, "decide() alone", goal_value=5.0)]


def main() -> None:
    parser = argparse.ArgumentParser()
    arguments(parser)
    parser.set_defaults(samples=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        figures = creating(folder, args.samples) + deciding(folder, args.samples)
    report(figures)


if __name__ == "__main__":
    main()
