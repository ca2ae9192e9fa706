"""Admission glue: reads the line from the store, asks the pure policy, keeps usage.

The policy (batch_service.policy) sees queued jobs and waiting interactive turns as requests,
and starting/running jobs, live kernels and admitted turns as allocations.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from typing import NamedTuple

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from batch_service.clock import now
from batch_service.job_changes import EVERYTHING, JobChanges
from batch_service.jobs import ACTIVE_STATES
from batch_service.policy import (
    Allocation,
    Decision,
    PolicyConfig,
    Request,
    Usage,
    charge,
    decay,
    decide,
    settle,
)
from batch_service.policy.queue_index import QueueIndex
from batch_service.queued import QueuedRequests, holding_rows, read_jobs
from batch_service.store import Job, Setting, Store, Weight
from batch_service.store import Usage as UsageRow
from batch_service.turns import ADMITTED, WAITING, TurnService
from spawner.profiles import Profile

# Runs that ended, and live kernels let go, up to this time have been settled.
SETTLED_KEY = "usage_settled_until"
# An interactive server has no time limit: it is charged this much at admission, and what it
# really held once it stops.
INTERACTIVE_CHARGE_SECONDS = 3600.0
# How soon a stopping server's GPUs are expected back (batch servers stop within seconds).
STOPPING_SECONDS = 10.0


def fair_group(chosen: str | None, owner_groups: Iterable[str], config: PolicyConfig) -> str | None:
    """The group a request counts in: the owner's choice, else the first (by name) of their
    groups that the policy names in a weight or a cap; None makes the user a group alone.

    Only named groups count, so a group that exists for other reasons (who may use a profile,
    who administers the queue) does not silently merge its members' turns.
    """
    if chosen:
        return chosen
    named = config.named_groups
    return next((g for g in sorted(owner_groups or ()) if g in named), None)


class SettledRow(NamedTuple):
    """A job whose run ended or whose live kernel was let go: what settling its charge reads."""

    owner: str
    profile: str
    group_name: str | None
    owner_groups: list[str]
    time_limit: int
    admitted_at: float | None
    started_at: float | None
    finished_at: float | None
    live_ended_at: float | None


class Admission:
    """One decision per scheduler pass, with usage and weights kept in the store."""

    def __init__(
        self,
        store: Store,
        turns: TurnService,
        profiles: Mapping[str, Profile],
        capacity: Mapping[str, int],
        policy: PolicyConfig,
    ) -> None:
        self.store = store
        self.turns = turns
        self.profiles = profiles
        self.capacity = dict(capacity)
        self.policy = policy
        self.changes = JobChanges(store)
        self.queued = QueuedRequests(self.changes, self._gpus, fair_group, self._exclusive)
        self.holding = holding_rows(self.changes)
        # This service is the only writer of weights and usage: both are kept between passes.
        self._config: PolicyConfig | None = None
        # (kind, name) -> (GPU-seconds, as of): the usage table as last saved.
        self._usage_rows: dict[tuple[str, str], tuple[float, float]] | None = None
        # Turns that waited in the last snapshot (what a started request's id is, if not a job).
        self.waiting_turns: set[str] = set()
        # How many requests the last decision was offered (those left waiting, and those it
        # started).
        self.line_length = 0
        # Admission charges of jobs sent back in line before they ran (owner, chosen group,
        # owner's groups, GPU-seconds): given back by the next pass that saves usage.
        self._refunds: list[tuple[str, str | None, tuple[str, ...], float]] = []

    def config(self) -> PolicyConfig:
        """Policy settings from the values file, with weights admins set at run time."""
        if self._config is not None:
            return self._config
        config = self.policy
        user_weights = dict(config.user_weights)
        group_weights = dict(config.group_weights)
        with self.store.session() as session:
            for row in session.scalars(select(Weight)):
                (user_weights if row.kind == "user" else group_weights)[row.name] = row.weight
        self._config = PolicyConfig(
            **{
                **{f: getattr(config, f) for f in PolicyConfig.__dataclass_fields__},
                "user_weights": user_weights,
                "group_weights": group_weights,
            }
        )
        return self._config

    def _exclusive(self, profile_name: str) -> bool:
        profile = self.profiles.get(profile_name)
        return bool(profile and profile.exclusive)

    def _gpus(self, profile_name: str) -> tuple[int, str | None]:
        profile = self.profiles.get(profile_name)
        return (profile.gpus, profile.gpu_type) if profile else (0, None)

    def refund(self, job: Job, held: float = 0.0) -> None:
        """A job admitted (so charged its GPUs x time limit) went back in line, or never
        started, before any of its code ran: its charge comes back, less the `held` seconds a
        server of its start had its GPUs. Without this, each start that the hub refused or
        that failed charged its owner's turn again."""
        gpus, _ = self._gpus(job.profile)
        unused = job.time_limit - max(0.0, held)
        if gpus and unused > 0:
            groups = tuple(job.owner_groups or ())
            self._refunds.append((job.owner, job.group_name, groups, gpus * unused))

    def _give_back(self, usage: Usage, config: PolicyConfig) -> tuple[Usage, bool]:
        refunds, self._refunds = self._refunds, []
        for owner, chosen, groups, gpu_seconds in refunds:
            usage = charge(usage, owner, fair_group(chosen, groups, config), -gpu_seconds)
        return usage, bool(refunds)

    def snapshot(
        self,
        config: PolicyConfig,
        stopping: Mapping[str, str] | None = None,
        session: Session | None = None,
    ) -> tuple[QueueIndex, list[Allocation], int]:
        """The line (queued jobs and waiting turns), what holds GPUs, and how many batch
        servers exist.

        stopping: job id -> owner of every batch server the hub still has; one whose job no
        longer holds anything is stopping, and its GPUs count as held until the hub has let
        it go (its spawner gives them back at the very end of the stop).
        """
        if session is None:
            with self.store.session() as session:
                return self.snapshot(config, stopping, session)
        self.holding.update(session)
        holding = self.holding.rows.values()
        # A sweep's points beyond its max_parallel are not offered (they wait, with words).
        active = Counter(r.sweep_id for r in holding if r.sweep_id and r.state in ACTIVE_STATES)
        queued = self.queued.line(config, session, active)
        turns: list[Request] = []
        allocations = []
        for row in holding:
            gpus, gpu_type = self._gpus(row.profile)
            # GPUs are held from the moment the service asked for the server; the time limit
            # counts from the run's start once the runner said it started.
            started = row.admitted_at or row.started_at or 0.0
            runs_from = row.started_at or started
            live = bool(row.live or row.live_pending) and row.state not in ACTIVE_STATES
            live_until = row.live_until
            if row.live_pending and not row.live:
                # Kept, not yet reachable: its window will start once the hub sees it up.
                live_until = (row.finished_at or started) + row.live_window
            allocations.append(
                Allocation(
                    row.id,
                    row.owner,
                    gpus,
                    gpu_type,
                    group=fair_group(row.group_name, row.owner_groups, config),
                    started_at=started,
                    expected_end=runs_from + row.time_limit,
                    live=live,
                    live_until=live_until,
                    exclusive=self._exclusive(row.profile),
                )
            )
        allocations.extend(self._stopping(stopping or {}, self.holding.rows.keys(), session))
        self.waiting_turns = set()
        for turn in self.turns.all(session):
            gpus, gpu_type = self._gpus(turn.profile)
            group = fair_group(None, turn.owner_groups, config)
            if turn.state == WAITING:
                self.waiting_turns.add(turn.id)
                turns.append(
                    Request(
                        turn.id,
                        turn.owner,
                        gpus,
                        gpu_type,
                        group=group,
                        kind="interactive",
                        submitted_at=turn.submitted_at,
                        expected_duration=INTERACTIVE_CHARGE_SECONDS,
                    )
                )
            elif turn.state == ADMITTED:
                allocations.append(
                    Allocation(
                        turn.id,
                        turn.owner,
                        gpus,
                        gpu_type,
                        group=group,
                        started_at=turn.admitted_at or 0.0,
                        kind="interactive",
                    )
                )
        # Live kernels are counted apart from running work: they never take a run's slot.
        active = sum(1 for row in holding if row.state in ACTIVE_STATES)
        return queued.plus(turns), allocations, active

    @property
    def held_back(self) -> Mapping[str, str]:
        """Queued sweep points the last snapshot did not offer -> why they wait."""
        return self.queued.gate.held

    def _stopping(
        self, servers: Mapping[str, str], holding: Collection[str], session: Session
    ) -> list[Allocation]:
        gone = [job_id for job_id in servers if job_id not in holding]
        if not gone:
            return []
        profiles = read_jobs(session, select(Job.id, Job.profile), gone, lambda *r: r)
        held, t = [], now()
        for job_id, profile in profiles:
            gpus, gpu_type = self._gpus(profile)
            # Any stopping server keeps the machine from an exclusive run until it is gone.
            if gpus or any(p.exclusive for p in self.profiles.values()):
                held.append(
                    Allocation(
                        f"{job_id}:stopping",
                        servers[job_id],
                        gpus,
                        gpu_type,
                        started_at=t,
                        # Back within seconds: the spawner hands them over at the stop's end.
                        expected_end=t + STOPPING_SECONDS,
                        kind="stopping",
                    )
                )
        return held

    def load_usage(self) -> Usage:
        """Usage as last saved, each entry decayed to the latest save."""
        if self._usage_rows is None:
            with self.store.session() as session:
                self._usage_rows = {
                    (r.kind, r.name): (r.gpu_seconds, r.updated_at)
                    for r in session.scalars(select(UsageRow))
                }
        as_of = max((at for _, at in self._usage_rows.values()), default=0.0)
        by_kind: dict[str, dict[str, float]] = {"user": {}, "group": {}}
        for (kind, name), (value, at) in self._usage_rows.items():
            by_kind.setdefault(kind, {})[name] = self._decayed(value, at, as_of)
        return Usage(by_kind["user"], by_kind["group"], as_of)

    def _decayed(self, value: float, since: float, until: float) -> float:
        half_life = self.policy.half_life_seconds
        if until <= since or half_life <= 0:
            return value
        return value * 0.5 ** ((until - since) / half_life)

    def save_usage(
        self, usage: Usage, session: Session
    ) -> dict[tuple[str, str], tuple[float, float]]:
        """Keep usage (charged at admission) for the next pass and restarts. Only entries that
        changed beyond their decay are written (with hundreds of users, most did not); returns
        them, to be kept in memory once the session commits."""
        kept = self._usage_rows if self._usage_rows is not None else {}
        written = {}
        for kind, values in (("user", usage.by_user), ("group", usage.by_group)):
            for name, value in values.items():
                before = kept.get((kind, name))
                if before is not None and math.isclose(
                    self._decayed(before[0], before[1], usage.as_of),
                    value,
                    rel_tol=1e-9,
                    abs_tol=1e-6,
                ):
                    continue
                session.merge(
                    UsageRow(kind=kind, name=name, gpu_seconds=value, updated_at=usage.as_of)
                )
                written[(kind, name)] = (value, usage.as_of)
        return written

    def settle_finished(
        self, usage: Usage, config: PolicyConfig, session: Session, preview: bool = False
    ) -> tuple[Usage, float | None, list[str]]:
        """Correct admission charges by what was really held once it is let go.

        A run was charged its whole time limit: what it did not use comes back. A live kernel
        after the run and an interactive server's time beyond its admission charge are added.
        Returns the corrected usage, the new watermark of settled job events (None when no
        job event happened since) and the ended turns settled (to drop with the usage saved).
        A preview saves nothing, so it leaves the jobs written since the last look to the next
        pass that does.
        """
        watermark = None
        changed = self.changes.take("settle")
        if preview or changed:
            # A job that ended was written since the last look: only those need reading.
            only = None if preview or EVERYTHING in changed else changed
            usage, watermark = self._settle_jobs(usage, config, only, session)
        turns = self.turns.ended(session)
        for turn in turns:
            gpus, _ = self._gpus(turn.profile)
            held = max(0.0, (turn.ended_at or 0.0) - (turn.admitted_at or 0.0))
            group = fair_group(None, turn.owner_groups, config)
            usage = settle(usage, turn.owner, group, INTERACTIVE_CHARGE_SECONDS, held, gpus)
        return usage, watermark, [t.id for t in turns]

    def _settle_jobs(
        self, usage: Usage, config: PolicyConfig, only: set[str] | None, session: Session
    ) -> tuple[Usage, float | None]:
        """Runs ended and live kernels let go since the watermark, among the jobs `only` (the
        ones written since the last look) or all of them."""
        mark = session.get(Setting, SETTLED_KEY)
        since = float(mark.value) if mark is not None else 0.0
        query = select(
            Job.owner,
            Job.profile,
            Job.group_name,
            Job.owner_groups,
            Job.time_limit,
            Job.admitted_at,
            Job.started_at,
            Job.finished_at,
            Job.live_ended_at,
        ).where(
            or_(Job.admitted_at.is_not(None), Job.started_at.is_not(None)),
            or_(Job.finished_at > since, Job.live_ended_at > since),
        )
        ended = read_jobs(session, query, only, lambda *r: SettledRow(*r))
        watermark = None
        for row in ended:
            gpus, _ = self._gpus(row.profile)
            group = fair_group(row.group_name, row.owner_groups, config)
            if row.finished_at is not None and row.finished_at > since:
                watermark = max(watermark or since, row.finished_at)
                # Service times only: from asking the hub for the server to the run's end.
                began = row.admitted_at or row.started_at or row.finished_at
                used = max(0.0, row.finished_at - began)
                usage = settle(usage, row.owner, group, row.time_limit, used, gpus)
            if row.live_ended_at is not None and row.live_ended_at > since:
                watermark = max(watermark or since, row.live_ended_at)
                held = max(0.0, row.live_ended_at - (row.finished_at or row.live_ended_at))
                usage = charge(usage, row.owner, group, gpus * held)
        return usage, watermark

    def decide(
        self,
        max_servers: int,
        now: float,
        max_live: int | None = None,
        stopping: Mapping[str, str] | None = None,
        preview: bool = False,
    ) -> tuple[Decision, dict[str, str]]:
        """One decision; returns it with each request's kind. A preview (the queue is paused)
        admits nothing and changes nothing: it only places everyone in line."""
        config = self.config()
        usage = self.load_usage()
        # A preview saves nothing: refunds wait for a pass that does.
        usage, refunded = (usage, False) if preview else self._give_back(usage, config)
        # One transaction reads all a pass needs (each costs more than the reads in it).
        with self.store.session() as session:
            requests, allocations, servers = self.snapshot(config, stopping, session)
            self.line_length = len(requests)
            usage, settled_until, settled_turns = self.settle_finished(
                usage, config, session, preview
            )
        # A preview has no room: everyone stays in line, in the order a pass would give.
        decision = decide(
            requests,
            allocations,
            {} if preview else self.capacity,
            usage,
            config,
            now,
            batch_slots=0 if preview else max(0, max_servers - servers),
            live_slots=None if preview else max_live,
        )
        if not preview and (
            decision.start or settled_until is not None or settled_turns or refunded
        ):
            # Usage and what it settled are saved together: nothing is charged twice or lost.
            with self.store.session() as session:
                written = self.save_usage(decision.usage, session)
                if settled_until is not None:
                    session.merge(Setting(key=SETTLED_KEY, value=settled_until))
                self.turns.drop(settled_turns, session)
            assert self._usage_rows is not None  # read by load_usage above
            self._usage_rows.update(written)
        # Each started request's kind: an interactive server's turn, or a batch job.
        kinds = {
            rid: "interactive" if rid in self.waiting_turns else "batch" for rid in decision.start
        }
        return decision, kinds

    def usage_now(self, now: float) -> Usage:
        """Decayed GPU-seconds of every user and group as of now (what turns are based on)."""
        return decay(self.load_usage(), now, self.policy.half_life_seconds)

    def set_weight(self, kind: str, name: str, weight: float) -> None:
        """An admin's weight for a user or group (1 is everyone's default)."""
        with self.store.session() as session:
            session.merge(Weight(kind=kind, name=name, weight=weight))
        self._config = None

    def weights(self) -> dict[str, dict[str, float]]:
        """Weights in force: the values file's, overridden by admins'."""
        config = self.config()
        return {"user": dict(config.user_weights), "group": dict(config.group_weights)}
