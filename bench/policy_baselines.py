"""Policies the simulator replays: batchhub's decide() and the baselines it is measured against.

Every policy sees, at each event, the queue (oldest first), what runs, and the free GPUs, and
returns the jobs to start. Time limits are what a user would ask for: 1.5 times the run's true
duration; no policy knows true durations.

- batchhub: batch_service.policy.decide, usage carried from one decision to the next.
- FIFO: strict first come, first served; the head blocks everything behind it.
- Slurm multifactor: priority = 1000 x age (capped at a day) + 10000 x 2^(-usage/shares)
  (Slurm's classic fair-share factor with equal shares; usage accrues while jobs run), then
  EASY backfill over time limits.
- Greedy: first fit in arrival order, never idles a GPU that a queued job fits; the
  work-conserving reference for utilisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from policy_workloads import Job

from batch_service.policy import Allocation, PolicyConfig, Request, Usage, decide, settle

GPU = "gpu"
OVERESTIMATE = 1.5  # a job's time limit over its true duration


def time_limit(job: Job) -> float:
    """The time limit a job is submitted with."""
    return OVERESTIMATE * job.duration


class Fifo:
    """Strict first come, first served."""

    name = "FIFO"

    def pick(self, now: float, queue: list[Job], running: list[Job], free: int) -> list[Job]:
        chosen = []
        for job in queue:
            if job.gpus > free:
                break
            chosen.append(job)
            free -= job.gpus
        return chosen


class Greedy:
    """First fit in arrival order: work conserving, with no regard for fairness."""

    name = "greedy"

    def pick(self, now: float, queue: list[Job], running: list[Job], free: int) -> list[Job]:
        chosen = []
        for job in queue:
            if free == 0:
                break
            if job.gpus <= free:
                chosen.append(job)
                free -= job.gpus
        return chosen


@dataclass
class SlurmMultifactor:
    """Age plus fair-share priority, EASY backfill behind the first job that does not fit.

    Usage accrues while jobs run (GPU-seconds), decayed with the same half-life as batchhub's.
    """

    half_life: float = 7 * 86400
    max_age: float = 86400
    name: str = "Slurm multifactor"
    usage: dict[str, float] = field(default_factory=dict)
    as_of: float = 0.0

    def _accrue(self, now: float, running: list[Job]) -> None:
        dt = now - self.as_of
        if dt <= 0:
            return
        factor = 0.5 ** (dt / self.half_life)
        self.usage = {user: used * factor for user, used in self.usage.items()}
        for job in running:
            self.usage[job.user] = self.usage.get(job.user, 0.0) + job.gpus * dt
        self.as_of = now

    def pick(self, now: float, queue: list[Job], running: list[Job], free: int) -> list[Job]:
        self._accrue(now, running)
        if free == 0:
            return []
        total = sum(self.usage.values()) or 1.0
        shares = 1.0 / max(len({j.user for j in queue} | set(self.usage)), 1)

        def priority(job: Job) -> float:
            age = min((now - job.arrival) / self.max_age, 1.0)
            fairshare = 2 ** (-(self.usage.get(job.user, 0.0) / total) / shares)
            return 1000 * age + 10000 * fairshare

        ordered = sorted(queue, key=lambda j: (-priority(j), j.arrival, j.id))
        chosen: list[Job] = []
        shadow: float | None = None
        extra = 0
        for job in ordered:
            if free == 0:
                break
            if shadow is None:
                if job.gpus <= free:
                    chosen.append(job)
                    free -= job.gpus
                    continue
                # Reserve for this job at the earliest time enough GPUs free up (by time limits).
                ends = sorted(
                    [(r.start or now) + time_limit(r) for r in running for _ in range(r.gpus)]
                    + [now + time_limit(c) for c in chosen for _ in range(c.gpus)]
                )
                available, shadow = free, now
                for end in ends:
                    if available >= job.gpus:
                        break
                    available += 1
                    shadow = end
                extra = available - job.gpus
                continue
            ends_before = now + time_limit(job) <= shadow
            if job.gpus <= free and (ends_before or job.gpus <= extra):
                chosen.append(job)
                free -= job.gpus
                if not ends_before:
                    extra -= job.gpus
        return chosen


@dataclass
class Batchhub:
    """batchhub's decide(), with usage carried from one decision to the next."""

    config: PolicyConfig = field(default_factory=PolicyConfig)
    name: str = "batchhub"
    usage: Usage = field(default_factory=Usage)
    _requests: dict[str, Request] = field(default_factory=dict)
    _allocations: dict[str, Allocation] = field(default_factory=dict)

    def _request(self, job: Job) -> Request:
        request = self._requests.get(job.id)
        if request is None:
            request = self._requests[job.id] = Request(
                job.id,
                job.user,
                job.gpus,
                GPU,
                group=job.group,
                submitted_at=job.arrival,
                expected_duration=time_limit(job),
                exclusive=job.exclusive,
            )
        return request

    def _allocation(self, job: Job) -> Allocation:
        allocation = self._allocations.get(job.id)
        if allocation is None:
            start = job.start or 0.0
            allocation = self._allocations[job.id] = Allocation(
                job.id,
                job.user,
                job.gpus,
                GPU,
                group=job.group,
                started_at=start,
                expected_end=start + time_limit(job),
                exclusive=job.exclusive,
            )
        return allocation

    def pick(self, now: float, queue: list[Job], running: list[Job], free: int) -> list[Job]:
        requests = [self._request(j) for j in queue]
        allocations = [self._allocation(r) for r in running]
        capacity = free + sum(r.gpus for r in running)
        decision = decide(requests, allocations, {GPU: capacity}, self.usage, self.config, now)
        self.usage = decision.usage
        if decision.start:
            by_id = {j.id: j for j in queue}
            return [by_id[i] for i in decision.start]
        return []

    def finished(self, job: Job) -> None:
        """Refund the part of the time limit a finished job did not use."""
        self.usage = settle(
            self.usage, job.user, job.group, time_limit(job), job.duration, job.gpus
        )
        self._requests.pop(job.id, None)
        self._allocations.pop(job.id, None)
