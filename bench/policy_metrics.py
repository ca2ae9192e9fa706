"""Figures of one replay: fairness, waits by job size, utilisation, makespan, finish-time fairness.

Fairness (Jain's index of GPU share among backlogged users, against a fluid fair share): the
reference is ideal fair sharing of the same workload, as in fair queueing (GPS) and Sabin
and Sadayappan's "resource equality" for parallel job schedulers (JSSPP 2005). At every
instant each user with unfinished work (queued or running) deserves the max-min share of the
GPUs capped by what that work asks for: min(demand, level), the level filling the cluster.
Over a user's whole time in the system, what they deserved is that integral and what they got
is the GPU-time their jobs held. Each user who was backlogged (some job of theirs waited)
scores min(1, got / deserved) and the index is Jain's over those scores (Jain, Chiu and Hawe
normalise by the fair allocation this way). A user who waits long for little work scores
low; a run cannot be split, so a wide job that runs scores 1, and the time it kept others
waiting shows in their scores. Runs are never preempted, so the measure spans each user's
time in the system rather than fixed windows.

The same index per clock hour (printed beside it): the users who had a job waiting for at
least 90% of the hour are backlogged. Their fair share of the hour is the max-min level L:
the GPU-hours left by users who were not backlogged (who got what they asked for), split
equally. Each backlogged user scores min(1, GPU-hours received / L) and the hour's index is
Jain's over those scores; a user holding more than L scores 1, not more. Hours are weighted
by how many users were backlogged. Without preemption this hourly form stays well below 1
whenever runs are longer than an hour: a user whose only job waits through an hour gets
nothing in it, while whoever holds the GPUs keeps them for hours.

Utilisation: GPU-time in use over the makespan, and over the time some job waited (what a
work-conserving scheduler keeps at its best; only jobs too wide for the free GPUs, or GPUs
held for a reservation, leave it short of 1). Idle GPU-hours while a job fit: time a queued
job would have fit the free GPUs and they stayed idle.

Finish-time fairness (Themis): rho = a user's time from first arrival to last finish, over
the time their work would take on 1/N of the cluster (N users in the workload), or their
longest job if that is longer; max rho is the worst-treated user.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from policy_workloads import Job

HOUR = 3600.0


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def jain(values: list[float]) -> float:
    """Jain's fairness index: 1 when all are equal, 1/n when one gets everything."""
    squares = sum(v * v for v in values)
    return sum(values) ** 2 / (len(values) * squares) if squares else float("nan")


def fluid_level(demands: list[float], supply: float) -> float:
    """The max-min level: users asking less than it get what they ask, the rest get it."""
    left, n = supply, len(demands)
    for i, demand in enumerate(sorted(demands)):
        share = left / (n - i)
        if demand >= share:
            return share
        left -= demand
    return math.inf  # everyone gets all they ask


def fluid_fairness(jobs: list[Job], capacity: int) -> float:
    """Jain's index among backlogged users of GPU-time got over a fluid fair share deserved."""
    # (time, user, change in demand, change in GPUs held), swept in time order.
    changes: list[tuple[float, str, int, int]] = []
    for j in jobs:
        start, end = j.start or j.arrival, j.end or j.arrival
        changes += [(j.arrival, j.user, j.gpus, 0), (start, j.user, 0, j.gpus)]
        changes.append((end, j.user, -j.gpus, -j.gpus))
    changes.sort(key=lambda c: c[0])
    demand: dict[str, int] = defaultdict(int)
    held: dict[str, int] = defaultdict(int)
    deserved: dict[str, float] = defaultdict(float)
    got: dict[str, float] = defaultdict(float)
    i = 0
    while i < len(changes):
        now = changes[i][0]
        while i < len(changes) and changes[i][0] == now:
            _, user, more, holds = changes[i]
            demand[user] += more
            held[user] += holds
            if not demand[user]:
                del demand[user]
            i += 1
        if i == len(changes) or not demand:
            continue
        span = changes[i][0] - now
        level = fluid_level(list(demand.values()), capacity)
        for user, asked in demand.items():
            deserved[user] += min(asked, level) * span
            got[user] += held[user] * span
    backlogged = {j.user for j in jobs if (j.start or j.arrival) > j.arrival}
    scores = [min(1.0, got[u] / deserved[u]) for u in backlogged if deserved[u] > 0]
    return jain(scores) if scores else float("nan")


