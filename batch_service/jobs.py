"""Jobs: submitting, listing, cancelling, and recording what the runner reports.

`JobService` is the layer between the handlers and the store. It never calls the hub: actions
that need a server stopped return that need, and the scheduler does the stopping.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from batch_service.clock import now
from batch_service.errors import BatchError, Conflict, NotFound
from batch_service.events import Events
from batch_service.files import FileStore
from batch_service.identity import Identity
from batch_service.job_choices import JobChoices
from batch_service.job_files import JobFiles, StoredFile

# Names of a job's server and executed notebook, kept importable from here.
from batch_service.job_view import job_view
from batch_service.job_view import output_name as output_name
from batch_service.job_view import output_path as output_path
from batch_service.job_view import server_name as server_name
from batch_service.job_view import server_of as server_of
from batch_service.line import Line
from batch_service.machine_record import machine_view
from batch_service.policy import Request
from batch_service.run_options import run_options
from batch_service.store import Artifact, Job, JobFile, LogLine, Setting, Store
from batch_service.uploads import CheckedInput
from spawner.profiles import Profile

QUEUED, STARTING, RUNNING = "queued", "starting", "running"
SUCCEEDED, FAILED, TIMED_OUT, CANCELLED = "succeeded", "failed", "timed_out", "cancelled"
ACTIVE_STATES = (STARTING, RUNNING)
FINISHED_STATES = (SUCCEEDED, FAILED, TIMED_OUT, CANCELLED)
STATES = (QUEUED, *ACTIVE_STATES, *FINISHED_STATES)
RUN_RESULTS = (SUCCEEDED, FAILED, TIMED_OUT)
MAX_PAGE = 500


_ID_LETTERS, _ID_CHARACTERS = string.ascii_lowercase, string.ascii_lowercase + string.digits


def new_job_id() -> str:
    """10 URL-safe characters, starting with a letter (a valid server-name suffix).

    One draw from the system's randomness for all ten (ten draws cost a tenth of a
    submission's time on the event loop), spelled out in base 26 then base 36."""
    n = secrets.randbelow(len(_ID_LETTERS) * len(_ID_CHARACTERS) ** 9)
    n, first = divmod(n, len(_ID_LETTERS))
    rest = []
    for _ in range(9):
        n, digit = divmod(n, len(_ID_CHARACTERS))
        rest.append(_ID_CHARACTERS[digit])
    return _ID_LETTERS[first] + "".join(rest)


@dataclass(frozen=True)
class Submission:
    """What a user asks to run: a checked input plus choices."""

    owner: str
    input: CheckedInput
    profile: str
    time_limit: int | None
    parameters: Any
    priority: int = 0
    group: Any = None
    report_mode: Any = False
    args: Any = None


@dataclass
class StopRequest:
    """The scheduler should stop this job's server (it was cancelled, released or deleted)."""

    owner: str
    job_id: str


