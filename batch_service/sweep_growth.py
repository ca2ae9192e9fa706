"""How an adaptive sweep grows while it runs: new points become jobs in one transaction.

An optimisation or exploration sweep keeps its own copy of its input (written when it is
created, batch_service/sweeps.py) and how each run is made (`info["run"]`: the input's kind,
entry point, arguments, report mode, priority and groups), so a point added later runs the same
way as the first, even when the sweep started with no point at all. Each new point's input is
a link to that copy.

`SweepGrowth.add` stores the new points, marks the runs whose end was acted on, and updates the
sweep's info, all in ONE transaction, and only while the sweep is active: a sweep paused or
cancelled meanwhile gets nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from batch_service.clock import now
from batch_service.jobs import ACTIVE_STATES, QUEUED, JobService
from batch_service.store import Job, JobFile, Sweep
from batch_service.sweep_request import replace_job

ACTIVE = "active"
RUN_FIELDS = ("kind", "entry_point", "report_mode", "args", "priority", "group_name")


def run_choices(base: Job) -> dict[str, Any]:
    """How each run of a sweep is made, kept in its info for points added later."""
    choices = {name: getattr(base, name) for name in RUN_FIELDS}
    choices["owner_groups"] = list(base.owner_groups or [])
    return choices


def base_job(sweep: Sweep) -> Job:
    """A job (never stored) with the choices every new point of the sweep copies."""
    run = (sweep.info or {}).get("run", {})
    return Job(
        owner=sweep.owner,
        kind=run.get("kind", "notebook"),
        input_name=sweep.input_name,
        entry_point=run.get("entry_point"),
        profile=sweep.profile,
        report_mode=bool(run.get("report_mode", False)),
        args=list(run.get("args") or []),
        time_limit=sweep.time_limit,
        priority=int(run.get("priority") or 0),
        group_name=run.get("group_name"),
        owner_groups=list(run.get("owner_groups") or []),
    )


@dataclass(frozen=True)
class NewPoint:
    """A point to add: its hash, parameters, and its trial (optuna) or depth (explore)."""

    point_hash: str
    parameters: dict[str, Any]
    trial: int | None = None
    depth: int | None = None


def public_info(info: dict[str, Any] | None) -> dict[str, Any]:
    """What the API shows of a sweep's info (how runs are made is the sweep's own business)."""
    return {k: v for k, v in (info or {}).items() if k != "run"}


class SweepGrowth:
    """Adds points to adaptive sweeps through the job service's store and file store."""

    def __init__(self, jobs: JobService) -> None:
        self.jobs = jobs
        self.store = jobs.store

    def sweep_input(self, sweep: Sweep) -> Any:
        """Where the sweep's own copy of its input is."""
        return self.jobs.files.job_file(sweep.id, "input", sweep.input_name)

    def active_points(self, sweep_id: str) -> int:
        """How many of the sweep's points are queued, starting or running."""
        with self.store.session() as session:
            return len(
                session.scalars(
                    select(Job.id).where(
                        Job.sweep_id == sweep_id, Job.state.in_([QUEUED, *ACTIVE_STATES])
                    )
                ).all()
            )

    def add(
        self,
        sweep_id: str,
        points: Sequence[NewPoint],
        followed: Sequence[str] = (),
        info: dict[str, Any] | None = None,
    ) -> int:
        """Store the points as queued jobs, mark `followed` runs acted on and set the info (its
        "run" kept), in one transaction; returns how many points were added (0 when the sweep
        is no longer active: then nothing changes but the marks and the info)."""
        with self.store.session() as session:
            sweep = session.get(Sweep, sweep_id)
            if sweep is None:
                return 0
            base = base_job(sweep)
            active = sweep.state == ACTIVE
        jobs: list[Job] = []
        rows: list[JobFile] = []
        t = now()
        if active and points:
            for i, point in enumerate(points):
                job = replace_job(
                    base,
                    sweep,
                    point.point_hash,
                    point.parameters,
                    [],
                    trial=point.trial,
                    depth=point.depth,
                )
                job.submitted_at = t + i * 1e-6
                jobs.append(job)
            rows = self._link_inputs(sweep, jobs)
        try:
            with self.store.session() as session:
                sweep = session.get(Sweep, sweep_id, with_for_update=True)
                if sweep is None:
                    raise LookupError(sweep_id)
                if sweep.state != ACTIVE:
                    self._remove(jobs)
                    jobs, rows = [], []
                if followed:
                    session.execute(
                        update(Job).where(Job.id.in_(list(followed))).values(followed_up=True)
                    )
                if info is not None:
                    sweep.info = {**info, "run": (sweep.info or {}).get("run", {})}
                session.add_all(jobs)
                session.add_all(rows)
        except LookupError:
            self._remove(jobs)
            return 0
        except BaseException:
            self._remove(jobs)
            raise
        return len(jobs)

    def _link_inputs(self, sweep: Sweep, jobs: list[Job]) -> list[JobFile]:
        source = self.sweep_input(sweep)
        size = source.stat().st_size
        rows = []
        for job in jobs:
            target = self.jobs.files.job_file(job.id, "input", sweep.input_name)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except OSError:
                self.jobs.files.write_atomic(target, source.read_bytes())
            rows.append(
                JobFile(
                    job_id=job.id,
                    role="input",
                    name=sweep.input_name,
                    size=size,
                    sha256=sweep.input_sha256,
                    stored_at=now(),
                )
            )
        return rows

    def _remove(self, jobs: list[Job]) -> None:
        for job in jobs:
            self.jobs.files.remove_job(job.id)
