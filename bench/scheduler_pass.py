"""The scheduler's pass with a long line, beside the policy's decision alone.

A SQLite store (the service's own models and migrations) holds 10,000 queued jobs from 500
users and 64 running ones holding all 64 GPUs. Between samples one job is submitted and one
cancelled (through the job service, as the API does), so each pass has news to read.

- ours: `Admission.decide`, what a pass does while the event loop waits: weights, the kept
  line brought up to date from the store, what holds GPUs, settling, the policy's decision.
- baseline: `decide()` alone on the same requests already in memory (the pure policy).
- the walk of the line (everyone's position, reason and expected start), which a pass hands to
  a worker thread; shown for information.

Then the policy at scale, on a virtual clock: 10,000, 100,000 and 1,000,000 queued requests
from 100 per user (10,000 users at 1M) on 4,000 GPUs, the line kept between decisions as the
service keeps it (QueueIndex): each decision sees the runs that ended since the last leave,
new requests arrive, and what it starts leaves the line. Per decision (ms), and per 10,000
queued (cost grows about linearly when that stays flat).

Each figure is the median of --samples (default 5) after a discarded warm-up; the pass and
decide() alone are sampled in turns (ABAB...). --quick leaves out the 1,000,000 line.

    .venv/bin/python bench/scheduler_pass.py [--queued 10000] [--users 500] [--samples 5]
        [--scale 10000,100000,1000000] [--quick]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402

from batch_service.admission import Admission  # noqa: E402
from batch_service.fair_share import FairSharePolicy  # noqa: E402
from batch_service.identity import ADMIN, SUBMIT, Identity  # noqa: E402
from batch_service.jobs import JobService, Submission, new_job_id  # noqa: E402
from batch_service.policy import Allocation, PolicyConfig, Request, Usage, decide  # noqa: E402
from batch_service.policy.queue_index import QueueIndex  # noqa: E402
from batch_service.store import Job, Store  # noqa: E402
from batch_service.turns import TurnService  # noqa: E402
from batch_service.uploads import check_upload  # noqa: E402
from bench._table import Figure, arguments, interleaved, report  # noqa: E402
from spawner.profiles import load_profiles  # noqa: E402
from tests.batch import notebook  # noqa: E402

GPUS = 64
PROFILES = load_profiles([{"name": "gpu-1", "gpus": 1, "gpu_type": "fake"}])


def row(owner: str, state: str, submitted_at: float) -> dict:
    """A job row as a submission stores it (no input file: the pass never reads it)."""
    return {
        "id": new_job_id(),
        "owner": owner,
        "state": state,
        "kind": "notebook",
        "input_name": "nb.ipynb",
        "profile": "gpu-1",
        "parameters": {},
        "time_limit": 3600,
        "live_window": 600,
        "priority": 0,
        "owner_groups": [],
        "submitted_at": submitted_at,
        "admitted_at": submitted_at if state == "running" else None,
        "started_at": submitted_at if state == "running" else None,
        "live": False,
    }


def service(store: Store) -> tuple[JobService, Admission]:
    """The job service and admission over a store, wired as the service wires them."""
    jobs = JobService(store, PROFILES)
    admission = Admission(
        store,
        TurnService(store, jobs.profiles),
        jobs.profiles,
        {"fake": GPUS},
        FairSharePolicy().to_policy(),
    )
    jobs.fair_groups = lambda: admission.config().named_groups
    return jobs, admission


def at_scale(queued: int, samples: int, gpus: int = 4000) -> list[float]:
    """ms per decision with `queued` waiting on `gpus` GPUs, the line kept between decisions."""
    rng = random.Random(queued)
    clock = 1_000_000.0
    users = max(1, queued // 100)

    def request(i: int) -> Request:
        return Request(
            f"q{i}",
            f"u{rng.randrange(users)}",
            rng.choice((1, 1, 1, 2, 4)),
            "fake",
            submitted_at=clock - rng.uniform(0, 86400),
            expected_duration=rng.choice((600, 1800, 3600, 4 * 3600)),
        )

    line = QueueIndex(request(i) for i in range(queued))
    running = [
        Allocation(f"r{i}", f"u{i % users}", 1, "fake", started_at=clock, expected_end=clock + i)
        for i in range(gpus)
    ]
    config, usage, took = PolicyConfig(), Usage(), []
    arrived = queued
    for _ in range(samples + 1):
        clock += 60  # a decision a minute: what ended leaves, a few arrive
        running = [a for a in running if (a.expected_end or 0) > clock]
        for _ in range(20):
            line.add(request(arrived))
            arrived += 1
        t = time.perf_counter()
        decision = decide(line, running, {"fake": gpus}, usage, config, clock)
        took.append((time.perf_counter() - t) * 1000)
        started = set(decision.start)
        for r in [r for r in line if r.id in started]:
            line.remove(r.id, r.user)
            running.append(
                Allocation(
                    r.id,
                    r.user,
                    r.gpus,
                    "fake",
                    started_at=clock,
                    expected_end=clock + r.expected_duration,
                )
            )
        usage = decision.usage
    return took[1:]  # the first decision warms up


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--scale", default="10000,100000,1000000")
    arguments(parser)
    args = parser.parse_args()
    if args.quick and args.scale == parser.get_default("scale"):
        args.scale = "10000,100000"
    with tempfile.TemporaryDirectory() as folder:
        store = Store(f"sqlite:///{folder}/jobs.sqlite")
        store.migrate()
        t0 = time.time()
        rows = [row(f"u{i % args.users}", "queued", t0 - i) for i in range(args.queued)]
        rows += [row(f"u{i}", "running", t0) for i in range(GPUS)]
        with store.session() as session:
            session.execute(insert(Job), rows)
        jobs, admission = service(store)
        person = Identity("u0", frozenset({SUBMIT}), ())
        admin = Identity("root", frozenset({ADMIN}))
        upload = check_upload("nb.ipynb", notebook("x = 1"), None, 10, 2**20)
        queued = [r["id"] for r in rows if r["state"] == "queued"]
        walks: list[float] = []

        def news() -> None:
            jobs.submit(person, Submission("u0", upload, "gpu-1", 600, {}))
            jobs.cancel(admin, queued.pop())

        def one_pass() -> float:
            news()
            t = time.perf_counter()
            decision, _ = admission.decide(max_servers=10**6, now=time.time())
            took = time.perf_counter() - t
            t = time.perf_counter()
            len(decision.waits)
            walks.append((time.perf_counter() - t) * 1000)
            return took * 1000

        def policy_alone() -> float:
            config = admission.config()
            requests, allocations, _ = admission.snapshot(config)
            requests = list(requests)  # decide() as it is called on a plain line
            usage = admission.load_usage()
            t = time.perf_counter()
            decide(requests, allocations, {"fake": GPUS}, usage, config, time.time())
            return (time.perf_counter() - t) * 1000

        ours, baseline = interleaved(one_pass, policy_alone, samples=args.samples)
    n = f"{args.queued:,} queued from {args.users} users"
    report(
        [
            Figure(
                f"scheduler pass, {n}",
                "ms",
                ours,
                baseline,
                "decide() alone",
                goal_value=5.0,
            ),
            Figure(f"walk of the line (worker thread), {n}", "ms", walks[-args.samples :]),
        ]
    )
    figures = []
    for queued in (int(n) for n in args.scale.split(",") if n):
        took = at_scale(queued, args.samples)
        goal = 100.0 if queued >= 1_000_000 else None
        figures.append(
            Figure(f"decision, {queued:,} queued, 4,000 GPUs", "ms", took, goal_value=goal)
        )
        per = [t * 10_000 / queued for t in took]
        figures.append(Figure(f"  per 10,000 queued, at {queued:,}", "ms", per))
    report(figures)


if __name__ == "__main__":
    main()
