"""Job definitions: a notebook (or script, or zipped module) on a cron schedule.

A definition keeps its input in the file store like a job's, with the choices a submission
makes (profile, parameters, time limit) and when to run: a five-field cron expression in a time
zone (batch_service/schedules.py). Its owner's choices are checked when it is saved, with the
same checks a submission gets, and again at each firing, which submits an ordinary job as the
owner (batch_service/firing.py), so each run takes its turn in the one fair line.

`next_fire_at` is stored. A firing claims it in the same transaction that stores its job
(compare and set), so two passes, or a restart in between, never fire one moment twice; a
firing that was due while the service was down fires once when it is back (the next one is
worked out from then, not once per missed moment). While the previous job of a definition is
still queued, starting or running, a firing is skipped (`on_overlap: skip`, the default) or
queued after it (`queue`).
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from batch_service.clock import now as clock_now
from batch_service.errors import BatchError, NotFound
from batch_service.files import FileStore
from batch_service.identity import SUBMIT, Identity
from batch_service.jobs import FINISHED_STATES, MAX_PAGE, JobService, Submission
from batch_service.run_options import run_options
from batch_service.schedules import check_schedule, check_timezone, describe, next_firing
from batch_service.store import DefinitionJob, Job, JobDefinition, Store
from batch_service.uploads import CheckedInput, check_file_name

OVERLAP_CHOICES = ("skip", "queue")
# Enough for every regular run anyone keeps; more is a mistake (or a flood) to hear about.
MAX_DEFINITIONS_PER_OWNER = 100
# Fields a change (PATCH) may carry.
CHANGEABLE = frozenset(
    {"name", "profile", "parameters", "time_limit", "schedule", "timezone", "paused", "on_overlap"}
)


def new_definition_id() -> str:
    """10 URL-safe characters, starting with a letter (as job ids)."""
    alphabet = string.ascii_lowercase + string.digits
    return secrets.choice(string.ascii_lowercase) + "".join(
        secrets.choice(alphabet) for _ in range(9)
    )


class AlreadyFired(Exception):
    """Another pass fired (or skipped) this moment first: this firing stores nothing."""


@dataclass(frozen=True)
class DefinitionSpec:
    """What a person asks for when saving a definition (unchecked)."""

    name: Any = None
    profile: Any = ""
    parameters: Any = None
    time_limit: int | None = None
    schedule: Any = None
    timezone: Any = "UTC"
    paused: Any = False
    on_overlap: Any = "skip"


@dataclass(frozen=True)
class Firing:
    """One due moment of one definition, as read before firing it."""

    definition_id: str
    owner: str
    owner_groups: tuple[str, ...]
    due_at: float
    kind: str
    input_name: str
    entry_point: str | None
    profile: str
    parameters: dict[str, Any]
    time_limit: int | None
    skip: bool


def _check_overlap(value: Any) -> str:
    if value in (None, ""):
        return "skip"
    if value not in OVERLAP_CHOICES:
        raise BatchError(
            f"on_overlap must be 'skip' (a firing while the previous job is still queued or "
            f"running makes none) or 'queue' (it queues another), not {str(value)[:20]!r}"
        )
    return str(value)


def _check_paused(value: Any) -> bool:
    if value in (None, ""):
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise BatchError("paused must be true or false")


def _check_name(value: Any, default: str) -> str:
    if value in (None, ""):
        return default
    if not isinstance(value, str):
        raise BatchError("name must be text", field="name")
    return check_file_name(value, "definition name", field="name")


class DefinitionService:
    """Saving, reading, changing job definitions, and recording their firings."""

    def __init__(self, store: Store, jobs: JobService, files: FileStore) -> None:
        self.store = store
        self.jobs = jobs
        self.files = files

    # --- views ------------------------------------------------------------------------
    @staticmethod
    def view(d: JobDefinition) -> dict[str, Any]:
        """A definition's API form."""
        return {
            "id": d.id,
            "owner": d.owner,
            "name": d.name,
            "kind": d.kind,
            "input_name": d.input_name,
            "input_size": d.input_size,
            "entry_point": d.entry_point,
            "profile": d.profile,
            "parameters": d.parameters,
            "time_limit": d.time_limit,
            "schedule": d.schedule,
            "schedule_text": describe(d.schedule),
            "timezone": d.timezone,
            "paused": d.paused,
            "on_overlap": d.on_overlap,
            "next_fire_at": None if d.paused else d.next_fire_at,
            "last_job_id": d.last_job_id,
            # Filled in by _add_last_states where a session can look the job up.
            "last_job_state": None,
            "last_fired_at": d.last_fired_at,
            "skipped": d.skipped,
            "last_skipped_at": d.last_skipped_at,
            "last_error": d.last_error,
            "created_at": d.created_at,
            "updated_at": d.updated_at,
        }

    def _visible(self, session: Session, identity: Identity, definition_id: str) -> JobDefinition:
        d = (
            session.get(JobDefinition, definition_id)
            if isinstance(definition_id, str) and len(definition_id) <= 16
            else None
        )
        if d is None or not identity.may_read(d.owner):
            # 404 either way, as for jobs: ids of other people's definitions do not leak.
            raise NotFound(f"no job definition {str(definition_id)[:40]!r}")
        return d

    # --- saving -----------------------------------------------------------------------
    def create(
        self,
        identity: Identity,
        spec: DefinitionSpec,
        upload: CheckedInput,
        at: float | None = None,
    ) -> dict[str, Any]:
        """Check everything as a submission would, then store the input and the definition."""
        if not identity.can_submit:
            raise BatchError("you may not submit batch jobs", status=403)
        at = clock_now() if at is None else at
        schedule = check_schedule(spec.schedule)
        timezone = check_timezone(spec.timezone)
        profile, _ = self.jobs.check_choices(identity, str(spec.profile or ""), spec.time_limit)
        options = run_options(upload, spec.parameters, None, None)
        name = _check_name(spec.name, upload.name.rsplit(".", 1)[0] or upload.name)
        definition = JobDefinition(
            id=new_definition_id(),
            owner=identity.name,
            name=name,
            kind=upload.kind,
            input_name=upload.name,
            input_size=len(upload.content),
            input_sha256="",
            entry_point=upload.entry_point,
            profile=profile.name,
            parameters=options.parameters,
            time_limit=spec.time_limit,
            owner_groups=sorted(identity.groups),
            schedule=schedule,
            timezone=timezone,
            paused=_check_paused(spec.paused),
            on_overlap=_check_overlap(spec.on_overlap),
            next_fire_at=next_firing(schedule, timezone, at),
            skipped=0,
            last_error="",
            created_at=at,
            updated_at=at,
        )
        with self.store.session() as session:
            count = session.scalar(
                select(func.count())
                .select_from(JobDefinition)
                .where(JobDefinition.owner == identity.name)
            )
            if (count or 0) >= MAX_DEFINITIONS_PER_OWNER:
                raise BatchError(
                    f"you have {count} job definitions, the most one may keep; "
                    "delete some you no longer need"
                )
        # The file first, as for a job: a definition row is never committed without its input.
        path = self.files.definition_file(definition.id, upload.name)
        _, definition.input_sha256 = self.files.write_atomic(path, upload.content)
        try:
            with self.store.session() as session:
                session.add(definition)
        except BaseException:
            self.files.remove(path.parent.parent)
            raise
        return self.view(definition)

    def input_of(self, identity: Identity, definition_id: str) -> tuple[str, bytes, str | None]:
        """The stored input's name, bytes and entry point (for checking a change)."""
        with self.store.session() as session:
            d = self._visible(session, identity, definition_id)
            name, entry = d.input_name, d.entry_point
        return name, self.files.definition_file(definition_id, name).read_bytes(), entry

    def update(
        self,
        identity: Identity,
        definition_id: str,
        changes: Any,
        upload: CheckedInput | None = None,
        at: float | None = None,
    ) -> dict[str, Any]:
        """Change a definition (also pause and resume); checked as when it was saved."""
        if not isinstance(changes, dict) or not changes:
            raise BatchError(f"send an object with any of: {', '.join(sorted(CHANGEABLE))}")
        unknown = sorted(set(changes) - CHANGEABLE)
        if unknown:
            names = ", ".join(repr(str(n)[:40]) for n in unknown[:5])
            raise BatchError(
                f"unknown field {names}; known fields: {', '.join(sorted(CHANGEABLE))}"
            )
        at = clock_now() if at is None else at
        with self.store.session() as session:
            d = self._visible(session, identity, definition_id)
            if not identity.may_change(d.owner):
                raise BatchError("you may not change another user's job definition", status=403)
            schedule = check_schedule(changes.get("schedule", d.schedule))
            timezone = check_timezone(changes.get("timezone", d.timezone))
            time_limit = changes.get("time_limit", d.time_limit)
            if time_limit == "":
                time_limit = None
            owner = identity if identity.name == d.owner else _owner_identity(d)
            profile, _ = self.jobs.check_choices(
                owner, str(changes.get("profile", d.profile) or ""), time_limit
            )
            if "parameters" in changes:
                if upload is None:
                    raise ValueError("changing parameters needs the checked input")
                d.parameters = run_options(upload, changes["parameters"], None, None).parameters
            if "name" in changes:
                d.name = _check_name(changes["name"], d.name)
            if "on_overlap" in changes:
                d.on_overlap = _check_overlap(changes["on_overlap"])
            was_paused = d.paused
            if "paused" in changes:
                d.paused = _check_paused(changes["paused"])
            if (schedule, timezone) != (d.schedule, d.timezone) or (was_paused and not d.paused):
                # A new schedule, or a resume, counts from now: no catching up on paused time.
                d.next_fire_at = next_firing(schedule, timezone, at)
            d.schedule, d.timezone = schedule, timezone
            d.profile, d.time_limit = profile.name, time_limit
            if identity.name == d.owner:
                d.owner_groups = sorted(identity.groups)
            d.updated_at = at
            item = self.view(d)
            _add_last_states(session, [item])
            return item

    def delete(self, identity: Identity, definition_id: str) -> None:
        """Delete a definition and its input; the jobs it fired stay."""
        with self.store.session() as session:
            d = self._visible(session, identity, definition_id)
            if not identity.may_change(d.owner):
                raise BatchError("you may not delete another user's job definition", status=403)
            name = d.input_name
            session.delete(d)
        self.files.remove(self.files.definition_file(definition_id, name).parent.parent)

    # --- reading ----------------------------------------------------------------------
    def get(self, identity: Identity, definition_id: str) -> dict[str, Any]:
        """One definition the identity may see."""
        with self.store.session() as session:
            item = self.view(self._visible(session, identity, definition_id))
            _add_last_states(session, [item])
            return item

    def list_definitions(
        self, identity: Identity, owner: str | None = None, limit: int = 50, offset: int = 0
    ) -> dict[str, Any]:
        """The caller's definitions (anyone's, or one owner's, for readers of all jobs)."""
        if owner is not None and owner != identity.name and not identity.can_read_all:
            raise BatchError("you may only list your own job definitions", status=403)
        if owner is None and not identity.can_read_all:
            owner = identity.name
        filters = [JobDefinition.owner == owner] if owner is not None else []
        with self.store.session() as session:
            total = session.scalar(select(func.count()).select_from(JobDefinition).where(*filters))
            rows = session.scalars(
                select(JobDefinition)
                .where(*filters)
                .order_by(JobDefinition.created_at.desc(), JobDefinition.id)
                .limit(limit)
                .offset(offset)
            ).all()
            items = [self.view(d) for d in rows]
            _add_last_states(session, items)
        return {"definitions": items, "total": total, "limit": limit, "offset": offset}

    def jobs_of(
        self, identity: Identity, definition_id: str, limit: int = 50, offset: int = 0
    ) -> dict[str, Any]:
        """The jobs a definition fired, newest first."""
        if not 1 <= limit <= MAX_PAGE:
            raise BatchError(f"limit must be between 1 and {MAX_PAGE}")
        with self.store.session() as session:
            self._visible(session, identity, definition_id)
            linked = select(DefinitionJob.job_id).where(
                DefinitionJob.definition_id == definition_id
            )
            total = session.scalar(select(func.count()).select_from(Job).where(Job.id.in_(linked)))
            rows = session.scalars(
                select(Job)
                .where(Job.id.in_(linked))
                .order_by(Job.submitted_at.desc(), Job.id)
                .limit(limit)
                .offset(offset)
            ).all()
            views = [self.jobs.view(job, session, identity) for job in rows]
        return {"jobs": views, "total": total, "limit": limit, "offset": offset}

    # --- firing -----------------------------------------------------------------------
    def due(self, at: float, limit: int = 100) -> list[Firing]:
        """Definitions whose next firing has come, each with whether it would pile up."""
        with self.store.session() as session:
            rows = session.scalars(
                select(JobDefinition)
                .where(JobDefinition.paused.is_(False), JobDefinition.next_fire_at <= at)
                .order_by(JobDefinition.next_fire_at, JobDefinition.id)
                .limit(limit)
            ).all()
            firings = []
            for d in rows:
                previous = session.get(Job, d.last_job_id) if d.last_job_id else None
                busy = previous is not None and previous.state not in FINISHED_STATES
                firings.append(
                    Firing(
                        d.id,
                        d.owner,
                        tuple(d.owner_groups or ()),
                        d.next_fire_at,
                        d.kind,
                        d.input_name,
                        d.entry_point,
                        d.profile,
                        dict(d.parameters or {}),
                        d.time_limit,
                        skip=busy and d.on_overlap == "skip",
                    )
                )
        return firings

    def input_bytes(self, firing: Firing) -> bytes:
        """The definition's stored input."""
        return self.files.definition_file(firing.definition_id, firing.input_name).read_bytes()

    def _advance(self, session: Session, firing: Firing, at: float, **values: Any) -> None:
        """Move the definition past this moment, only if no other pass did (compare and set)."""
        d = session.get(JobDefinition, firing.definition_id)
        if d is None:
            raise AlreadyFired(firing.definition_id)
        following = next_firing(d.schedule, d.timezone, max(at, firing.due_at))
        result = session.execute(
            update(JobDefinition)
            .where(
                JobDefinition.id == firing.definition_id,
                JobDefinition.next_fire_at == firing.due_at,
            )
            .values(next_fire_at=following, **values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            raise AlreadyFired(firing.definition_id)

    def skip(self, firing: Firing, at: float) -> None:
        """Record a firing skipped because the previous job is still queued or running."""
        try:
            with self.store.session() as session:
                self._advance(
                    session,
                    firing,
                    at,
                    skipped=JobDefinition.skipped + 1,
                    last_skipped_at=at,
                )
        except AlreadyFired:
            pass

    def fail(self, firing: Firing, at: float, message: str) -> None:
        """Record a firing that could make no job, and why (the owner reads it)."""
        try:
            with self.store.session() as session:
                self._advance(session, firing, at, last_error=message[:2000])
        except AlreadyFired:
            pass

    def submit(self, firing: Firing, upload: CheckedInput, at: float) -> str | None:
        """Submit the firing's job as the definition's owner; None if another pass fired it."""
        owner = Identity(firing.owner, frozenset({SUBMIT}), firing.owner_groups)
        submission = Submission(
            owner=firing.owner,
            input=upload,
            profile=firing.profile,
            time_limit=firing.time_limit,
            parameters=firing.parameters,
        )

        def record(session: Session, job: Job) -> None:
            self._advance(session, firing, at, last_job_id=job.id, last_fired_at=at, last_error="")
            session.add(
                DefinitionJob(definition_id=firing.definition_id, job_id=job.id, fired_at=at)
            )

        try:
            return str(self.jobs.submit(owner, submission, on_store=record)["id"])
        except AlreadyFired:
            return None


def _owner_identity(d: JobDefinition) -> Identity:
    """The owner as the firing acts for them (an admin's change is checked as theirs)."""
    return Identity(d.owner, frozenset({SUBMIT}), tuple(d.owner_groups or ()))


def _add_last_states(session: Session, items: list[dict[str, Any]]) -> None:
    """Each definition's last job's state (None once that job is deleted), in one query."""
    ids = [item["last_job_id"] for item in items if item["last_job_id"]]
    states = (
        dict(session.execute(select(Job.id, Job.state).where(Job.id.in_(ids))).tuples().all())
        if ids
        else {}
    )
    for item in items:
        item["last_job_state"] = states.get(item["last_job_id"])
