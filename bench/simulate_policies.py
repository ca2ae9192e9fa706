"""Replay GPU workloads against admission policies with a virtual clock and print fairness figures.

Policies: batchhub (batch_service.policy.decide), FIFO (strict, head of line blocks), and a
Slurm-style multifactor fair-share (age + fair-share factor 2^(-usage/shares), EASY backfill).

Workloads:
  rush   a deadline rush: 215 students on 12 machines x 4 GPUs, mostly short 1-GPU runs, some
         long multi-GPU ones, all within three hours (seeded, deterministic).
  heavy  one heavy user queues 300 one-hour jobs at once; 60 light users trickle in short ones.
  gavel  the Gavel traces (Stanford Future Data Systems, MIT license; derived from Microsoft's
         Philly trace), read from ../shared/traces/gavel-msr-seed0 or --trace-dir. Reading of a
         line (checked against Gavel's scripts/utils/generate_trace.py, which writes the job and
         then its arrival): job type, command, num_steps_arg, needs_data_dir, total_steps,
         arrival time (s), scale_factor (GPUs). Durations are not in the trace: we take
         total_steps / 20 steps per second (an assumption, heavy-tailed like Philly). Each file
         is a group (a virtual cluster); users within it are line number mod 5.

Figures per policy: Jain's index of GPU-time among users backlogged through each hour
(averaged over hours, weighted by how many were backlogged), p50/p95 wait by job size,
utilisation, makespan (and the work-conserving lower bound), Themis finish-time fairness (max
rho). Then the goals, and decide()'s time for 10,000 requests from 500 users on 64 GPUs.

    .venv/bin/python bench/simulate_policies.py [--quick] [--trace-dir DIR]
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from batch_service.policy import (  # noqa: E402
    Allocation,
    PolicyConfig,
    Request,
    Usage,
    decide,
)

GPU = "gpu"
WINDOW = 3600.0  # fairness is judged per hour among users backlogged through that hour


@dataclass
class Job:
    """One job of a workload."""

    id: str
    user: str
    gpus: int
    duration: float
    arrival: float
    group: str | None = None
    start: float | None = None
    end: float | None = None


# --- workloads ---------------------------------------------------------------------------
def rush(seed: int = 1) -> tuple[list[Job], int]:
    """215 students, 48 GPUs, a three-hour rush before a deadline."""
    rng = random.Random(seed)
    jobs = []
    for s in range(215):
        user = f"student{s:03d}"
        first = rng.uniform(0, 3 * 3600)
        for k in range(rng.randint(1, 4)):
            if rng.random() < 0.08:
                gpus, duration = rng.choice([2, 4]), rng.uniform(3600, 3 * 3600)
            elif rng.random() < 0.15:
                gpus, duration = 1, rng.uniform(1800, 2 * 3600)
            else:
                gpus, duration = 1, rng.uniform(120, 600)
            jobs.append(Job(f"{user}-{k}", user, gpus, duration, first + k * rng.uniform(0, 900)))
    return jobs, 48


def heavy(seed: int = 2) -> tuple[list[Job], int]:
    """One user with 300 long jobs against 60 light users."""
    rng = random.Random(seed)
    jobs = [Job(f"heavy-{k}", "heavy", 1, 3600, 0.0) for k in range(300)]
    for u in range(60):
        for k in range(3):
            arrival = rng.uniform(0, 6 * 3600)
            jobs.append(Job(f"light{u}-{k}", f"light{u:02d}", 1, rng.uniform(300, 1200), arrival))
    return jobs, 16


def gavel(trace_dir: Path, limit: int) -> tuple[list[Job], int]:
    """The first `limit` jobs (by arrival) of the Gavel MSR traces, on 64 GPUs."""
    jobs = []
    for path in sorted(trace_dir.glob("*.trace")):
        group = path.stem
        for n, line in enumerate(path.read_text().splitlines()):
            fields = line.split("\t")
            if len(fields) != 7:
                continue
            steps, arrival, gpus = int(fields[4]), float(fields[5]), int(fields[6])
            user = f"{group}-u{n % 5}"
            jobs.append(Job(f"{group}-{n}", user, gpus, max(60.0, steps / 20), arrival, group))
    jobs.sort(key=lambda j: (j.arrival, j.id))
    return jobs[:limit], 64


# --- policies ----------------------------------------------------------------------------
class Fifo:
    """Strict first come, first served: the head blocks everything behind it."""

    name = "FIFO"

    def pick(self, now: float, queue: list[Job], running: list[Job], free: int) -> list[Job]:
        chosen = []
        for job in queue:
            if job.gpus > free:
                break
            chosen.append(job)
            free -= job.gpus
        return chosen


@dataclass
class SlurmMultifactor:
    """Slurm-style: priority = age + fair-share (2^(-usage/shares)), then EASY backfill."""

    half_life: float = 7 * 86400
    max_age: float = 86400
    name: str = "Slurm multifactor"
    usage: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    as_of: float = 0.0

    def pick(self, now: float, queue: list[Job], running: list[Job], free: int) -> list[Job]:
        factor = 0.5 ** ((now - self.as_of) / self.half_life)
        for user in self.usage:
            self.usage[user] *= factor
        self.as_of = now
        total = sum(self.usage.values()) or 1.0
        users = {j.user for j in queue} | set(self.usage)
        shares = 1.0 / max(len(users), 1)

        def priority(job: Job) -> float:
            age = min((now - job.arrival) / self.max_age, 1.0)
            fairshare = 2 ** (-(self.usage[job.user] / total) / shares)
            return 1000 * age + 10000 * fairshare

        ordered = sorted(queue, key=lambda j: (-priority(j), j.arrival, j.id))
        chosen, shadow, extra = [], None, 0
        for job in ordered:
            if shadow is None:
                if job.gpus <= free:
                    chosen.append(job)
                    free -= job.gpus
                    self.usage[job.user] += job.gpus * job.duration
                    continue
                ends = sorted(
                    [r.start + r.duration for r in running for _ in range(r.gpus)]
                    + [now + c.duration for c in chosen for _ in range(c.gpus)]
                )
                available, shadow = free, now
                for end in ends:
                    if available >= job.gpus:
                        break
                    available += 1
                    shadow = end
                extra = available - job.gpus
                continue
            if job.gpus <= free and (now + job.duration <= shadow or job.gpus <= extra):
                chosen.append(job)
                free -= job.gpus
                if now + job.duration > shadow:
                    extra -= job.gpus
                self.usage[job.user] += job.gpus * job.duration
        return chosen


@dataclass
class Batchhub:
    """batchhub's decide(), with usage carried from one decision to the next."""

    config: PolicyConfig = field(
        default_factory=lambda: PolicyConfig(half_life_seconds=7 * 86400, max_wait_seconds=4 * 3600)
    )
    name: str = "batchhub"
    usage: Usage = field(default_factory=Usage)

    def pick(self, now: float, queue: list[Job], running: list[Job], free: int) -> list[Job]:
        # Time limits overestimate: a job asks for 1.5x what it will run.
        requests = [
            Request(
                j.id,
                j.user,
                j.gpus,
                GPU,
                group=j.group,
                submitted_at=j.arrival,
                expected_duration=1.5 * j.duration,
            )
            for j in queue
        ]
        allocations = [
            Allocation(
                r.id,
                r.user,
                r.gpus,
                GPU,
                group=r.group,
                started_at=r.start or 0.0,
                expected_end=(r.start or 0.0) + 1.5 * r.duration,
            )
            for r in running
        ]
        capacity = free + sum(r.gpus for r in running)
        decision = decide(requests, allocations, {GPU: capacity}, self.usage, self.config, now)
        self.usage = decision.usage
        by_id = {j.id: j for j in queue}
        return [by_id[i] for i in decision.start]


