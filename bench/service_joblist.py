"""The job list with 10,000 jobs waiting: p95 latency of one page of 50, with each queued job's
place, reason code, words and expected start; the scheduler pass that works them out; and the
service's RSS.

Two runs take both fake GPUs (submitted through the API: a notebook that sleeps). Then the other
jobs are written straight into the service's SQLite store through the store's own models, in one
transaction, while the service runs: queued GPU jobs with no input files (the list never reads
them, and none can start while the two runs hold the GPUs). After the next scheduler pass every
queued job has its place, reason and expected start; pages are then fetched through the proxy as
the Batch page does, by their owner and by the admin (who reads owners' names). Goal: p95 under
50 ms. The pass is measured in this process on the same line: the policy's decision with the
positions a pass always worked out, beside the walk that adds reasons and expected starts.

    .venv/bin/python bench/service_joblist.py [--jobs 10000] [--requests 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from operator import attrgetter
from pathlib import Path

import requests
from sqlalchemy import insert

# Run as `python bench/<script>.py`: the repository root holds the bench and tests packages.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from batch_service.jobs import new_job_id  # noqa: E402
from batch_service.policy import Allocation, PolicyConfig, Request, Usage, decide  # noqa: E402
from batch_service.policy.waits import plan  # noqa: E402
from batch_service.store import Job, Store  # noqa: E402
from bench._hub import bench_hub  # noqa: E402
from tests.batch import Batch, notebook  # noqa: E402

GOAL_MS = 50.0
HOLD = notebook("import time\ntime.sleep(3000)")


def rss_mib(pid: int) -> float:
    """Resident memory of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def p95(values: list[float]) -> float:
    """95th percentile, in ms."""
    return statistics.quantiles(values, n=100)[94] * 1000


def queued_rows(owner: str, n: int) -> list[dict]:
    """Job rows as a submission stores them: queued on the one-GPU profile."""
    t = time.time() - n
    return [
        {
            "id": new_job_id(),
            "owner": owner,
            "state": "queued",
            "kind": "notebook",
            "input_name": f"nb{i}.ipynb",
            "profile": "gpu-1",
            "parameters": {},
            "time_limit": 600 + i % 7 * 300,
            "live_window": 600,
            "priority": 0,
            "owner_groups": [],
            "submitted_at": t + i,
            "live": False,
            "progress_index": 0,
            "progress_total": 0,
            "current_cell": "",
            "error_name": "",
            "error_value": "",
            "reason": "",
            "last_seq": 0,
        }
        for i in range(n)
    ]


def pass_figures(n: int, samples: int = 7) -> tuple[float, float]:
    """Median ms of a decision on a line of n (positions included), and of the walk in it that
    adds reason codes and expected starts."""
    now = time.time()
    running = [
        Allocation(f"r{i}", f"u{i}", 1, "fake", started_at=now, expected_end=now + 900 * (i + 1))
        for i in range(2)
    ]
    queue = [
        Request(f"q{i}", f"u{i % 50}", 1, "fake", submitted_at=now - i, expected_duration=600)
        for i in range(n)
    ]
    config = PolicyConfig()
    whole, walk = [], []
    for _ in range(samples):
        t = time.perf_counter()
        decision = decide(queue, running, {"fake": 2}, Usage(), config, now, batch_slots=6)
        len(decision.waits)  # the walk runs on first read, as in a scheduler pass
        whole.append(time.perf_counter() - t)
        ordered = sorted(decision.waits.values(), key=attrgetter("position"))
        t = time.perf_counter()
        requests_in_line = [w.request for w in ordered]
        plan(requests_in_line, {}, {"fake": 2}, {"fake": 0}, decision.holders, 6, [], now)
        walk.append(time.perf_counter() - t)
    return statistics.median(whole) * 1000, statistics.median(walk) * 1000


def main() -> None:
    """Hold the GPUs, load the line, then time pages of the API."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with bench_hub() as hub:
        holder = Batch(hub.ready_user("bench-hold"))
        user = hub.ready_user("bench-list")
        admin = hub.admin()
        held = [
            holder.submit(f"hold{i}.ipynb", HOLD, profile="gpu-1", time_limit=3600).json()["id"]
            for i in range(2)
        ]
        for job_id in held:
            holder.wait(job_id, ("running",), timeout=300)
        store = Store(f"sqlite:///{hub.state_dir / 'state' / 'batch' / 'jobs.sqlite'}")
        t0 = time.perf_counter()
        with store.session() as session:
            session.execute(insert(Job), queued_rows(user.name, args.jobs - len(held)))
        load = time.perf_counter() - t0
        api = f"{hub.url}/services/batch/api/v1/"
        session = requests.Session()
        headers = {"Authorization": f"token {user.token}"}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the next pass places everyone
            first = session.get(api + "jobs?limit=1", headers=headers, timeout=60).json()
            if first["jobs"][0]["reason_code"] not in ("new", "none"):
                break
            time.sleep(0.5)
        sample = first["jobs"][0]
        cases = {
            "owner, first page": (headers, "jobs?limit=50"),
            "owner, offset 5000": (headers, "jobs?limit=50&offset=5000"),
            "admin, first page": ({"Authorization": f"token {admin.token}"}, "jobs?limit=50"),
        }
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.requests):
            for name, (who, query) in cases.items():
                t = time.perf_counter()
                r = session.get(api + query, headers=who, timeout=60)
                samples[name].append(time.perf_counter() - t)
                page = r.json()["jobs"]
                assert r.status_code == 200 and len(page) == 50
                assert all(j["reason"] for j in page if j["state"] == "queued")
        rss = rss_mib(hub.service_pid())
        for job_id in held:
            holder.call("POST", f"jobs/{job_id}/cancel")
    whole, walk = pass_figures(args.jobs)
    print(f"wrote {args.jobs - len(held)} queued jobs into the store in {load:.1f} s")
    print(f"a queued job reads: {sample['reason_code']}: {sample['reason']}")
    print(f"   expected start in {sample['estimated_start'] - time.time():.0f} s")
    print(f"GET /jobs, page of 50, {args.requests} requests each (goal: p95 < {GOAL_MS:.0f} ms)")
    for name, values in samples.items():
        p50 = statistics.median(values) * 1000
        print(f"  {name:20} p50 {p50:7.1f} ms   p95 {p95(values):7.1f} ms")
    print(f"scheduler decision over {args.jobs} waiting, median of 7:")
    print(f"  decision with positions, reasons and expected starts {whole:7.1f} ms")
    share = f"{walk / whole:.0%}"
    print(f"  of which the walk adding reasons and expected starts {walk:7.1f} ms ({share})")
    print(f"batch service RSS: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
