"""Sweeps: one input run over many parameter points, each point a job of the sweep.

`SweepService` stores a sweep and all its points in ONE transaction (or nothing), finds the
same sweep again when it is resubmitted (same owner, input, points spec and choices, or an
explicit `into`), and there queues only the points not already queued, running or succeeded.
A point that failed, timed out or was cancelled gets a new job (a new attempt); the old job
stays with the sweep as history but gives up the point's hash, so each point has one current
job. Cancel, pause, resume and retry act on the sweep's points; the scheduler's admission
limits how many of a sweep's points hold resources at once (batch_service/sweep_line.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from batch_service.clock import now
from batch_service.errors import BatchError, Conflict, NotFound
from batch_service.identity import Identity
from batch_service.jobs import (
    ACTIVE_STATES,
    CANCELLED,
    FAILED,
    QUEUED,
    STATES,
    SUCCEEDED,
    TIMED_OUT,
    JobService,
    StopRequest,
)
from batch_service.jobs import _with_output as with_output
from batch_service.run_options import run_options
from batch_service.store import Job, JobFile, Sweep
from batch_service.store.bulk import insert_new
from batch_service.sweep_growth import public_info, run_choices
from batch_service.sweep_points import DEFAULT_MAX_POINTS, Checker
from batch_service.sweep_request import (
    SweepRequest,
    check_record,
    new_sweep_id,
    replace_job,
    replace_row,
    spec_hash,
)
from batch_service.sweep_results import result_rows
from batch_service.sweep_space import ADAPTIVE_KINDS, adaptive_points, budget_of
from batch_service.sweep_specs import make_points

ACTIVE, PAUSED, DONE = "active", "paused", "done"
SWEEP_STATES = (ACTIVE, PAUSED, CANCELLED, DONE)
# A point in one of these states is not queued again by a resubmission.
KEPT_STATES = (QUEUED, *ACTIVE_STATES, SUCCEEDED)
RETRIED_STATES = (FAILED, TIMED_OUT)
DEFAULT_FAILED_LIVE_WINDOW = 120
MAX_PARALLEL = 10_000
MAX_PAGE = 500


def spec_summary(spec: dict[str, Any]) -> dict[str, Any]:
    """A spec with a table's rows replaced by how many there are."""
    if spec.get("kind") != "table":
        return spec
    table = spec.get("table")
    rows = len(table) if isinstance(table, list) else max(0, len(str(table).splitlines()) - 1)
    return {"kind": "table", "table_rows": rows}


