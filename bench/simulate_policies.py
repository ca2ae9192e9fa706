"""Replay GPU workloads against admission policies on a virtual clock and print their figures.

Policies (policy_baselines.py): batchhub (batch_service.policy.decide), FIFO, a Slurm-style
multifactor fair-share with EASY backfill, and a greedy first-fit as the work-conserving
reference for utilisation.

Workloads (policy_workloads.py): a deadline rush (215 students, 12 machines x 4 GPUs), one
heavy user against 60 light ones, and the Gavel MSR traces (Stanford Future Data Systems, MIT
license, derived from Microsoft's Philly trace; github.com/stanford-futuredata/gavel,
scheduler/traces/msr/seed=0) read from gavel-msr-seed0 in --trace-dir (by default the folder
shared/traces beside the repository: <repository root>/../shared/traces). Where the traces are
missing the bench says so and leaves that workload out.

Per workload and policy: Jain's index of GPU share among backlogged users (against a fluid
fair share over each user's time in the system, and per clock hour), p50 and
p95 wait by job size, utilisation, makespan, idle GPU-hours while a queued job would have fit,
and Themis finish-time fairness (max rho); definitions in policy_metrics.py.

Then the goals, handed to the table: on the deadline rush, replayed under batchhub, FIFO and
greedy with --samples different seeds (1, 2, ...; the tables above show seed 1), each
figure the median over the seeds, the policies replayed in turns seed by seed (a replay on a
virtual clock is deterministic: a sample is a workload, not a repetition): Jain's index
among backlogged users >= 0.95; p95 wait of short 1-GPU jobs <= 0.2x FIFO's; utilisation
while jobs wait >= 0.98x greedy's. And decide()'s time on 10,000 requests from 500 users on
64 GPUs of 3 types (median of 100 calls per sample, --samples samples after a warm-up) < 5
ms, and the same call with every queue position worked out (for information). --quick: part
of the Gavel trace, 30 calls per sample.

    .venv/bin/python bench/simulate_policies.py [--quick] [--samples 5] [--trace-dir DIR]
"""

from __future__ import annotations

import argparse
import gc
import heapq
import math
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from policy_baselines import Batchhub, Fifo, Greedy, SlurmMultifactor  # noqa: E402
from policy_metrics import Busy, figures  # noqa: E402
from policy_workloads import MACHINE_GPUS, Job, gavel, heavy, rush, rush_exclusive  # noqa: E402

from batch_service.policy import Allocation, PolicyConfig, Request, Usage, decide  # noqa: E402
from bench._table import Figure, arguments, report  # noqa: E402

TRACE_DIR = HERE.parent.parent / "shared" / "traces"
GAVEL = "gavel-msr-seed0"
# One setting for every workload: usage halves every 2 hours (a day's rush is not held
# against tomorrow) and a request's size stops counting against it after 2 hours' wait.
CONFIG = PolicyConfig(half_life_seconds=2 * 3600, max_wait_seconds=2 * 3600)
EXCLUSIVE_RUSH = "deadline rush, 20% exclusive runs: 215 users, 12 machines x 4 GPUs"


def simulate(jobs: list[Job], capacity: int, policy) -> tuple[list[Job], Busy]:  # type: ignore[no-untyped-def]
    """Event-driven replay; returns the jobs with their start and end, and GPU-time figures."""
    jobs = [
        Job(j.id, j.user, j.gpus, j.duration, j.arrival, j.group, exclusive=j.exclusive)
        for j in jobs
    ]
    arrivals = sorted(jobs, key=lambda j: (j.arrival, j.id))
    ends: list[tuple[float, str]] = []
    queue: list[Job] = []
    queued_sizes: Counter[int] = Counter()
    running: dict[str, Job] = {}
    free, now, i = capacity, arrivals[0].arrival, 0
    busy = Busy()
    finished = getattr(policy, "finished", None)
    while i < len(arrivals) or ends:
        t = min(
            arrivals[i].arrival if i < len(arrivals) else math.inf, ends[0][0] if ends else math.inf
        )
        busy.total += (capacity - free) * (t - now)
        if queue:
            busy.while_waiting += (capacity - free) * (t - now)
            busy.waiting_time += t - now
            if free and min(queued_sizes) <= free:
                busy.idle_fit += free * (t - now)
        now = t
        while ends and ends[0][0] <= now:
            job = running.pop(heapq.heappop(ends)[1])
            job.end = now
            free += job.gpus
            if finished:
                finished(job)
        while i < len(arrivals) and arrivals[i].arrival <= now:
            queue.append(arrivals[i])
            queued_sizes[arrivals[i].gpus] += 1
            i += 1
        chosen = policy.pick(now, queue, list(running.values()), free) if queue else []
        if chosen:
            for job in chosen:
                job.start = now
                running[job.id] = job
                free -= job.gpus
                heapq.heappush(ends, (now + job.duration, job.id))
                queued_sizes[job.gpus] -= 1
                if not queued_sizes[job.gpus]:
                    del queued_sizes[job.gpus]
            if free < 0:
                raise AssertionError(f"{policy.name} gave out more GPUs than exist")
            picked = {j.id for j in chosen}
            queue = [j for j in queue if j.id not in picked]
    if queue:
        raise RuntimeError(f"{policy.name} left {len(queue)} jobs that never ran")
    return jobs, busy


