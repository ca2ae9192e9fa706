"""Jobs the scheduler's pass reads every time, kept in memory between passes.

Each pass reads again only the jobs written since the last one (job_changes.py): with 10,000
queued, a pass reads the few that were submitted, admitted or cancelled, not the whole line.
The same holds for the jobs that hold resources (starting, running, live kernels).
A request's fair-share group depends on the groups the policy names (admins change weights at
run time): when those change, every request's group is worked out again, from kept rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, NamedTuple, TypeVar

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from batch_service.job_changes import EVERYTHING, JobChanges
from batch_service.jobs import ACTIVE_STATES, QUEUED
from batch_service.policy import PolicyConfig, Request
from batch_service.policy.queue_index import QueueIndex
from batch_service.store import Job
from batch_service.sweep_line import SweepGate

# Ids per IN (...) when reading changed jobs (SQLite allows 32,766 parameters; stay well below).
ID_CHUNK = 500

Row = TypeVar("Row", bound=tuple[Any, ...])


class QueuedRow(NamedTuple):
    """What the policy needs of a queued job (its group is worked out per pass)."""

    id: str
    owner: str
    profile: str
    priority: int
    submitted_at: float
    time_limit: int
    group_name: str | None
    owner_groups: list[str]
    sweep_id: str | None


class HoldingRow(NamedTuple):
    """What the policy needs of a job that holds resources: starting, running or live."""

    id: str
    owner: str
    profile: str
    group_name: str | None
    owner_groups: list[str]
    state: str
    admitted_at: float | None
    started_at: float | None
    finished_at: float | None
    time_limit: int
    live: bool
    live_pending: bool
    live_until: float | None
    live_window: int
    sweep_id: str | None


class KeptRows(Generic[Row]):
    """The rows of the jobs that match `where`, by id, brought up to date on each `update`."""

    def __init__(self, changes: JobChanges, reader: str, row: type[Row], where: Any) -> None:
        self.changes = changes
        self.reader = reader
        self.row = row
        self.query = select(*(getattr(Job, name) for name in row._fields)).where(where)  # type: ignore[attr-defined]
        self.rows: dict[str, Row] = {}

    def update(self, session: Session) -> set[str] | None:
        """Read what changed; returns the ids read again (None: every row was)."""
        changed = self.changes.take(self.reader)
        if EVERYTHING in changed:
            self.rows = {row[0]: row for row in read_jobs(session, self.query, None, self.row)}
            return None
        for job_id in changed:
            self.rows.pop(job_id, None)
        for row in read_jobs(session, self.query, changed, self.row):
            self.rows[row[0]] = row
        return changed


def read_jobs(
    session: Session, query: Select[Any], ids: Iterable[str] | None, row: Callable[..., Row]
) -> list[Row]:
    """The query's rows, among the jobs `ids` (read in chunks) or all of them."""
    if ids is None:
        return [row(*r) for r in session.execute(query)]
    ordered = sorted(ids)
    found: list[Row] = []
    for start in range(0, len(ordered), ID_CHUNK):
        chunk = query.where(Job.id.in_(ordered[start : start + ID_CHUNK]))
        found.extend(row(*r) for r in session.execute(chunk))
    return found


def holding_rows(changes: JobChanges) -> KeptRows[HoldingRow]:
    """The jobs that hold a server: starting or running, or keeping their kernel."""
    holding = or_(Job.state.in_(ACTIVE_STATES), Job.live.is_(True), Job.live_pending.is_(True))
    return KeptRows(changes, "holding", HoldingRow, holding)


class QueuedRequests:
    """Queued jobs as the policy's line, changed only where jobs changed. A sweep's points
    are in it only while their sweep has room for them (sweep_line.py)."""

    def __init__(
        self,
        changes: JobChanges,
        gpus_of: Callable[[str], tuple[int, str | None]],
        fair_group: Callable[[str | None, Iterable[str], PolicyConfig], str | None],
        is_exclusive: Callable[[str], bool] = lambda profile: False,
    ) -> None:
        self.kept = KeptRows(changes, "queued", QueuedRow, Job.state == QUEUED)
        self.gpus_of = gpus_of
        self.fair_group = fair_group
        self.is_exclusive = is_exclusive
        self.index = QueueIndex()
        self.gate = SweepGate()
        self._owner: dict[str, str] = {}  # id -> owner of each request in the index
        self._named: frozenset[str] | None = None

    def line(self, config: PolicyConfig, session: Session, active: Mapping[str, int]) -> QueueIndex:
        """Every queued job the policy is offered, as a request, as of now. `active`: sweep ->
        its points starting or running."""
        changed = self.kept.update(session)
        rows = self.kept.rows
        if changed is None or config.named_groups != self._named:
            self._named = config.named_groups
            self.index, self.gate, self._owner = QueueIndex(), SweepGate(), {}
            changed = set(rows)
        for job_id in changed:
            self._take_out(job_id)
            self.gate.remove(job_id)
            row = rows.get(job_id)
            if row is None:
                continue
            if row.sweep_id is None:
                self._put_in(row, config)
            else:
                self.gate.add(job_id, row.sweep_id, row.priority, row.submitted_at)
        newly, gone = self.gate.gate(session, active)
        for job_id in gone:
            self._take_out(job_id)
        for job_id in newly:
            self._put_in(rows[job_id], config)
        return self.index

    def _put_in(self, row: QueuedRow, config: PolicyConfig) -> None:
        self.index.add(self._request(row, config))
        self._owner[row.id] = row.owner

    def _take_out(self, job_id: str) -> None:
        owner = self._owner.pop(job_id, None)
        if owner is not None:
            self.index.remove(job_id, owner)

    def _request(self, row: QueuedRow, config: PolicyConfig) -> Request:
        gpus, gpu_type = self.gpus_of(row.profile)
        return Request(
            row.id,
            row.owner,
            gpus,
            gpu_type,
            group=self.fair_group(row.group_name, row.owner_groups, config),
            kind="batch",
            priority=row.priority,
            submitted_at=row.submitted_at,
            expected_duration=row.time_limit,
            exclusive=self.is_exclusive(row.profile),
        )