class JobService(JobChoices):
    """The batch queue's operations over the store."""

    def __init__(
        self,
        store: Store,
        profiles: Iterable[Profile],
        hub_base_url: str = "/",
        files: FileStore | None = None,
    ) -> None:
        self.store = store
        if files is None:
            if store.files_root is None:
                raise ValueError("the job service needs a file store folder")
            files = FileStore(store.files_root).prepare()
        self.files = files
        self.job_files = JobFiles(store, files)
        self.profiles = {p.name: p for p in profiles}
        self.hub_base_url = hub_base_url
        # The queue is paused unless an admin said otherwise (the app's `paused` setting).
        self.paused_default = False
        # The admins' pause switch as stored (None: never set), read once: only set_paused
        # writes it, and it is asked on every pass and for every group of submissions.
        self._paused_setting: bool | None = None
        self._paused_read = False
        # Where everyone waiting stands and why: written by each scheduler pass.
        self.line = Line(lambda: self.paused(self.paused_default))
        # GPUs of each type this machine has (None: not known, nothing refused for it).
        self.gpu_capacity: Mapping[str, int] | None = None
        # Groups with a fair share of their own (the policy's named groups); set by the app.
        self.fair_groups: Callable[[], frozenset[str]] = frozenset
        # Where starts and ends of runs are told (notifications, metrics); set by the app.
        self.events = Events()

    # --- submitting -------------------------------------------------------------------
    def submit(
        self,
        identity: Identity,
        submission: Submission,
        on_store: Callable[[Session, Job], None] | None = None,
    ) -> dict[str, Any]:
        """Validate and store a job with its input in ONE transaction; return its view.

        `on_store` runs inside that transaction (a definition's firing records itself there, so
        a job and its firing are stored together or not at all)."""
        job = self.prepare(identity, submission)
        upload = submission.input
        # The file first: a job row is never committed without its input.
        input_row = self.job_files.write(job.id, "input", upload.name, upload.content)
        try:
            with self.store.session() as session:
                session.add(job)
                session.add(input_row)
                if on_store is not None:
                    session.flush()
                    on_store(session, job)
        except BaseException:
            self.files.remove_job(job.id)
            raise
        return self.view(job, reader=identity)

    def prepare(self, identity: Identity, submission: Submission) -> Job:
        """The checked, not yet stored, job row of a submission (sweeps make theirs from it)."""
        profile, time_limit = self.check_choices(
            identity, submission.profile, submission.time_limit
        )
        priority = submission.priority
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise BatchError("priority must be a whole number")
        if priority and not identity.is_admin:
            raise BatchError("only batch admins may set a priority", status=403)
        if not -1000 <= priority <= 1000:
            raise BatchError("priority must be between -1000 and 1000")
        group = self._group(identity, submission.group)
        upload = submission.input
        options = run_options(
            upload, submission.parameters, submission.report_mode, submission.args
        )
        return queued_job(
            owner=identity.name,
            kind=upload.kind,
            input_name=upload.name,
            entry_point=upload.entry_point,
            profile=profile.name,
            parameters=options.parameters,
            report_mode=options.report_mode,
            args=options.args,
            warnings=options.warnings,
            time_limit=time_limit,
            live_window=profile.live_window,
            priority=priority,
            group_name=group,
            owner_groups=sorted(identity.groups),
        )

    # --- reading ----------------------------------------------------------------------
    def view(
        self, job: Job, session: Session | None = None, reader: Identity | None = None
    ) -> dict[str, Any]:
        """A job's API form; when queued, where it stands and why, as `reader` may read it."""
        if session is None:
            with self.store.session() as own:
                return self.view(job, own, reader)
        wait = None
        if job.state == QUEUED:
            wait = self.wait(job, session, reader, self.line.is_paused())
        has_output = job.id in _with_output(session, [job.id])
        view = job_view(job, wait, self.hub_base_url, has_output)
        if job.machine_record is not None:
            name = None if reader is None else reader.name
            names = reader is not None and reader.can_read_all
            view["machine"] = machine_view(session, job, now(), name, names)
        return view

    def request(self, job: Job) -> Request:
        """A queued job as the policy sees it (for its place before the next pass)."""
        profile = self.profiles.get(job.profile)
        gpus, gpu_type = (profile.gpus, profile.gpu_type) if profile else (0, None)
        return Request(
            job.id,
            job.owner,
            gpus,
            gpu_type,
            priority=job.priority,
            submitted_at=job.submitted_at,
            expected_duration=job.time_limit,
            exclusive=bool(profile and profile.exclusive),
        )

    def wait(
        self, job: Job, session: Session, reader: Identity | None, paused: bool
    ) -> dict[str, Any]:
        """Position, reason code, words and expected start of a queued job."""
        return self.waits_of([job], session, reader, paused)[job.id]

    def waits_of(
        self, jobs: Iterable[Job], session: Session, reader: Identity | None, paused: bool
    ) -> dict[str, dict[str, Any]]:
        """`wait` of each queued job among these (one query at most, before the first pass)."""
        first_come: dict[str, int] = {}

        def place(job_id: str) -> int | None:
            if not first_come:
                first_come.update(self.positions(session))
            return first_come.get(job_id)

        return {
            job.id: self.line.fields(self.request(job), reader, paused, place, last_try=job.reason)
            for job in jobs
            if job.state == QUEUED
        }

    def positions(self, session: Session) -> dict[str, int]:
        """1-based positions of queued jobs, first come first served (before any pass)."""
        ids = session.scalars(
            select(Job.id).where(Job.state == QUEUED).order_by(*self.queue_order())
        ).all()
        return {job_id: i + 1 for i, job_id in enumerate(ids)}

    @staticmethod
    def queue_order() -> tuple[Any, ...]:
        """Higher priority first, then first come, first served."""
        return (Job.priority.desc(), Job.submitted_at, Job.id)

    def _visible(self, session: Session, identity: Identity, job_id: str) -> Job:
        job = session.get(Job, job_id) if isinstance(job_id, str) and len(job_id) <= 16 else None
        if job is None or not identity.may_read(job.owner):
            # 404 either way, so job ids of other people do not leak.
            raise NotFound(f"no job {str(job_id)[:40]!r}")
        return job

    def get(self, identity: Identity, job_id: str) -> dict[str, Any]:
        """One job the identity may see."""
        with self.store.session() as session:
            return self.view(self._visible(session, identity, job_id), session, identity)

    def list_jobs(
        self,
        identity: Identity,
        owner: str | None = None,
        state: str | None = None,
        profile: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> dict[str, Any]:
        """A page of jobs, newest first, with the total count for the filters."""
        if state is not None and state not in STATES:
            raise BatchError(f"unknown state {state[:40]!r}; states: {', '.join(STATES)}")
        if not 1 <= limit <= MAX_PAGE:
            raise BatchError(f"limit must be between 1 and {MAX_PAGE}")
        if offset < 0:
            raise BatchError("offset must not be negative")
        if owner is not None and owner != identity.name and not identity.can_read_all:
            raise BatchError("you may only list your own jobs", status=403)
        if owner is None and not identity.can_read_all:
            owner = identity.name
        filters = []
        if owner is not None:
            filters.append(Job.owner == owner)
        if state is not None:
            filters.append(Job.state == state)
        if profile is not None:
            filters.append(Job.profile == profile)
        with self.store.session() as session:
            total = session.scalar(select(func.count()).select_from(Job).where(*filters))
            rows = session.scalars(
                select(Job)
                .where(*filters)
                .order_by(Job.submitted_at.desc(), Job.id)
                .limit(limit)
                .offset(offset)
            ).all()
            paused = self.line.is_paused() if any(j.state == QUEUED for j in rows) else False
            waits = self.waits_of(rows, session, identity, paused)
            outputs = _with_output(session, [j.id for j in rows])
            jobs = [job_view(j, waits.get(j.id), self.hub_base_url, j.id in outputs) for j in rows]
        return {"jobs": jobs, "total": total, "limit": limit, "offset": offset}

    def file(self, identity: Identity, job_id: str, role: str) -> StoredFile:
        """A job's input or output file."""
        with self.store.session() as session:
            self._visible(session, identity, job_id)
        return self.job_files.find(job_id, role)

    def logs(
        self, identity: Identity | None, job_id: str, after: int = 0, limit: int = 1000
    ) -> dict[str, Any]:
        """Output lines after a given line id (for following a run)."""
        with self.store.session() as session:
            if identity is not None:
                self._visible(session, identity, job_id)
            rows = session.execute(
                select(LogLine.id, LogLine.cell, LogLine.text)
                .where(LogLine.job_id == job_id, LogLine.id > after)
                .order_by(LogLine.id)
                .limit(min(max(limit, 1), 10000))
            ).all()
        lines = [{"id": r.id, "cell": r.cell, "text": r.text} for r in rows]
        return {"lines": lines, "next": lines[-1]["id"] if lines else after}

    # --- changing ---------------------------------------------------------------------
    def cancel(self, identity: Identity, job_id: str) -> tuple[dict[str, Any], StopRequest | None]:
        """Cancel a queued or running job; a running one's server must then stop."""
        with self.store.session() as session:
            job = self._visible(session, identity, job_id)
            if not identity.may_change(job.owner):
                raise BatchError("you may not cancel another user's job", status=403)
            if job.state not in (QUEUED, *ACTIVE_STATES):
                raise Conflict(f"job {job_id} is {job.state}; only queued or running jobs cancel")
            stop = StopRequest(job.owner, job.id) if job.state in ACTIVE_STATES else None
            job.state = CANCELLED
            job.finished_at = now()
            job.live = False
            job.reason = f"cancelled by {identity.name}"
            self.events.job_ended(job.id)
            return self.view(job, session, identity), stop

    def release(self, identity: Identity, job_id: str) -> tuple[dict[str, Any], StopRequest]:
        """End a finished job's live kernel now."""
        with self.store.session() as session:
            job = self._visible(session, identity, job_id)
            if not identity.may_change(job.owner):
                raise BatchError("you may not release another user's kernel", status=403)
            if not (job.live or job.live_pending):
                raise Conflict(f"job {job_id} has no live kernel")
            job.live = job.live_pending = False
            job.live_until = job.live_ended_at = now()
            return self.view(job, session, identity), StopRequest(job.owner, job.id)

    def delete(self, identity: Identity, job_id: str) -> StopRequest | None:
        """Delete a finished job with its files and logs."""
        with self.store.session() as session:
            job = self._visible(session, identity, job_id)
            if not identity.may_change(job.owner):
                raise BatchError("you may not delete another user's job", status=403)
            if job.state not in FINISHED_STATES:
                raise Conflict(f"job {job_id} is {job.state}; cancel it before deleting it")
            stop = StopRequest(job.owner, job.id) if job.live or job.live_pending else None
            session.execute(delete(LogLine).where(LogLine.job_id == job_id))
            session.execute(delete(JobFile).where(JobFile.job_id == job_id))
            session.execute(delete(Artifact).where(Artifact.job_id == job_id))
            session.delete(job)
        # After the commit: the files of a deleted job are never needed again.
        self.files.remove_job(job_id)
        return stop

    def set_priority(self, identity: Identity, job_id: str, priority: Any) -> dict[str, Any]:
        """An admin moves a queued job up or down the line."""
        if not identity.is_admin:
            raise BatchError("only batch admins may change priorities", status=403)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise BatchError("priority must be a whole number")
        if not -1000 <= priority <= 1000:
            raise BatchError("priority must be between -1000 and 1000")
        with self.store.session() as session:
            job = self._visible(session, identity, job_id)
            job.priority = priority
            return self.view(job, session, identity)

    # --- queue settings ---------------------------------------------------------------
    def paused(self, default: bool = False) -> bool:
        """True while an admin has paused the queue."""
        if not self._paused_read:
            with self.store.session() as session:
                setting = session.get(Setting, "paused")
                self._paused_setting = None if setting is None else bool(setting.value)
            self._paused_read = True
        return default if self._paused_setting is None else self._paused_setting

    def set_paused(self, identity: Identity, paused: Any) -> None:
        """The kill switch: no new job starts while paused."""
        if not identity.is_admin:
            raise BatchError("only batch admins may pause or resume the queue", status=403)
        if not isinstance(paused, bool):
            raise BatchError("paused must be true or false")
        with self.store.session() as session:
            session.merge(Setting(key="paused", value=paused))
        self._paused_setting, self._paused_read = paused, True

    def counts(self) -> dict[str, int]:
        """How many jobs are in each state."""
        with self.store.session() as session:
            rows = session.execute(select(Job.state, func.count()).group_by(Job.state)).all()
        counts = dict.fromkeys(STATES, 0)
        counts.update({state: n for state, n in rows})
        return counts

    # --- what the scheduler changes ---------------------------------------------------
    def mark(self, job_id: str, expected: Iterable[str], **changes: Any) -> bool:
        """Change a job only if it is still in one of the expected states (no lost update)."""
        with self.store.session() as session:
            result = session.execute(
                update(Job).where(Job.id == job_id, Job.state.in_(list(expected))).values(**changes)
            )
            return result.rowcount == 1


def queued_job(**choices: Any) -> Job:
    """A new job row, queued now, with what was chosen for it (nothing run or reported yet)."""
    return Job(
        id=new_job_id(),
        state=QUEUED,
        submitted_at=now(),
        live=False,
        progress_index=0,
        progress_total=0,
        current_cell="",
        error_name="",
        error_value="",
        reason="",
        last_seq=0,
        recorded={},
        **choices,
    )


def _with_output(session: Session, job_ids: list[str]) -> set[str]:
    """Which of these jobs have an executed notebook stored (without reading the files)."""
    if not job_ids:
        return set()
    return set(
        session.scalars(
            select(JobFile.job_id).where(JobFile.job_id.in_(job_ids), JobFile.role == "output")
        )
    )