# --- the simulator ----------------------------------------------------------------------
@dataclass
class Result:
    """Figures of one replay."""

    jobs: list[Job]
    capacity: int
    busy: float
    backlog_time: dict[tuple[int, str], float]
    backlog_service: dict[tuple[int, str], float]
    active_users_time: float


def simulate(jobs: list[Job], capacity: int, policy) -> Result:  # type: ignore[no-untyped-def]
    """Event-driven replay with a virtual clock."""
    jobs = [Job(j.id, j.user, j.gpus, j.duration, j.arrival, j.group) for j in jobs]
    arrivals = sorted(jobs, key=lambda j: (j.arrival, j.id))
    ends: list[tuple[float, str]] = []
    by_id = {j.id: j for j in jobs}
    queue: list[Job] = []
    running: dict[str, Job] = {}
    free, now, i = capacity, 0.0, 0
    busy = 0.0
    backlog_time: dict[tuple[int, str], float] = defaultdict(float)
    backlog_service: dict[tuple[int, str], float] = defaultdict(float)
    while i < len(arrivals) or ends or queue:
        next_arrival = arrivals[i].arrival if i < len(arrivals) else math.inf
        next_end = ends[0][0] if ends else math.inf
        t = min(next_arrival, next_end)
        if t == math.inf:
            raise RuntimeError(f"{policy.name}: jobs that can never run: {queue[:3]}")
        dt = t - now
        if dt > 0:
            busy += (capacity - free) * dt
            held: dict[str, int] = defaultdict(int)
            for r in running.values():
                held[r.user] += r.gpus
            backlogged = {j.user for j in queue}
            start = now
            while start < t:  # split the interval at window boundaries
                window = int(start // WINDOW)
                stop = min(t, (window + 1) * WINDOW)
                for user in backlogged:
                    backlog_time[window, user] += stop - start
                for user in backlogged | set(held):
                    backlog_service[window, user] += held[user] * (stop - start)
                start = stop
        now = t
        while ends and ends[0][0] <= now:
            _, job_id = heapq.heappop(ends)
            job = running.pop(job_id)
            job.end = now
            free += job.gpus
        while i < len(arrivals) and arrivals[i].arrival <= now:
            queue.append(arrivals[i])
            i += 1
        queue.sort(key=lambda j: (j.arrival, j.id))
        chosen = policy.pick(now, list(queue), list(running.values()), free)
        picked = {j.id for j in chosen}
        for job in chosen:
            job = by_id[job.id]
            job.start = now
            running[job.id] = job
            free -= job.gpus
            heapq.heappush(ends, (now + job.duration, job.id))
        if free < 0:
            raise AssertionError(f"{policy.name} over-allocated")
        queue = [j for j in queue if j.id not in picked]
    return Result(jobs, capacity, busy, backlog_time, backlog_service, 0.0)


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def jain(values: list[float]) -> float:
    """Jain's fairness index."""
    values = [v for v in values if v >= 0]
    if not values or not any(values):
        return float("nan")
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values))


