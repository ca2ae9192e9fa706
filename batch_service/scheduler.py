"""The scheduler loop: reconcile with the hub, then start what the admission choice allows.

`schedule_once` is the pure async core (one pass); `SchedulerLoop` runs it on a tornado
PeriodicCallback. The hub is the truth about servers, the store the truth about jobs:

* a starting or running job whose server is gone becomes failed, with a reason;
* a live kernel past its window, a cancelled or deleted job's server, or any `batch-*` server
  without a job that needs it, is stopped;
* a running job far past its time limit (its runner did not stop it) is stopped as timed out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from tornado.ioloop import PeriodicCallback

from batch_service.admission import Admission
from batch_service.clock import now
from batch_service.hub_client import HubClient, HubError, HubUnreachable
from batch_service.jobs import (
    ACTIVE_STATES,
    FAILED,
    FINISHED_STATES,
    QUEUED,
    RUNNING,
    STARTING,
    TIMED_OUT,
    JobService,
    server_name,
)
from batch_service.store import Job
from batch_service.turns import TurnService
from spawner.profiles import Profile

log = logging.getLogger("batchhub.scheduler")
SERVER_PREFIX = "batch-"


@dataclass
class Capacity:
    """What may run at once: batch servers in all, and GPUs by type."""

    max_servers: int
    gpus: dict[str, int] = field(default_factory=dict)


@dataclass
class PassReport:
    """What one pass did (for logs and tests)."""

    started: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)


class Scheduler:
    """One pass of reconciliation and admission."""

    def __init__(
        self,
        jobs: JobService,
        turns: TurnService,
        hub: HubClient,
        admission: Admission,
        capacity: Capacity,
        start_timeout: float,
        paused_default: bool = False,
        overrun_grace: float = 120,
        user_options: Callable[[Job, Profile], dict[str, Any]] | None = None,
    ) -> None:
        self.jobs = jobs
        self.turns = turns
        self.hub = hub
        self.admission = admission
        self.capacity = capacity
        self.start_timeout = start_timeout
        self.paused_default = paused_default
        self.overrun_grace = overrun_grace
        self.user_options = user_options or batch_user_options

    async def active_servers(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every user's running or pending servers, from the hub (paged)."""
        servers: dict[str, dict[str, dict[str, Any]]] = {}
        offset, limit = 0, 200
        while True:
            _, users = await self.hub.call(
                "GET", f"users?state=active&offset={offset}&limit={limit}"
            )
            users = users.get("items", users) if isinstance(users, dict) else users
            for user in users or []:
                servers[user["name"]] = dict(user.get("servers") or {})
            if not users or len(users) < limit:
                return servers
            offset += limit

    async def run_once(self) -> PassReport:
        """Reconcile, then admit; never raises for one bad job."""
        report = PassReport()
        snapshot_time = now()
        try:
            active = await self.active_servers()
        except (HubError, HubUnreachable) as e:
            log.warning("cannot reach the hub this pass: %s", e)
            return report
        await self.reconcile(active, report)
        self.reconcile_turns(active, snapshot_time)
        if not self.jobs.paused(self.paused_default):
            await self.admit(report)
        return report

    async def reconcile(
        self, active: dict[str, dict[str, dict[str, Any]]], report: PassReport
    ) -> None:
        """Bring job states in line with the servers the hub has."""
        t = now()
        with self.jobs.store.session() as session:
            holding = session.scalars(
                select(Job).where(or_(Job.state.in_(ACTIVE_STATES), Job.live.is_(True)))
            ).all()
        needed = set()
        for job in holding:
            name = server_name(job.id)
            server = active.get(job.owner, {}).get(name)
            if job.state in ACTIVE_STATES:
                if server is None:
                    reason = (
                        "the batch server could not start (see the hub's log)"
                        if job.state == STARTING
                        else "the batch server stopped unexpectedly"
                    )
                    if self.jobs.mark(
                        job.id, [job.state], state=FAILED, finished_at=t, live=False, reason=reason
                    ):
                        report.failed.append(job.id)
                        self.jobs.events.job_ended(job.id)
                    continue
                overrun = (
                    job.state == RUNNING
                    and job.started_at is not None
                    and t > job.started_at + job.time_limit + self.overrun_grace
                )
                stuck = (
                    job.state == STARTING
                    and job.started_at is not None
                    and t - job.started_at > self.start_timeout + self.overrun_grace
                )
                ended = None
                if overrun:
                    ended = (RUNNING, TIMED_OUT, "the run went past its time limit and was stopped")
                elif stuck:
                    ended = (
                        STARTING,
                        FAILED,
                        "the batch server started but its runner never reported",
                    )
                if ended is not None:
                    # Its server is not in `needed`, so the loop below stops it.
                    was, state, reason = ended
                    self.jobs.mark(
                        job.id, [was], state=state, finished_at=t, live=False, reason=reason
                    )
                    self.jobs.events.job_ended(job.id)
                    continue
                needed.add((job.owner, name))
            elif job.live:
                if server is None or (job.live_until is not None and job.live_until <= t):
                    self.jobs.mark(job.id, [job.state], live=False, live_ended_at=t)
                    continue
                needed.add((job.owner, name))
        for owner, servers in active.items():
            for name, model in servers.items():
                if not name.startswith(SERVER_PREFIX) or (owner, name) in needed:
                    continue
                if model.get("pending") == "stop":
                    continue
                try:
                    await self.hub.stop_server(owner, name)
                    report.stopped.append(f"{owner}/{name}")
                except (HubError, HubUnreachable) as e:
                    log.warning("could not stop %s/%s: %s", owner, name, e)

    def reconcile_turns(
        self, active: dict[str, dict[str, dict[str, Any]]], snapshot_time: float
    ) -> None:
        """Forget turns whose server the hub no longer has (it stopped or failed)."""
        for turn in self.turns.all():
            if turn.submitted_at < snapshot_time and turn.server not in active.get(turn.owner, {}):
                self.turns.forget(turn.id)

    async def admit(self, report: PassReport) -> None:
        """Ask the policy, then start what it admits (one hub call per batch job)."""
        t = now()
        decision, kinds = self.admission.decide(self.capacity.max_servers, t)
        self.turns.line_positions = {
            i: p for i, p in decision.positions.items() if kinds.get(i) == "interactive"
        }
        self.jobs.policy_positions = {
            i: p for i, p in decision.positions.items() if kinds.get(i) == "batch"
        }
        for job_id, until in decision.cut_live:
            if self.jobs.mark(
                job_id,
                FINISHED_STATES,
                live_until=until,
                reason="others wait for this GPU type: the live kernel ends soon",
            ):
                log.info("live window of %s cut to %s", job_id, until)
        for request_id in decision.start:
            if kinds[request_id] == "interactive":
                self.turns.admit(request_id)
                report.started.append(request_id)
            else:
                await self.start(request_id, report)

    def _fail_start(self, job_id: str, reason: str, report: PassReport) -> None:
        """A job whose server cannot start ends as failed, with the reason shown to its owner."""
        if self.jobs.mark(job_id, [STARTING], state=FAILED, finished_at=now(), reason=reason):
            report.failed.append(job_id)
            self.jobs.events.job_ended(job_id)

    async def start(self, job_id: str, report: PassReport) -> None:
        """Ask the hub for the job's server; a refusal fails the job with the hub's message."""
        with self.jobs.store.session() as session:
            job = session.get(Job, job_id)
        if job is None or not self.jobs.mark(
            job_id, [QUEUED], state=STARTING, started_at=now(), reason=""
        ):
            return
        profile = self.jobs.profiles.get(job.profile)
        if profile is None:
            self._fail_start(job_id, f"profile {job.profile!r} no longer exists", report)
            return
        try:
            await self.hub.start_server(
                job.owner, server_name(job_id), self.user_options(job, profile)
            )
            report.started.append(job_id)
        except HubError as e:
            if e.status == 409 or (e.status == 400 and "already" in e.message):
                # The GPUs are held outside the queue (an interactive server): try again later.
                self.jobs.mark(job_id, [STARTING], state=QUEUED, started_at=None, reason=e.message)
                return
            self._fail_start(job_id, f"the hub refused to start the server: {e.message}", report)
        except HubUnreachable as e:
            log.warning("hub unreachable starting %s: %s", job_id, e)
            self.jobs.mark(
                job_id, [STARTING], state=QUEUED, started_at=None, reason="waiting for the hub"
            )