def table(name: str, rows: dict[str, dict[str, float]]) -> None:
    """Print one workload's figures, policies side by side."""
    keys = list(next(iter(rows.values())))
    print(f"\n== {name}")
    print(f"{'':34}" + "".join(f"{p:>19}" for p in rows))
    for key in keys:
        cells = "".join(f"{rows[p].get(key, math.nan):>19.3f}" for p in rows)
        print(f"{key:34}{cells}")


def decision_time(
    repeats: int, samples: int, exclusive: float = 0.0
) -> tuple[list[float], list[float]]:
    """decide() on 10,000 requests from 500 users in 20 groups, 64 GPUs of 3 types on 16
    machines: per sample the median ms of `repeats` calls, and of the same calls with every
    position worked out. `exclusive`: the share of requests that need a whole machine."""
    rng = random.Random(3)
    types = {"a100": 32, "h100": 16, "l4": 16}
    queue = [
        Request(
            f"q{i}",
            f"u{(u := rng.randrange(500))}",
            rng.choice([1, 1, 1, 2, 4]),
            rng.choice(list(types)),
            group=f"g{u % 20}",
            kind=rng.choice(["batch", "batch", "batch", "interactive"]),
            submitted_at=rng.uniform(0, 3600),
            expected_duration=rng.uniform(60, 7200),
            exclusive=rng.random() < exclusive,
        )
        for i in range(10_000)
    ]
    running = [
        Allocation(f"{kind}{k}", f"u{k}", 1, kind, group=f"g{k % 20}", expected_end=5000 + k)
        for kind, n in types.items()
        for k in range(n - 2)
    ]
    usage = Usage(
        {f"u{i}": rng.uniform(0, 1e5) for i in range(500)},
        {f"g{i}": rng.uniform(0, 1e6) for i in range(20)},
        3600,
    )
    config = PolicyConfig(machines=16)
    # Start from a collected heap, as a service would: the replays above leave many objects
    # whose collection would otherwise land inside the timed calls.
    gc.collect()
    alone, with_line = [], []
    for _ in range(1 + samples):  # the first sample warms up and is discarded
        decide_ms, line_ms = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            decision = decide(queue, running, types, usage, config, 3600.0)
            t1 = time.perf_counter()
            len(decision.positions)
            t2 = time.perf_counter()
            decide_ms.append((t1 - t0) * 1000)
            line_ms.append((t2 - t0) * 1000)
        alone.append(statistics.median(decide_ms))
        with_line.append(statistics.median(line_ms))
    return alone[1:], with_line[1:]


