"""The job list with 10,000 jobs waiting: p95 latency of one page of 50, with each queued job's
place, reason code, words and expected start; the scheduler decision that works them out; and
the service's RSS.

How the jobs get there: two runs take both fake GPUs, submitted through the API (a notebook
that sleeps), and are waited for until running. The other 9,998 are then written straight into
the running service's SQLite store through the store's own models, in one transaction: queued
jobs on the one-GPU profile with no input files (the list never reads them, and none can start
while the two runs hold the GPUs). Submitting 10,000 through the API would measure submission
(bench/service_throughput.py does) and take minutes. The bench waits until the service's
scheduler has placed them (a queued job shows a reason), then fetches pages through the proxy
as the Batch page does, by their owner (first page, and the middle of the list) and by the
admin (who reads owners' names). Each request is followed (or, on alternate requests,
preceded: ABAB...) by the baseline: one job's GET by its owner, through the same proxy.

A sample is the p95 of --requests requests (default 100); each figure is the median of
--samples samples (default 5) after a discarded warm-up sample. Goal: p95 under 50 ms. The
service's RSS is read after each sample. The decision is measured in this process on a line
of the same size: the policy's decision with the positions, reasons and expected starts a
pass hands to its worker thread, and the walk alone that adds reasons and expected starts.
--quick: 2,000 jobs and 40 requests per sample.

    .venv/bin/python bench/service_joblist.py [--jobs 10000] [--requests 100] [--samples 5]
        [--quick]
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
from bench._table import Figure, arguments, report  # noqa: E402
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


def pass_figures(n: int, samples: int) -> tuple[list[float], list[float]]:
    """ms of a decision on a line of n (positions, reasons and expected starts included), and
    of the walk in it that adds reason codes and expected starts; the first of each discarded."""
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
    for _ in range(1 + samples):
        t = time.perf_counter()
        decision = decide(queue, running, {"fake": 2}, Usage(), config, now, batch_slots=6)
        len(decision.waits)  # the walk runs on first read, as in a scheduler pass
        whole.append((time.perf_counter() - t) * 1000)
        ordered = sorted(decision.waits.values(), key=attrgetter("position"))
        t = time.perf_counter()
        requests_in_line = [w.request for w in ordered]
        plan(requests_in_line, {}, {"fake": 2}, {"fake": 0}, decision.holders, 6, [], now)
        walk.append((time.perf_counter() - t) * 1000)
    return whole[1:], walk[1:]


def main() -> None:
    """Hold the GPUs, load the line, then time pages of the API."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000, help="--quick: 2,000")
    parser.add_argument("--requests", type=int, default=100, help="per sample (--quick: 40)")
    arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.jobs = min(args.jobs, 2_000)
        args.requests = min(args.requests, 40)
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
        store.dispose()
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
        middle = (args.jobs - len(held)) // 2
        cases = {
            "owner, first page": (headers, "jobs?limit=50"),
            f"owner, offset {middle}": (headers, f"jobs?limit=50&offset={middle}"),
            "admin, first page": ({"Authorization": f"token {admin.token}"}, "jobs?limit=50"),
        }
        one_job = f"jobs/{sample['id']}"

        def timed_get(who: dict[str, str], query: str) -> float:
            t = time.perf_counter()
            r = session.get(api + query, headers=who, timeout=60)
            took = time.perf_counter() - t
            assert r.status_code == 200, r.text
            return took

        ours: dict[str, list[float]] = {name: [] for name in cases}
        base: dict[str, list[float]] = {name: [] for name in cases}
        rss: list[float] = []
        for turn in range(1 + args.samples):  # turn 0 warms up and is discarded
            for name, (who, query) in cases.items():
                mine, theirs = [], []
                for i in range(args.requests):
                    if i % 2:
                        theirs.append(timed_get(headers, one_job))
                    mine.append(timed_get(who, query))
                    if not i % 2:
                        theirs.append(timed_get(headers, one_job))
                page = session.get(api + query, headers=who, timeout=60).json()["jobs"]
                assert len(page) == 50 and all(j["reason"] for j in page if j["state"] == "queued")
                if turn:
                    ours[name].append(p95(mine))
                    base[name].append(p95(theirs))
            if turn:
                rss.append(rss_mib(hub.service_pid()))
        for job_id in held:
            holder.call("POST", f"jobs/{job_id}/cancel")
    whole, walk = pass_figures(args.jobs, args.samples)
    print(f"wrote {args.jobs - len(held)} queued jobs into the store in {load:.1f} s")
    print(f"a queued job reads: {sample['reason_code']}: {sample['reason']}")
    print(f"   expected start in {sample['estimated_start'] - time.time():.0f} s")
    n = f"{args.jobs:,} jobs"
    figures = [
        Figure(
            f"job list p95, page of 50, {name}, {n}",
            "ms",
            ours[name],
            base[name],
            "one job's GET",
            goal_value=GOAL_MS,
        )
        for name in cases
    ]
    figures += [
        Figure(f"batch service RSS, {n} listed", "MiB", rss),
        Figure(f"decision with reasons and expected starts, {n} waiting", "ms", whole),
        Figure("  of which the walk adding reasons and expected starts", "ms", walk),
    ]
    report(figures)


if __name__ == "__main__":
    main()