def figures(result: Result) -> dict[str, float]:
    """All the numbers of one replay."""
    jobs = result.jobs
    first = min(j.arrival for j in jobs)
    makespan = max(j.end or 0 for j in jobs) - first
    work = sum(j.gpus * j.duration for j in jobs)
    lower_bound = max(work / result.capacity, max(j.arrival + j.duration for j in jobs) - first)
    per_window: dict[int, list[float]] = defaultdict(list)
    for (window, user), t in result.backlog_time.items():
        if t >= 0.9 * WINDOW:
            per_window[window].append(result.backlog_service[window, user])
    scored = [(len(v), jain(v)) for v in per_window.values() if len(v) > 1 and any(v)]
    fairness = sum(n * j for n, j in scored) / sum(n for n, _ in scored) if scored else math.nan
    waits: dict[str, list[float]] = defaultdict(list)
    for j in jobs:
        size = (
            "1 GPU <=10 min"
            if j.gpus == 1 and j.duration <= 600
            else ("1 GPU long" if j.gpus == 1 else f"{j.gpus} GPUs")
        )
        waits[size].append((j.start or 0) - j.arrival)
    by_user: dict[str, list[Job]] = defaultdict(list)
    for j in jobs:
        by_user[j.user].append(j)
    active = len(by_user)
    rhos = []
    for own in by_user.values():
        shared = max(j.end or 0 for j in own) - min(j.arrival for j in own)
        alone = max(
            sum(j.gpus * j.duration for j in own) / (result.capacity / active),
            max(j.duration for j in own),
        )
        rhos.append(shared / alone)
    out = {
        "jain": fairness,
        "utilisation": result.busy / (result.capacity * makespan),
        "makespan_h": makespan / 3600,
        "optimum_h": lower_bound / 3600,
        "vs_optimum": lower_bound / makespan,
        "max_rho": max(rhos),
    }
    for size, values in sorted(waits.items()):
        out[f"p50 wait {size} (min)"] = percentile(values, 50) / 60
        out[f"p95 wait {size} (min)"] = percentile(values, 95) / 60
    return out


