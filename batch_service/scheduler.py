"""A scheduler pass: reconcile with the hub, then start what the admission choice allows.

`Scheduler.run_once` is one pass; batch_service/scheduler_loop.py runs passes. The hub is the
truth about servers, the store the truth about jobs:

* a starting or running job whose server is gone becomes failed, with a reason;
* a run that kept its kernel becomes `live` once the hub reports its server ready (before that
  the kernel cannot be opened through the hub);
* a live kernel past its window, a cancelled or deleted job's server, or any `batch-*` server
  without a job that needs it, is stopped, but never while the hub is still starting it
  (stopping a pending spawn races the hub); a spawn pending past the start timeout is stopped;
* a running job far past its time limit (its runner did not stop it) is stopped as timed out;
* a starting job whose server vanished before its runner took it goes back in line, a few
  times (none of its code ran).

What the policy admits is started by batch_service/server_starts.py (a warm server of the
owner and profile, or a new one with a signed start ticket).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select

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
    server_of,
)
from batch_service.machine_record import note_servers
from batch_service.policy import Decision
from batch_service.policy.live_cuts import CUT_FOR_GPUS, CUT_FOR_LIVE_CAP
from batch_service.server_starts import PassReport, ServerStarts
from batch_service.store import Job
from batch_service.turns import TurnService
from batch_service.warm import WarmServers
from spawner.profiles import BATCH_SERVER_PREFIX as SERVER_PREFIX
from spawner.profiles import Profile

log = logging.getLogger("batchhub.scheduler")
# What the owner of a live kernel whose window was cut short reads on the job.
CUT_REASONS = {
    CUT_FOR_GPUS: "others wait for this GPU type: the live kernel ends soon",
    CUT_FOR_LIVE_CAP: "more live kernels are kept than this batchhub allows: the one ending "
    "soonest, this one, ends soon",
}
# Starts of one job's server before its failure is the job's: a start the hub gave up on
# (the process died before it answered, its port was taken meanwhile) ran none of its code.
START_TRIES = 3


@dataclass
class Capacity:
    """What may run at once: batch servers in all, and GPUs by type."""

    max_servers: int
    gpus: dict[str, int] = field(default_factory=dict)
    # Live kernels kept at once (counted apart from running work); None: no bound.
    max_live: int | None = None


def thread_seconds(work: Callable[[], object]) -> float:
    """Run `work`; the CPU seconds this thread spent on it."""
    started = time.thread_time()
    work()
    return time.thread_time() - started


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
        user_options: Callable[[Job, Profile, str], dict[str, Any]] | None = None,
        signing_key: bytes | None = None,
        warm: WarmServers | None = None,
    ) -> None:
        self.jobs = jobs
        self.warm = warm or WarmServers(0)
        self.turns = turns
        self.hub = hub
        self.admission = admission
        self.capacity = capacity
        self.start_timeout = start_timeout
        self.paused_default = paused_default
        self.overrun_grace = overrun_grace
        # CPU seconds the last pass spent deciding and walking the line (see SchedulerLoop).
        self.pass_cpu = 0.0
        # The last pass started nothing and left people waiting: only something that frees
        # room can change that (see SchedulerLoop).
        self.no_room = False
        self.starts = ServerStarts(jobs, hub, admission, self.warm, signing_key, user_options)
        self.hub_servers: dict[str, dict[str, dict[str, Any]]] = {}
        # Failed starts of jobs sent back in line, until they run (a restart counts anew).
        self.failed_starts: dict[str, int] = {}
        self.seen_at: float | None = None
        # Batch jobs and GPU servers wait in one line: both services read the same one.
        turns.line = jobs.line

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
        self.pass_cpu = 0.0
        snapshot_time = now()
        try:
            active = await self.active_servers()
        except (HubError, HubUnreachable) as e:
            log.warning("cannot reach the hub this pass: %s", e)
            return report
        # What the GPU view shows until the next pass: the hub's servers, with their state.
        self.hub_servers, self.seen_at = active, snapshot_time
        needed = await self.reconcile(active, report)
        self.reconcile_turns(active, snapshot_time)
        # Servers no job holds and none keeps warm: stopping, their GPUs not free yet.
        stopping = batch_servers(active, needed)
        if not self.jobs.paused(self.paused_default):
            await self.admit(report, stopping)
        else:
            # Nothing starts, but everyone still sees where they stand.
            decision, _ = self.decide(preview=True, servers=stopping)
            self.jobs.line.update(decision)
            self.no_room = self.admission.line_length > 0
        # Everyone's place is worked out beside the event loop, not in it: with a long line
        # the walk costs more than the decision.
        self.pass_cpu += await asyncio.to_thread(thread_seconds, self.jobs.line.work_out)
        return report

    def decide(
        self, preview: bool = False, servers: Mapping[str, str] | None = None
    ) -> tuple[Decision, dict[str, str]]:
        """The policy's decision (everyone's place, reason and expected start are worked out on
        first read: see Line.work_out)."""
        started = time.thread_time()
        decision, kinds = self.admission.decide(
            self.capacity.max_servers,
            now(),
            self.capacity.max_live,
            stopping=servers,
            preview=preview,
        )
        self.jobs.line.held = self.admission.held_back
        self.pass_cpu += time.thread_time() - started
        return decision, kinds

    async def reconcile(
        self, active: dict[str, dict[str, dict[str, Any]]], report: PassReport
    ) -> set[tuple[str, str]]:
        """Bring job states in line with the servers the hub has; returns (owner, server) of
        every batch server still needed (held by a job, or kept warm)."""
        t = now()
        with self.jobs.store.session() as session:
            holding = session.scalars(
                select(Job).where(
                    or_(
                        Job.state.in_(ACTIVE_STATES),
                        Job.live.is_(True),
                        Job.live_pending.is_(True),
                    )
                )
            ).all()
        needed = set()
        for job in holding:
            name = server_of(job)
            server = active.get(job.owner, {}).get(name)
            if job.state in ACTIVE_STATES:
                if self.check_active(job, server, t, report):
                    needed.add((job.owner, name))
                    if job.machine_record is not None:
                        self.note_servers(job, active)
            elif job.live_pending:
                if server is None or server.get("pending") == "stop":
                    self.jobs.mark(job.id, [job.state], live_pending=False, live_ended_at=t)
                elif server.get("ready"):
                    # Reachable through the hub now: the kernel can be opened.
                    # Its window starts now, unless the line already cut it shorter.
                    until = t + job.live_window
                    if job.live_until is not None:
                        until = min(until, job.live_until)
                    self.jobs.mark(
                        job.id, [job.state], live_pending=False, live=True, live_until=until
                    )
                    needed.add((job.owner, name))
                else:
                    report.awaiting_ready.append(job.id)
                    needed.add((job.owner, name))
            elif job.live:
                if server is None or (job.live_until is not None and job.live_until <= t):
                    self.jobs.mark(job.id, [job.state], live=False, live_ended_at=t)
                    continue
                needed.add((job.owner, name))
        self.forget_tries()
        listed = {(o, n) for o, servers in active.items() for n in servers}
        self.warm.keep_only(listed)
        needed |= self.warm.needed(t)
        for owner, servers in active.items():
            for name, model in servers.items():
                if not name.startswith(SERVER_PREFIX) or (owner, name) in needed:
                    continue
                if model.get("pending") == "stop" or self.spawn_in_progress(model, t):
                    continue
                try:
                    await self.hub.stop_server(owner, name)
                    report.stopped.append(f"{owner}/{name}")
                except (HubError, HubUnreachable) as e:
                    log.warning("could not stop %s/%s: %s", owner, name, e)
        return needed

    def forget_tries(self) -> None:
        """Failed starts of jobs that ran, ended or went since are counted no more."""
        if not self.failed_starts:
            return
        with self.jobs.store.session() as session:
            waiting = set(
                session.scalars(
                    select(Job.id).where(
                        Job.id.in_(list(self.failed_starts)), Job.state.in_([QUEUED, STARTING])
                    )
                )
            )
        self.failed_starts = {k: n for k, n in self.failed_starts.items() if k in waiting}

    def note_servers(self, job: Job, active: Mapping[str, Mapping[str, Any]]) -> None:
        """An exclusive run: keep on its record any other server the hub lists now (started,
        or stopping)."""
        own = (job.owner, server_of(job))
        names = [
            f"{owner}/{name or '(default)'}"
            for owner, servers in active.items()
            for name, model in servers.items()
            # A spawn still pending may be waiting its turn in the line: no process yet.
            if (owner, name) != own and model.get("pending") != "spawn"
        ]
        assert job.machine_record is not None
        record = note_servers(job.machine_record, names)
        if record is not None:
            self.jobs.mark(job.id, [job.state], machine_record=record)

    def spawn_in_progress(self, model: dict[str, Any], t: float) -> bool:
        """True while the hub starts a server and has not yet given up on it: stopping it now
        would race the hub's own start (the hub's start timeout ends it otherwise)."""
        if model.get("pending") != "spawn":
            return False
        started = parse_hub_time(model.get("started"))
        return started is None or t - started < self.start_timeout + self.overrun_grace

    def check_active(
        self, job: Job, server: dict[str, Any] | None, t: float, report: PassReport
    ) -> bool:
        """A starting or running job: still fine (True), or ended here with a reason."""
        if server is None and job.state == STARTING:
            # Its runner never took it, so none of its code ran: back in line, a few times.
            tries = self.failed_starts.get(job.id, 0) + (job.server is None)
            if tries < START_TRIES:
                self.failed_starts[job.id] = tries
                why = (
                    "the idle server it was handed stopped"
                    if job.server is not None
                    else f"its batch server could not start (try {tries} of {START_TRIES})"
                )
                log.warning("job %s: %s", job.id, why)
                if self.jobs.mark(
                    job.id,
                    [STARTING],
                    state=QUEUED,
                    admitted_at=None,
                    start_id=None,
                    server=None,
                    reason=why + ": waiting again",
                ):
                    # Its server had the GPUs from admission until now: that much is charged.
                    self.admission.refund(job, held=t - (job.admitted_at or t))
                return False
        if server is None:
            self.failed_starts.pop(job.id, None)
            reason = (
                f"the batch server could not start, {START_TRIES} times (see the hub's log)"
                if job.state == STARTING
                else "the batch server stopped unexpectedly"
            )
            if self.jobs.mark(
                job.id, [job.state], state=FAILED, finished_at=t, live=False, reason=reason
            ):
                report.failed.append(job.id)
                self.jobs.events.job_ended(job.id)
            return False
        admitted = job.admitted_at or job.started_at
        overrun = (
            job.state == RUNNING
            and job.started_at is not None
            and t > job.started_at + job.time_limit + self.overrun_grace
        )
        stuck = (
            job.state == STARTING
            and admitted is not None
            and t - admitted > self.start_timeout + self.overrun_grace
        )
        if overrun:
            ended = (RUNNING, TIMED_OUT, "the run went past its time limit and was stopped")
        elif stuck:
            ended = (STARTING, FAILED, "the batch server started but its runner never reported")
        else:
            return True
        # Its server is not needed any more, so reconcile stops it.
        was, state, reason = ended
        if self.jobs.mark(job.id, [was], state=state, finished_at=t, live=False, reason=reason):
            self.jobs.events.job_ended(job.id)
        return False

    def reconcile_turns(
        self, active: dict[str, dict[str, dict[str, Any]]], snapshot_time: float
    ) -> None:
        """Forget turns whose server the hub no longer has (it stopped or failed)."""
        for turn in self.turns.all():
            if turn.submitted_at < snapshot_time and turn.server not in active.get(turn.owner, {}):
                self.turns.forget(turn.id)

    async def admit(self, report: PassReport, servers: Mapping[str, str] | None = None) -> None:
        """Ask the policy, then start what it admits (one hub call per batch job).

        servers: the batch servers the hub has (job id -> owner); GPUs of those still
        stopping are not handed to anyone yet.
        """
        decision, kinds = self.decide(servers=servers)
        self.jobs.line.update(decision)
        self.no_room = (
            not decision.start and not decision.cut_live and self.admission.line_length > 0
        )
        for job_id, until in decision.cut_live:
            why = CUT_REASONS.get(decision.cut_reasons.get(job_id, CUT_FOR_GPUS), "")
            if self.jobs.mark(job_id, FINISHED_STATES, live_until=until, reason=why):
                log.info("live window of %s cut to %s", job_id, until)
        for request_id in decision.start:
            if kinds.get(request_id) == "interactive":
                profile = self.turns.admit(request_id)
                report.started.append(request_id)
                await self.starts.clear_warm(profile, report)
            else:
                await self.starts.start(request_id, report)


def batch_servers(
    active: Mapping[str, Mapping[str, Any]], needed: set[tuple[str, str]] | None = None
) -> dict[str, str]:
    """Job id in its name -> owner of every batch server in the hub's list (running or
    stopping), less those still `needed` (held by a job, or warm)."""
    return {
        name[len(SERVER_PREFIX) :]: owner
        for owner, servers in active.items()
        for name in servers
        if name.startswith(SERVER_PREFIX) and (owner, name) not in (needed or set())
    }


def parse_hub_time(value: Any) -> float | None:
    """Epoch seconds of a timestamp in a hub model (ISO 8601), or None."""
    if not isinstance(value, str):
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