def _spread(start: float, end: float, weight: float, into: dict[int, float]) -> None:
    """Add weight x (overlap with each hour) of [start, end) into per-hour totals."""
    while start < end:
        hour = int(start // HOUR)
        stop = min(end, (hour + 1) * HOUR)
        into[hour] += weight * (stop - start)
        start = stop


def _union(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def hourly_fairness(jobs: list[Job], capacity: int) -> float:
    """Jain's index of normalised GPU share among backlogged users, averaged over hours."""
    waiting: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    served: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    by_user: dict[str, list[Job]] = defaultdict(list)
    for j in jobs:
        by_user[j.user].append(j)
    for user, own in by_user.items():
        for start, end in _union((j.arrival, j.start or j.arrival) for j in own):
            _spread(start, end, 1.0, waiting[user])
        for j in own:
            _spread(j.start or 0.0, j.end or 0.0, j.gpus, served[user])
    hours = {h for per in served.values() for h in per}
    total, weight = 0.0, 0
    for hour in sorted(hours):
        backlogged = [u for u in waiting if waiting[u].get(hour, 0.0) >= 0.9 * HOUR]
        if len(backlogged) < 2:
            continue
        others = sorted(served[u].get(hour, 0.0) for u in served if u not in backlogged)
        got = [served[u].get(hour, 0.0) for u in backlogged]
        level = _max_min_level(others, len(backlogged), capacity * HOUR)
        scores = [min(1.0, g / level) for g in got]
        total += len(backlogged) * jain(scores) if any(scores) else 0.0
        weight += len(backlogged)
    return total / weight if weight else float("nan")


def _max_min_level(others: list[float], n: int, supply: float) -> float:
    """The equal share L of n unsatisfied users once the others take min(their use, L)."""
    left, below = supply, 0.0
    for i, used in enumerate(others):  # ascending
        level = (left - below) / (n + len(others) - i)
        if used >= level:
            return level
        below += used
    return (left - below) / n


@dataclass
class Busy:
    """GPU-seconds in use, in all and while some job waited, and idle ones a queued job fit."""

    total: float = 0.0
    while_waiting: float = 0.0
    waiting_time: float = 0.0
    idle_fit: float = 0.0


def figures(jobs: list[Job], capacity: int, busy: Busy) -> dict[str, float]:
    """All the numbers of one replay."""
    first = min(j.arrival for j in jobs)
    makespan = max(j.end or 0.0 for j in jobs) - first
    waits: dict[str, list[float]] = defaultdict(list)
    for j in jobs:
        waits[size_class(j)].append((j.start or 0.0) - j.arrival)
    by_user: dict[str, list[Job]] = defaultdict(list)
    for j in jobs:
        by_user[j.user].append(j)
    share = capacity / len(by_user)
    rhos = []
    for own in by_user.values():
        shared = max(j.end or 0.0 for j in own) - min(j.arrival for j in own)
        alone = max(sum(j.gpus * j.duration for j in own) / share, max(j.duration for j in own))
        rhos.append(shared / alone)
    out = {
        "Jain (backlogged, fluid share)": fluid_fairness(jobs, capacity),
        "Jain (backlogged, hourly)": hourly_fairness(jobs, capacity),
        "utilisation": busy.total / (capacity * makespan),
        "utilisation while jobs wait": busy.while_waiting / (capacity * busy.waiting_time),
        "makespan (h)": makespan / HOUR,
        "idle GPU-h while a job fit": busy.idle_fit / HOUR,
        "max rho (Themis)": max(rhos),
    }
    for size in SIZES:
        if waits.get(size):
            out[f"p50 wait {size} (min)"] = percentile(waits[size], 50) / 60
            out[f"p95 wait {size} (min)"] = percentile(waits[size], 95) / 60
    return out


SIZES = ["1 GPU <=10 min", "1 GPU longer", "2-4 GPUs", "8+ GPUs", "exclusive (a machine)"]


def size_class(job: Job) -> str:
    """The row a job's wait is reported in."""
    if getattr(job, "exclusive", False):
        return SIZES[4]
    if job.gpus == 1:
        return SIZES[0] if job.duration <= 600 else SIZES[1]
    return SIZES[2] if job.gpus <= 4 else SIZES[3]
