"""Admission glue: reads the line from the store, asks the pure policy, keeps usage.

The policy (batch_service.policy) sees queued jobs and waiting interactive turns as requests,
and starting/running jobs, live kernels and admitted turns as allocations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from batch_service.clock import now
from batch_service.jobs import ACTIVE_STATES, QUEUED
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

    def config(self) -> PolicyConfig:
        """Policy settings from the values file, with weights admins set at run time."""
        config = self.policy
        user_weights = dict(config.user_weights)
        group_weights = dict(config.group_weights)
        with self.store.session() as session:
            for row in session.scalars(select(Weight)):
                (user_weights if row.kind == "user" else group_weights)[row.name] = row.weight
        return PolicyConfig(
            **{
                **{f: getattr(config, f) for f in PolicyConfig.__dataclass_fields__},
                "user_weights": user_weights,
                "group_weights": group_weights,
            }
        )

    def _exclusive(self, profile_name: str) -> bool:
        profile = self.profiles.get(profile_name)
        return bool(profile and profile.exclusive)

    def _gpus(self, profile_name: str) -> tuple[int, str | None]:
        profile = self.profiles.get(profile_name)
        return (profile.gpus, profile.gpu_type) if profile else (0, None)

    def snapshot(
        self, config: PolicyConfig, stopping: Mapping[str, str] | None = None
    ) -> tuple[list[Request], list[Allocation], int]:
        """The line, what holds GPUs, and how many batch servers exist.

        stopping: job id -> owner of every batch server the hub still has; one whose job no
        longer holds anything is stopping, and its GPUs count as held until the hub has let
        it go (its spawner gives them back at the very end of the stop).
        """
        with self.store.session() as session:
            queued = session.execute(
                select(
                    Job.id,
                    Job.owner,
                    Job.profile,
                    Job.priority,
                    Job.submitted_at,
                    Job.time_limit,
                    Job.group_name,
                    Job.owner_groups,
                ).where(Job.state == QUEUED)
            ).all()
            holding = session.execute(
                select(
                    Job.id,
                    Job.owner,
                    Job.profile,
                    Job.group_name,
                    Job.owner_groups,
                    Job.state,
                    Job.admitted_at,
                    Job.started_at,
                    Job.finished_at,
                    Job.time_limit,
                    Job.live,
                    Job.live_pending,
                    Job.live_until,
                    Job.live_window,
                ).where(
                    or_(
                        Job.state.in_(ACTIVE_STATES),
                        Job.live.is_(True),
                        Job.live_pending.is_(True),
                    )
                )
            ).all()
        requests = []
        for row in queued:
            gpus, gpu_type = self._gpus(row.profile)
            requests.append(
                Request(
                    row.id,
                    row.owner,
                    gpus,
                    gpu_type,
                    group=fair_group(row.group_name, row.owner_groups, config),
                    kind="batch",
                    priority=row.priority,
                    submitted_at=row.submitted_at,
                    expected_duration=row.time_limit,
                    exclusive=self._exclusive(row.profile),
                )
            )
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
        allocations.extend(self._stopping(stopping or {}, {row.id for row in holding}))
        for turn in self.turns.all():
            gpus, gpu_type = self._gpus(turn.profile)
            group = fair_group(None, turn.owner_groups, config)
            if turn.state == WAITING:
                requests.append(
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
        return requests, allocations, active

    def _stopping(self, servers: Mapping[str, str], holding: set[str]) -> list[Allocation]:
        gone = [job_id for job_id in servers if job_id not in holding]
        if not gone:
            return []
        with self.store.session() as session:
            profiles = session.execute(select(Job.id, Job.profile).where(Job.id.in_(gone))).all()
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
        """Decayed usage as last saved."""
        with self.store.session() as session:
            rows = list(session.scalars(select(UsageRow)))
        by_user = {r.name: r.gpu_seconds for r in rows if r.kind == "user"}
        by_group = {r.name: r.gpu_seconds for r in rows if r.kind == "group"}
        as_of = max((r.updated_at for r in rows), default=0.0)
        return Usage(by_user, by_group, as_of)

    def save_usage(self, usage: Usage, session: Session) -> None:
        """Keep usage (charged at admission) for the next pass and restarts."""
        for kind, values in (("user", usage.by_user), ("group", usage.by_group)):
            for name, value in values.items():
                session.merge(
                    UsageRow(kind=kind, name=name, gpu_seconds=value, updated_at=usage.as_of)
                )

    def settle_finished(
        self, usage: Usage, config: PolicyConfig
    ) -> tuple[Usage, float | None, list[str]]:
        """Correct admission charges by what was really held once it is let go.

        A run was charged its whole time limit: what it did not use comes back. A live kernel
        after the run and an interactive server's time beyond its admission charge are added.
        Returns the corrected usage, the new watermark of settled job events (None when no
        job event happened since) and the ended turns settled (to drop with the usage saved).
        """
        with self.store.session() as session:
            mark = session.get(Setting, SETTLED_KEY)
            since = float(mark.value) if mark is not None else 0.0
            ended = session.execute(
                select(
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
            ).all()
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
        turns = self.turns.ended()
        for turn in turns:
            gpus, _ = self._gpus(turn.profile)
            held = max(0.0, (turn.ended_at or 0.0) - (turn.admitted_at or 0.0))
            group = fair_group(None, turn.owner_groups, config)
            usage = settle(usage, turn.owner, group, INTERACTIVE_CHARGE_SECONDS, held, gpus)
        return usage, watermark, [t.id for t in turns]

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
        requests, allocations, servers = self.snapshot(config, stopping)
        usage, settled_until, settled_turns = self.settle_finished(self.load_usage(), config)
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
        if not preview and (decision.start or settled_until is not None or settled_turns):
            # Usage and what it settled are saved together: nothing is charged twice or lost.
            with self.store.session() as session:
                self.save_usage(decision.usage, session)
                if settled_until is not None:
                    session.merge(Setting(key=SETTLED_KEY, value=settled_until))
                self.turns.drop(settled_turns, session)
        return decision, {r.id: r.kind for r in requests}

    def usage_now(self, now: float) -> Usage:
        """Decayed GPU-seconds of every user and group as of now (what turns are based on)."""
        return decay(self.load_usage(), now, self.policy.half_life_seconds)

    def set_weight(self, kind: str, name: str, weight: float) -> None:
        """An admin's weight for a user or group (1 is everyone's default)."""
        with self.store.session() as session:
            session.merge(Weight(kind=kind, name=name, weight=weight))

    def weights(self) -> dict[str, dict[str, float]]:
        """Weights in force: the values file's, overridden by admins'."""
        config = self.config()
        return {"user": dict(config.user_weights), "group": dict(config.group_weights)}