class SweepService:
    """Sweeps over the job service: its profiles, checks and file store."""

    def __init__(self, jobs: JobService, max_points: int = DEFAULT_MAX_POINTS) -> None:
        self.jobs = jobs
        self.store = jobs.store
        self.max_points = max_points

    # --- creating ---------------------------------------------------------------------
    def create(self, identity: Identity, request: SweepRequest) -> dict[str, Any]:
        """Check everything, then store the sweep and its new points in one transaction."""
        upload = request.submission.input
        if upload.kind == "empty":
            raise BatchError("a sweep runs a notebook, a .py file or a zipped module; upload one")
        if isinstance(request.max_parallel, bool) or not isinstance(request.max_parallel, int):
            raise BatchError("max_parallel must be a whole number")
        if not 1 <= request.max_parallel <= MAX_PARALLEL:
            raise BatchError(f"max_parallel must be between 1 and {MAX_PARALLEL}")
        record = check_record(request.record)
        # A notebook without a parameters cell has no parameters to sweep over.
        declared = upload.parameters if upload.kind == "notebook" else None
        if upload.kind == "notebook" and declared is None:
            declared = []
        kind = request.spec.get("kind") if isinstance(request.spec, dict) else None
        adaptive = kind in ADAPTIVE_KINDS
        if adaptive:
            if request.into:
                raise BatchError(
                    "an optimisation or exploration sweep chooses its own points: "
                    "into is for grids, tables and random samples"
                )
            checker = Checker(declared, upload.name)
            points = adaptive_points(request.spec, checker, self.max_points)
        else:
            points = make_points(request.spec, declared, upload.name, self.max_points)
        base = self.jobs.prepare(identity, replace(request.submission, parameters={}))
        profile = self.jobs.profiles[base.profile]
        window = request.failed_live_window
        if window is None:
            window = min(DEFAULT_FAILED_LIVE_WINDOW, profile.live_window)
        if isinstance(window, bool) or not isinstance(window, int) or window < 0:
            raise BatchError("failed_live_window must be a whole number of seconds")
        if window > profile.live_window:
            raise BatchError(
                f"failed_live_window {window}s is beyond profile {profile.name!r}'s live "
                f"window of {profile.live_window}s"
            )
        # Every point's parameters are checked as a job's would be, before anything is stored.
        options = {
            h: run_options(upload, point, request.submission.report_mode, request.submission.args)
            for h, point in points.items()
        }
        input_sha = hashlib.sha256(upload.content).hexdigest()
        same = spec_hash(identity.name, input_sha, request, base.profile)
        t = now()
        with self.store.session() as session:
            sweep = self._target(session, identity, request.into, same)
            fresh = sweep is None
            if sweep is None:
                sweep = Sweep(
                    id=new_sweep_id(),
                    owner=identity.name,
                    input_name=upload.name,
                    input_sha256=input_sha,
                    profile=base.profile,
                    time_limit=base.time_limit,
                    max_parallel=request.max_parallel,
                    state=ACTIVE,
                    kind=request.spec["kind"],
                    spec=request.spec,
                    spec_hash=same,
                    budget=budget_of(request.spec, self.max_points),
                    record=record,
                    failed_live_window=window,
                    keep_succeeded=bool(request.keep_succeeded),
                    created_at=t,
                    info={"run": run_choices(base)} if adaptive else {},
                )
                existing: dict[str, Job] = {}
            else:
                if sweep.kind in ADAPTIVE_KINDS or adaptive:
                    if sweep.kind != kind:
                        raise BatchError("points are added only to a sweep of the same kind")
                sweep.max_parallel = request.max_parallel
                existing = self._current(session, sweep.id)
        new_points = [
            h for h in points if h not in existing or existing[h].state not in KEPT_STATES
        ]
        jobs = []
        for i, h in enumerate(new_points):
            depth = 0 if kind == "explore" else None
            job = replace_job(
                base, sweep, h, options[h].parameters, options[h].warnings, depth=depth
            )
            # One submission, in the points' order: the first point is the first in line.
            job.submitted_at = t + i * 1e-6
            jobs.append(job)
        rows = self._write_inputs(jobs, upload.name, upload.content)
        if adaptive and fresh:
            # Later points link to the sweep's own copy of the input (it may start with none).
            target = self.sweep_input(sweep.id, upload.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            self.jobs.files.write_atomic(target, upload.content)
        try:
            with self.store.session() as session:
                if existing or session.get(Sweep, sweep.id) is not None:
                    session.execute(
                        update(Sweep)
                        .where(Sweep.id == sweep.id)
                        .values(max_parallel=request.max_parallel)
                    )
                    self._reopen(session, sweep.id)
                else:
                    session.add(sweep)
                old = [existing[h].id for h in new_points if h in existing]
                self._supersede(session, old)
                self._insert_points(session, jobs, rows)
        except IntegrityError:
            self._remove_inputs(jobs)
            if adaptive and fresh:
                self.jobs.files.remove_job(sweep.id)
            raise Conflict(
                "this sweep changed while it was being submitted; submit again"
            ) from None
        except BaseException:
            self._remove_inputs(jobs)
            if adaptive and fresh:
                self.jobs.files.remove_job(sweep.id)
            raise
        view = self.get(identity, sweep.id)
        view["added"] = len(jobs)
        view["skipped"] = len(points) - len(jobs)
        return view

    def _target(
        self, session: Session, identity: Identity, into: str | None, spec_hash: str
    ) -> Sweep | None:
        if into:
            sweep = self._visible(session, identity, into)
            if sweep.owner != identity.name:
                raise BatchError("you may only add points to your own sweeps", status=403)
            return sweep
        return session.scalars(
            select(Sweep)
            .where(Sweep.owner == identity.name, Sweep.spec_hash == spec_hash)
            .order_by(Sweep.created_at.desc())
            .limit(1)
        ).first()

    @staticmethod
    def _current(session: Session, sweep_id: str) -> dict[str, Job]:
        rows = session.scalars(
            select(Job).where(Job.sweep_id == sweep_id, Job.point_hash.is_not(None))
        ).all()
        return {job.point_hash: job for job in rows if job.point_hash}

    @staticmethod
    def _reopen(session: Session, sweep_id: str) -> None:
        """A cancelled or finished sweep given new points is active again (a paused one stays
        paused)."""
        session.execute(
            update(Sweep)
            .where(Sweep.id == sweep_id, Sweep.state.in_([CANCELLED, DONE]))
            .values(state=ACTIVE)
        )

    @staticmethod
    def _supersede(session: Session, job_ids: list[str]) -> None:
        """Earlier attempts stay in the sweep's history without their point's hash; one that
        changed state meanwhile (it was requeued elsewhere) makes the whole change a conflict."""
        if not job_ids:
            return
        done = session.execute(
            update(Job)
            .where(Job.id.in_(job_ids), Job.state.not_in(KEPT_STATES))
            .values(point_hash=None)
        )
        if done.rowcount != len(job_ids):
            raise Conflict("a point of this sweep changed meanwhile; submit again")
        session.flush()

    @staticmethod
    def _insert_points(session: Session, jobs: list[Job], rows: list[JobFile]) -> None:
        """What the session holds first (a new sweep's row: points refer to it), then the
        points' jobs and input rows in one INSERT per table: a flush of 2,000 new objects
        cost more than checking every point."""
        session.flush()
        insert_new(session, jobs)
        insert_new(session, rows)

    def _write_inputs(self, jobs: list[Job], name: str, content: bytes) -> list[JobFile]:
        """Each point's input: written once, then linked (copied where links fail)."""
        if not jobs:
            return []
        first = self.jobs.job_files.write(jobs[0].id, "input", name, content)
        self.jobs.files.link_into_jobs(
            self.jobs.files.job_file(jobs[0].id, "input", name),
            content,
            [job.id for job in jobs[1:]],
            "input",
            name,
        )
        return [first] + [replace_row(first, job.id) for job in jobs[1:]]

    def sweep_input(self, sweep_id: str, name: str) -> Path:
        """An adaptive sweep's copy of its input (sweep ids never name a job's folder)."""
        return self.jobs.files.job_file(sweep_id, "input", name)

    def _remove_inputs(self, jobs: list[Job]) -> None:
        for job in jobs:
            self.jobs.files.remove_job(job.id)

    # --- reading ----------------------------------------------------------------------
    def _visible(self, session: Session, identity: Identity, sweep_id: str) -> Sweep:
        ok = isinstance(sweep_id, str) and len(sweep_id) <= 16
        sweep = session.get(Sweep, sweep_id) if ok else None
        if sweep is None or not identity.may_read(sweep.owner):
            # 404 either way, so others' sweep ids do not leak.
            raise NotFound(f"no sweep {str(sweep_id)[:40]!r}")
        return sweep

    def counts(self, session: Session, sweep_ids: list[str]) -> dict[str, dict[str, int]]:
        """Points of each sweep by state (current attempts only)."""
        rows = session.execute(
            select(Job.sweep_id, Job.state, func.count())
            .where(Job.sweep_id.in_(sweep_ids), Job.point_hash.is_not(None))
            .group_by(Job.sweep_id, Job.state)
        ).all()
        counts = {s: dict.fromkeys(STATES, 0) for s in sweep_ids}
        for sweep_id, state, n in rows:
            counts[sweep_id][state] = n
        return counts

    def view(self, sweep: Sweep, counts: dict[str, int], whole: bool = True) -> dict[str, Any]:
        """A sweep as the API shows it; a list (`whole` false) gives a table's row count
        instead of its rows (a table may be megabytes)."""
        state = sweep.state
        # An adaptive sweep with nothing queued may be about to choose more: it says itself
        # when it is done (batch_service/sweep_followups.py).
        idle = not any(counts[s] for s in (QUEUED, *ACTIVE_STATES))
        if state == ACTIVE and idle and sweep.kind not in ADAPTIVE_KINDS:
            state = DONE
        return {
            "id": sweep.id,
            "owner": sweep.owner,
            "state": state,
            "kind": sweep.kind,
            "input_name": sweep.input_name,
            "profile": sweep.profile,
            "time_limit": sweep.time_limit,
            "max_parallel": sweep.max_parallel,
            "spec": sweep.spec if whole else spec_summary(sweep.spec),
            "budget": sweep.budget,
            "record": sweep.record,
            "failed_live_window": sweep.failed_live_window,
            "keep_succeeded": sweep.keep_succeeded,
            "created_at": sweep.created_at,
            "points": sum(counts.values()),
            "counts": counts,
            "info": public_info(sweep.info),
        }

    def get(self, identity: Identity, sweep_id: str) -> dict[str, Any]:
        """One sweep the identity may see, with its points counted by state."""
        with self.store.session() as session:
            sweep = self._visible(session, identity, sweep_id)
            return self.view(sweep, self.counts(session, [sweep.id])[sweep.id])

    def list_sweeps(
        self, identity: Identity, owner: str | None = None, limit: int = 50, offset: int = 0
    ) -> dict[str, Any]:
        """A page of sweeps, newest first; others' only for those who may read all jobs."""
        if owner is not None and owner != identity.name and not identity.can_read_all:
            raise BatchError("you may only list your own sweeps", status=403)
        if owner is None and not identity.can_read_all:
            owner = identity.name
        filters = [Sweep.owner == owner] if owner is not None else []
        with self.store.session() as session:
            total = session.scalar(select(func.count()).select_from(Sweep).where(*filters))
            rows = session.scalars(
                select(Sweep)
                .where(*filters)
                .order_by(Sweep.created_at.desc(), Sweep.id)
                .limit(limit)
                .offset(offset)
            ).all()
            counts = self.counts(session, [s.id for s in rows])
            sweeps = [self.view(s, counts[s.id], whole=False) for s in rows]
        return {"sweeps": sweeps, "total": total, "limit": limit, "offset": offset}

    def points(
        self, identity: Identity, sweep_id: str
    ) -> tuple[dict[str, Any], list[Job], set[str]]:
        """The sweep, the current job of each of its points (in submission order), and which
        of those have an executed notebook."""
        with self.store.session() as session:
            return self._points(session, identity, sweep_id)

    def _points(
        self, session: Session, identity: Identity, sweep_id: str
    ) -> tuple[dict[str, Any], list[Job], set[str]]:
        sweep = self._visible(session, identity, sweep_id)
        jobs = session.scalars(
            select(Job)
            .where(Job.sweep_id == sweep.id, Job.point_hash.is_not(None))
            .order_by(Job.submitted_at, Job.id)
        ).all()
        view = self.view(sweep, self.counts(session, [sweep.id])[sweep.id])
        return view, list(jobs), with_output(session, [job.id for job in jobs])

    def results(
        self, identity: Identity, sweep_id: str, prefix: str
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The sweep and its results table: one row per point, a waiting one with its reason."""
        with self.store.session() as session:
            view, jobs, outputs = self._points(session, identity, sweep_id)
            queued = [job for job in jobs if job.state == QUEUED]
            paused = self.jobs.line.is_paused() if queued else False
            waits = self.jobs.waits_of(queued, session, identity, paused)
        rows = result_rows(jobs, outputs, waits, prefix, self.jobs.hub_base_url)
        return view, rows

    # --- changing ---------------------------------------------------------------------
    def _owned(self, session: Session, identity: Identity, sweep_id: str, verb: str) -> Sweep:
        sweep = self._visible(session, identity, sweep_id)
        if not identity.may_change(sweep.owner):
            raise BatchError(f"you may not {verb} another user's sweep", status=403)
        return sweep

    def cancel(self, identity: Identity, sweep_id: str) -> tuple[dict[str, Any], list[StopRequest]]:
        """Queued points are dropped, running ones cancelled (their servers then stop)."""
        stops = []
        t = now()
        with self.store.session() as session:
            sweep = self._owned(session, identity, sweep_id, "cancel")
            sweep.state = CANCELLED
            jobs = session.scalars(
                select(Job).where(Job.sweep_id == sweep.id, Job.state.in_([QUEUED, *ACTIVE_STATES]))
            ).all()
            for job in jobs:
                if job.state in ACTIVE_STATES:
                    stops.append(StopRequest(job.owner, job.id))
                job.state = CANCELLED
                job.finished_at = t
                job.live = False
                job.reason = f"the sweep was cancelled by {identity.name}"
                self.jobs.events.job_ended(job.id)
        return self.get(identity, sweep_id), stops

    def set_paused(self, identity: Identity, sweep_id: str, paused: bool) -> dict[str, Any]:
        """A paused sweep starts none of its points; those running go on."""
        with self.store.session() as session:
            sweep = self._owned(session, identity, sweep_id, "pause or resume")
            if sweep.state == CANCELLED:
                raise Conflict(f"sweep {sweep_id} is cancelled; resubmit or retry it instead")
            sweep.state = PAUSED if paused else ACTIVE
        return self.get(identity, sweep_id)

    def retry(self, identity: Identity, sweep_id: str) -> dict[str, Any]:
        """Failed and timed-out points get a new attempt each (in one transaction)."""
        with self.store.session() as session:
            sweep = self._owned(session, identity, sweep_id, "retry")
            if sweep.kind == "optuna":
                raise Conflict(
                    "an optimisation sweep tells Optuna its failed trials as failed and asks "
                    "new ones within its budget; it does not retry them"
                )
            failed = session.scalars(
                select(Job)
                .where(Job.sweep_id == sweep.id, Job.state.in_(RETRIED_STATES))
                .where(Job.point_hash.is_not(None))
                .order_by(Job.submitted_at, Job.id)
            ).all()
        if not failed:
            raise Conflict(f"sweep {sweep_id} has no failed points to retry")
        t = now()
        attempts, rows = [], []
        # Points added with `into` may have another input: each attempt runs its point's own.
        by_input: dict[str, list[Job]] = {}
        inputs = {}
        for i, old in enumerate(failed):
            job = replace_job(
                old, sweep, old.point_hash or "", old.parameters, old.warnings, depth=old.depth
            )
            job.submitted_at = t + i * 1e-6
            attempts.append(job)
            stored = self.jobs.job_files.find(old.id, "input")
            inputs.setdefault(stored.sha256, stored)
            by_input.setdefault(stored.sha256, []).append(job)
        try:
            for digest, jobs in by_input.items():
                stored = inputs[digest]
                rows += self._write_inputs(jobs, stored.name, stored.read())
        except BaseException:
            self._remove_inputs(attempts)
            raise
        try:
            with self.store.session() as session:
                self._reopen(session, sweep.id)
                self._supersede(session, [old.id for old in failed])
                self._insert_points(session, attempts, rows)
        except IntegrityError:
            self._remove_inputs(attempts)
            raise Conflict("this sweep changed while retrying; try again") from None
        except BaseException:
            self._remove_inputs(attempts)
            raise
        view = self.get(identity, sweep_id)
        view["added"] = len(attempts)
        return view