def table(name: str, rows: dict[str, dict[str, float]]) -> None:
    """Print one workload's figures, policies side by side."""
    keys = list(next(iter(rows.values())))
    policies = list(rows)
    print(f"\n== {name}")
    print(f"{'':34}" + "".join(f"{p:>20}" for p in policies))
    for key in keys:
        print(f"{key:34}" + "".join(f"{rows[p].get(key, float('nan')):>20.3f}" for p in policies))


def decision_time(repeats: int) -> tuple[float, float]:
    """decide() on 10,000 requests from 500 users, 64 GPUs of 3 types: median, p99 (ms)."""
    rng = random.Random(3)
    types = {"a100": 32, "h100": 16, "l4": 16}
    queue = [
        Request(
            f"q{i}",
            f"u{rng.randrange(500)}",
            rng.choice([1, 1, 1, 2, 4]),
            rng.choice(list(types)),
            submitted_at=rng.uniform(0, 3600),
            expected_duration=rng.uniform(60, 7200),
        )
        for i in range(10_000)
    ]
    running = []
    for kind, n in types.items():
        for k in range(n - 2):
            running.append(Allocation(f"{kind}{k}", f"u{k}", 1, kind, expected_end=5000 + k))
    usage = Usage({f"u{i}": rng.uniform(0, 1e5) for i in range(500)}, {}, 3600)
    config = PolicyConfig()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        decide(queue, running, types, usage, config, 3600.0)
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples), percentile(samples, 99)


def main() -> int:
    """Run every workload under every policy and print the figures and goals."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer Gavel jobs and repeats")
    parser.add_argument(
        "--trace-dir",
        default=str(
            Path(__file__).resolve().parent.parent.parent / "shared/traces/gavel-msr-seed0"
        ),
    )
    args = parser.parse_args()
    trace_dir = Path(args.trace_dir)
    if not trace_dir.is_dir():
        print(f"Gavel traces not found at {trace_dir}: pass --trace-dir", file=sys.stderr)
        return 2
    workloads = {
        "deadline rush (215 users, 48 GPUs)": rush(),
        "heavy user vs 60 light users (16 GPUs)": heavy(),
        "Gavel MSR trace (64 GPUs)": gavel(trace_dir, 400 if args.quick else 1200),
    }
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, (jobs, capacity) in workloads.items():
        rows = {}
        for policy in (Batchhub(), Fifo(), SlurmMultifactor()):
            t0 = time.perf_counter()
            rows[policy.name] = figures(simulate(jobs, capacity, policy))
            rows[policy.name]["sim seconds"] = time.perf_counter() - t0
        results[name] = rows
        table(name, rows)
    rush_rows = results["deadline rush (215 users, 48 GPUs)"]
    ours, fifo = rush_rows["batchhub"], rush_rows["FIFO"]
    short = "p95 wait 1 GPU <=10 min (min)"
    median, p99 = decision_time(20 if args.quick else 60)
    print("\n== goals (deadline rush)")
    goals = [
        (
            "Jain's index among backlogged users >= 0.95",
            ours["jain"] >= 0.95,
            f"{ours['jain']:.3f}",
        ),
        (
            "p95 wait of short 1-GPU jobs <= 1/5 of FIFO's",
            ours[short] <= fifo[short] / 5,
            f"{ours[short]:.1f} min vs FIFO {fifo[short]:.1f} min "
            f"(ratio {ours[short] / fifo[short] if fifo[short] else float('nan'):.3f})",
        ),
        (
            "utilisation >= 98% of a work-conserving optimum",
            ours["vs_optimum"] >= 0.98,
            f"makespan lower bound / makespan = {ours['vs_optimum']:.3f}",
        ),
        (
            "decision time (10,000 requests, 500 users, 64 GPUs) median < 5 ms",
            median < 5,
            f"median {median:.2f} ms, p99 {p99:.2f} ms",
        ),
    ]
    for text, ok, detail in goals:
        print(f"{'PASS' if ok else 'FAIL'}  {text}: {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