def batch_user_options(job: Job, profile: Profile) -> dict[str, Any]:
    """user_options of a batch server (docs/architecture.md)."""
    return {
        "profile": profile.name,
        "batch": {"job_id": job.id, "time_limit": job.time_limit, "live_window": job.live_window},
    }


class SchedulerLoop:
    """Runs passes every `interval` seconds, never two at once; `kick` runs one soon."""

    def __init__(self, scheduler: Scheduler, interval: float) -> None:
        self.scheduler = scheduler
        self.interval = interval
        self._running = False
        self._again = False
        self._callback = PeriodicCallback(self.tick, interval * 1000)

    def start(self) -> None:
        """Begin passes (the first one right away)."""
        self._callback.start()
        from tornado.ioloop import IOLoop

        IOLoop.current().add_callback(self.tick)

    def stop(self) -> None:
        """No more passes."""
        self._callback.stop()

    async def tick(self) -> None:
        """One pass, or a note to run another right after the current one."""
        if self._running:
            self._again = True
            return
        self._running = True
        try:
            while True:
                self._again = False
                try:
                    report = await self.scheduler.run_once()
                    if report.started or report.failed or report.stopped:
                        log.info("pass: %s", report)
                except Exception:
                    log.exception("scheduler pass failed")
                if not self._again:
                    break
        finally:
            self._running = False

    def kick(self) -> None:
        """Ask for a pass soon (after a submit, cancel or runner event)."""
        from tornado.ioloop import IOLoop

        IOLoop.current().add_callback(self.tick)
