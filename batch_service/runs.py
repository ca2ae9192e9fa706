"""What a batch server's runner may say about its job, and what the service makes of it.

A batch server runs its user's code, so everything its runner reports is that user's claim
(docs/trust.md). The service takes from it only what the user could do anyway in her own run:
progress, output lines, the executed notebook, and how the run ended. It takes no times (the
service's clock stamps every event as it arrives), no paths (the output path is the service's
choice), and no claim at all unless it comes with the runner key of the job's current start,
while the job is starting or running and the hub runs its server.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from batch_service.clock import now
from batch_service.errors import BatchError, Conflict, NotFound
from batch_service.events import Events
from batch_service.hub_client import HubError, HubUnreachable
from batch_service.job_files import JobFiles, StoredFile
from batch_service.jobs import (
    ACTIVE_STATES,
    RUN_RESULTS,
    RUNNING,
    STARTING,
    SUCCEEDED,
    output_name,
    output_path,
    server_of,
)
from batch_service.machine_record import reading_at_start
from batch_service.store import Job, LogLine, Store, Sweep
from batch_service.warm import WarmServers
from spawner.credentials import runner_key, same
from spawner.profiles import Profile

MAX_LOG_LINES_PER_EVENT = 1000
MAX_LOG_LINE_CHARS = 4000
MAX_EVENTS_PER_CALL = 2000
MAX_CELLS = 100_000
KERNEL_ID = re.compile(r"^[0-9a-f-]{8,64}$")

# The hub's view of one server (its REST model), or None when the hub does not run it.
HubServerLookup = Callable[[str, str], Awaitable[Mapping[str, Any] | None]]


class RunReports:
    """Authorizes runner calls and records what the runner reports."""

    def __init__(
        self,
        store: Store,
        profiles: Mapping[str, Profile],
        signing_key: bytes | None,
        hub_server: HubServerLookup,
        job_files: JobFiles,
        warm: WarmServers | None = None,
    ) -> None:
        self.store = store
        self.warm = warm or WarmServers(0)
        # Asks for a scheduler pass (set by the app): a server just became warm.
        self.on_warm: Callable[[], None] = lambda: None
        self.profiles = profiles
        self.signing_key = signing_key
        self.hub_server = hub_server
        self.job_files = job_files
        # Where a run's start and end are told (notifications, metrics); set by the app.
        self.events = Events()

    async def runner_job(
        self,
        owner: str,
        job_id: str,
        presented_key: str | None,
        after_run: bool = False,
        ended: bool = False,
    ) -> Job:
        """The job, if the caller holds the runner key of its current start and the hub runs
        that server now; else 404 (unknown to this caller) or 409 (no longer reporting).
        With `after_run`, a finished run that kept its kernel may still report (its end);
        with `ended`, only a run that ended (its server asks for the next one)."""
        with self.store.session() as session:
            job = session.get(Job, job_id) if len(job_id) <= 16 else None
        if (
            job is None
            or job.owner != owner
            or not job.start_id
            or self.signing_key is None
            or not same(
                presented_key,
                runner_key(self.signing_key, job.owner, server_of(job), job.start_id),
            )
        ):
            raise NotFound(f"no job {job_id[:40]!r} for this server")
        kept = after_run and (job.live or job.live_pending)
        if ended:
            if job.state in ACTIVE_STATES:
                raise Conflict(f"job {job_id} has not ended yet")
        elif job.state not in ACTIVE_STATES and not kept:
            raise Conflict(f"job {job_id} is {job.state}; its runner may no longer report")
        try:
            server = await self.hub_server(job.owner, server_of(job))
        except (HubError, HubUnreachable):
            raise BatchError("cannot reach the hub to check this server; try again", 503) from None
        if server is None or server.get("pending") == "stop":
            raise Conflict(f"the hub does not run the server of job {job_id}")
        return job

    async def next_job(
        self, owner: str, job_id: str, presented_key: str | None, kernel_gone: bool
    ) -> dict[str, Any]:
        """A batch server whose run `job_id` ended asks what to run next (a long poll).

        Answers `{"job_id": <next>}`, or `{"job_id": null, "keep_kernel": bool}` (ask again;
        `keep_kernel` false: shut the ended run's kernel down first); 409 once the server is
        to run nothing more (its owner's runs then start in servers of their own).
        """
        job = await self.runner_job(owner, job_id, presented_key, after_run=True, ended=True)
        warm, t = self.warm, now()
        server = server_of(job)
        if not warm.enabled:
            raise Conflict("this batchhub starts every run in a server of its own")
        assert job.start_id is not None  # runner_job checked the key of this start
        with self.store.session() as session:
            # A job handed over whose answer was lost on the way: hand it again.
            handed = session.scalars(
                select(Job.id).where(
                    Job.owner == job.owner,
                    Job.server == server,
                    Job.start_id == job.start_id,
                    Job.state == STARTING,
                )
            ).first()
        if handed is not None:
            return {"job_id": handed}
        entry = warm.seen(job.owner, server, job.profile, job.start_id, t)
        if job.live or job.live_pending:
            entry.idle_since = None
            await asyncio.sleep(min(warm.poll_seconds, 5.0))
            return {"job_id": None, "keep_kernel": True}
        if not kernel_gone:
            return {"job_id": None, "keep_kernel": False}
        if warm.expired(entry, t):
            warm.forget(job.owner, server)
            raise Conflict("this server was idle too long: it stops")
        if entry.idle_since is None:
            # Idle from when its run let go of everything, by the service's clock; a pass
            # (after this call waits) may hand it a queued run at once.
            entry.idle_since = t
            self.on_warm()
        next_id = await warm.wait(entry, min(warm.poll_seconds, warm.idle_left(entry, t)))
        return {"job_id": next_id, "keep_kernel": False}

    def spec(self, job: Job) -> dict[str, Any]:
        """What the runner needs to run the job (paths are the service's own choice)."""
        profile = self.profiles.get(job.profile)
        return {
            "job_id": job.id,
            "kind": job.kind,
            "input_name": job.input_name,
            "entry_point": job.entry_point,
            "parameters": job.parameters,
            "report_mode": job.report_mode,
            "args": job.args,
            "kernel_name": profile.kernel_name if profile else "python3",
            "time_limit": job.time_limit,
            "live_window": job.live_window,
            "output_name": output_name(job.input_name, job.kind),
            "output_path": output_path(job.id, job.input_name, job.kind),
            # Whether this server may be handed a next run (asks runner/next once this ends).
            "warm": self.warm.enabled,
        }

    def input(self, job: Job) -> StoredFile:
        """The job's input file."""
        return self.job_files.find(job.id, "input")

    def apply_events(self, job_id: str, events: Any) -> bool:
        """Record events in order; a seq already seen is skipped (retries are safe).

        Returns True if the run ended (the scheduler should look at the server soon).
        """
        if not isinstance(events, list) or len(events) > MAX_EVENTS_PER_CALL:
            raise BatchError(f"events must be a list of at most {MAX_EVENTS_PER_CALL}")
        ended = False
        with self.store.session() as session:
            job = session.get(Job, job_id, with_for_update=True)
            if job is None:
                raise NotFound(f"no job {job_id[:40]!r}")
            received = now()
            for event in sorted(
                (e for e in events if isinstance(e, dict)), key=lambda e: _int(e.get("seq"))
            ):
                seq = _int(event.get("seq"))
                if seq <= job.last_seq:
                    continue
                ended = self._apply(session, job, event, received) or ended
                job.last_seq = seq
            let_go = ended and job.state not in ACTIVE_STATES and not job.live_pending
            owner, server, profile, start_id = job.owner, server_of(job), job.profile, job.start_id
        if let_go and self.warm.enabled and start_id:
            # Warm from its run's end: a pass that follows may hand it its owner's next run
            # before the runner has asked (it finds that run when it does).
            self.warm.seen(owner, server, profile, start_id, received).idle_since = received
        return ended

    def _apply(self, session: Session, job: Job, event: dict[str, Any], received: float) -> bool:
        kind = event.get("type")
        if job.state not in ACTIVE_STATES:
            if kind == "kernel_gone" and (job.live or job.live_pending):
                # Only shortens her own live window: the next pass stops the server.
                job.live_until = received
                if job.live_pending:
                    job.live_pending = False
                    job.live_ended_at = received
                return True
            return False  # the run already ended here: later words change nothing
        if kind == "started":
            if job.state == STARTING:
                job.state = RUNNING
                job.started_at = received
                self.events.job_started(job.id)
                profile = self.profiles.get(job.profile)
                if profile is not None and profile.exclusive:
                    job.machine_record = reading_at_start(profile, received)
            kernel_id = _text(event.get("kernel_id"), 64)
            job.kernel_id = kernel_id if KERNEL_ID.match(kernel_id) else None
            job.progress_total = _bounded(event.get("total_cells"), MAX_CELLS)
        elif kind == "cell":
            # progress_index counts cells done: a cell still running is not done yet.
            done = event.get("status") == "done"
            job.progress_index = max(
                _bounded(event.get("index"), MAX_CELLS) - (0 if done else 1), 0
            )
            job.progress_total = _bounded(event.get("total"), MAX_CELLS) or job.progress_total
            job.current_cell = _text(event.get("source_preview"), 500)
        elif kind == "output":
            lines = event.get("lines") or []
            if isinstance(lines, list):
                cell = event.get("index")
                session.add_all(
                    LogLine(
                        job_id=job.id,
                        cell=_bounded(cell, MAX_CELLS) if isinstance(cell, int) else None,
                        text=_text(line, MAX_LOG_LINE_CHARS),
                        time=received,
                    )
                    for line in lines[:MAX_LOG_LINES_PER_EVENT]
                )
        elif kind == "finished":
            state = event.get("state")
            if state not in RUN_RESULTS:
                raise BatchError(f"unknown finished state {str(state)[:40]!r}")
            job.state = state
            job.finished_at = received
            self.events.job_ended(job.id)
            job.started_at = job.started_at or received
            job.error_name = _text(event.get("error_name"), 255)
            job.error_value = _text(event.get("error_value"), 4000)
            failed = event.get("failed_cell")
            job.failed_cell = _bounded(failed, MAX_CELLS) if isinstance(failed, int) else None
            # Live only once the hub can reach the server (the scheduler checks and says so).
            job.live_pending = bool(event.get("kernel_alive") is True)
            if job.live_pending and not self.keeps_kernel(session, job):
                job.live_pending = False
                job.live_ended_at = received
            job.current_cell = ""
            return True
        return False

    @staticmethod
    def keeps_kernel(session: Session, job: Job) -> bool:
        """A sweep keeps the kernels of failed points only, unless it asks for all."""
        if job.sweep_id is None or job.state != SUCCEEDED:
            return True
        sweep = session.get(Sweep, job.sweep_id)
        return sweep is None or sweep.keep_succeeded

    def record_names(self, job: Job) -> list[str]:
        """Named outputs (papermill-style) the job's sweep asks to read."""
        with self.store.session() as session:
            sweep = session.get(Sweep, job.sweep_id) if job.sweep_id else None
            return list(sweep.record) if sweep is not None else []

    def store_recorded(self, job_id: str, values: dict[str, Any]) -> None:
        """Keep what the run recorded (read from its latest executed notebook)."""
        with self.store.session() as session:
            job = session.get(Job, job_id)
            if job is not None:
                job.recorded = values

    def store_output(self, job: Job, content: bytes) -> None:
        """Keep the executed notebook (replacing an earlier upload); checked already."""
        row = self.job_files.write(job.id, "output", output_name(job.input_name, job.kind), content)
        with self.store.session() as session:
            if session.get(Job, job.id) is None:
                raise NotFound(f"no job {job.id!r}")
            session.merge(row)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _bounded(value: Any, maximum: int) -> int:
    return min(max(_int(value), 0), maximum)


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""
