"""A sweep submission: what a user asks for, the sweep's id, how the same sweep is recognised
again, and the job each point becomes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from batch_service.errors import BatchError
from batch_service.jobs import Submission, new_job_id, queued_job
from batch_service.store import Job, JobFile, Sweep
from batch_service.sweep_points import canonical_json

MAX_RECORD_NAMES = 64


@dataclass(frozen=True)
class SweepRequest:
    """What a user asks for: the input's submission (parameters are the points') and the
    sweep's own choices."""

    submission: Submission
    spec: Any
    max_parallel: int = 1
    record: list[str] = field(default_factory=list)
    failed_live_window: int | None = None
    keep_succeeded: bool = False
    into: str | None = None


def new_sweep_id() -> str:
    """Like a job id, starting with "s" so the two are told apart at a glance."""
    return "s" + new_job_id()[1:]


def spec_hash(owner: str, input_sha: str, request: SweepRequest, profile: str) -> str:
    same = {
        "owner": owner,
        "input": input_sha,
        "spec": request.spec,
        "profile": profile,
        "args": request.submission.args or [],
        "report_mode": bool(request.submission.report_mode),
    }
    return hashlib.sha256(canonical_json(same).encode()).hexdigest()


def check_record(names: Any) -> list[str]:
    """Names of papermill-style outputs to read: identifiers, a bounded list."""
    if names in (None, ""):
        return []
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not isinstance(names, list) or len(names) > MAX_RECORD_NAMES:
        raise BatchError(f"record must be a list of at most {MAX_RECORD_NAMES} output names")
    for name in names:
        if not isinstance(name, str) or not name.isidentifier() or len(name) > 64:
            raise BatchError(f"record: {str(name)[:64]!r} is not an output name")
    return list(dict.fromkeys(names))


def replace_job(
    base: Job,
    sweep: Sweep,
    point_hash: str,
    parameters: dict[str, Any],
    warnings: list[str],
    trial: int | None = None,
    depth: int | None = None,
) -> Job:
    """A new queued job of the sweep for one point, with the base job's choices (and, in an
    adaptive sweep, its trial or depth)."""
    return queued_job(
        owner=base.owner,
        kind=base.kind,
        input_name=base.input_name,
        entry_point=base.entry_point,
        profile=base.profile,
        parameters=parameters,
        report_mode=base.report_mode,
        args=base.args,
        warnings=warnings,
        time_limit=base.time_limit,
        live_window=sweep.failed_live_window,
        priority=base.priority,
        group_name=base.group_name,
        owner_groups=base.owner_groups,
        sweep_id=sweep.id,
        point_hash=point_hash,
        trial=trial,
        depth=depth,
        followed_up=False,
    )


def replace_row(row: JobFile, job_id: str) -> JobFile:
    """The input file's row for another job (the same bytes, linked)."""
    return JobFile(
        job_id=job_id,
        role=row.role,
        name=row.name,
        size=row.size,
        sha256=row.sha256,
        stored_at=row.stored_at,
    )