def rush_goals(samples: int) -> list[Figure]:
    """The goals on the deadline rush, over `samples` seeds."""
    short = "p95 wait 1 GPU <=10 min (min)"
    jain_key, busy_key = "Jain (backlogged, fluid share)", "utilisation while jobs wait"
    got: dict[str, dict[str, list[float]]] = {}
    for seed in range(1, samples + 1):
        jobs, capacity = rush(seed)
        policies = [Batchhub(CONFIG), Fifo(), Greedy()]
        for policy in policies if seed % 2 else policies[::-1]:
            replayed, busy = simulate(jobs, capacity, policy)
            row = figures(replayed, capacity, busy)
            for key in (short, jain_key, busy_key):
                got.setdefault(policy.name, {}).setdefault(key, []).append(row[key])
    ours, fifo, greedy = got["batchhub"], got["FIFO"], got["greedy"]
    rush_name = "deadline rush"
    return [
        Figure(
            f"{rush_name}: Jain's index among backlogged users",
            "",
            ours[jain_key],
            fifo[jain_key],
            "FIFO",
            goal_value=0.95,
            higher_is_better=True,
        ),
        Figure(
            f"{rush_name}: p95 wait of short 1-GPU jobs",
            "min",
            ours[short],
            fifo[short],
            "FIFO",
            goal_ratio=0.2,
        ),
        Figure(
            f"{rush_name}: utilisation while jobs wait",
            "",
            ours[busy_key],
            greedy[busy_key],
            "greedy first-fit",
            goal_ratio=0.98,
            higher_is_better=True,
        ),
    ]


def gavel_dir(trace_dir: Path) -> Path | None:
    """The Gavel MSR traces in trace_dir (or trace_dir itself if it holds them); None if absent."""
    for folder in (trace_dir / GAVEL, trace_dir):
        if (folder / "cluster_specs.json").is_file():
            return folder
    return None


def main() -> int:
    """Run every workload under every policy, print the figures, and report the goals."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--trace-dir",
        type=Path,
        default=TRACE_DIR,
        help=f"the folder holding {GAVEL} (default: <repository root>/../shared/traces)",
    )
    arguments(parser)
    args = parser.parse_args()
    workloads = {
        "deadline rush: 215 users, 48 GPUs": rush(),
        EXCLUSIVE_RUSH: rush_exclusive(),
        "heavy user vs 60 light users, 16 GPUs": heavy(),
    }
    results: dict[str, dict[str, dict[str, float]]] = {}
    traces = gavel_dir(args.trace_dir)
    if traces is None:
        print(
            f"Gavel MSR traces not found: no {GAVEL}/cluster_specs.json in {args.trace_dir}. "
            "The Gavel workload is left out; pass --trace-dir to the folder holding "
            f"{GAVEL} to include it."
        )
    else:
        gavel_jobs, gavel_gpus = gavel(traces, 3000 if args.quick else None)
        name = f"Gavel MSR trace: {len(gavel_jobs)} jobs, {gavel_gpus} GPUs"
        workloads[name] = (gavel_jobs, gavel_gpus)
    for name, (jobs, capacity) in workloads.items():
        rows = {}
        machines = capacity // MACHINE_GPUS if name == EXCLUSIVE_RUSH else 1
        for policy in (
            Batchhub(replace(CONFIG, machines=machines)),
            Fifo(),
            SlurmMultifactor(CONFIG.half_life_seconds),
            Greedy(),
        ):
            t0 = time.perf_counter()
            replayed, busy = simulate(jobs, capacity, policy)
            rows[policy.name] = figures(replayed, capacity, busy)
            rows[policy.name]["replay seconds"] = time.perf_counter() - t0
        results[name] = rows
        table(name, rows)
    print()
    goals = rush_goals(args.samples)
    alone, with_line = decision_time(30 if args.quick else 100, args.samples)
    name = "decide(), 10,000 requests, 500 users, 64 GPUs of 3 types"
    exclusive_alone, exclusive_line = decision_time(
        30 if args.quick else 100, args.samples, exclusive=0.05
    )
    goals += [
        Figure(name, "ms", alone, goal_value=5.0),
        Figure("  the same with every queue position worked out", "ms", with_line),
        Figure("  the same with 5% exclusive requests", "ms", exclusive_alone),
        Figure("  ... and every queue position worked out", "ms", exclusive_line),
    ]
    # Exclusive runs in the rush (seed 1, the table above): one figure each, for information.
    rush_alone = results[EXCLUSIVE_RUSH]
    key = "p95 wait exclusive (a machine) (min)"
    print(
        f"exclusive runs in the rush: p95 wait {rush_alone['batchhub'][key]:.1f} min vs FIFO "
        f"{rush_alone['FIFO'][key]:.1f} min (Slurm {rush_alone['Slurm multifactor'][key]:.1f}); "
        f"utilisation {rush_alone['batchhub']['utilisation']:.3f} vs FIFO "
        f"{rush_alone['FIFO']['utilisation']:.3f}\n"
    )
    report(goals)
    return 0


if __name__ == "__main__":
    sys.exit(main())
