"""Which jobs this service changed since a reader last asked, from the store's own sessions.

The scheduler's pass keeps the queued line in memory between passes and reads again only the
jobs written since (a line of 10,000 costs a few rows, not 10,000). Every write goes through a
session of the store, so listening to the sessions sees them all: objects flushed (a new job,
`job.state = ...`) and ORM statements (`update(Job).where(Job.id == ...)`, `insert(Job)`).
A statement whose jobs cannot be told from its WHERE clause, or a writer outside this process,
is covered by a full read: the former at once, the latter within `FULL_READ_SECONDS`.

Ids are handed over only once their transaction commits: a reader never takes an id, reads the
old row before the commit, and misses the change.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList

from batch_service.store import Job, Store

# Another process may write the store (an operator by hand, a benchmark loading a line):
# those changes are read within this long.
FULL_READ_SECONDS = 60.0
EVERYTHING = "*"
_PENDING = "batchhub_changed_jobs"


def _pinned_ids(where: Any) -> set[str] | None:
    """The job ids a WHERE clause limits a statement to (`Job.id == x`, `Job.id.in_(...)`,
    alone or AND-ed with other conditions); None when it does not limit them."""
    if where is None:
        return None
    if isinstance(where, BooleanClauseList) and where.operator is operators.and_:
        clauses = list(where.clauses)
    else:
        clauses = [where]
    id_column = Job.__table__.c.id
    for clause in clauses:
        if not isinstance(clause, BinaryExpression) or not isinstance(clause.right, BindParameter):
            continue
        if not clause.left.compare(id_column):
            continue
        value = clause.right.effective_value
        if clause.operator is operators.eq:
            return {value}
        if clause.operator is operators.in_op:
            return set(value)
    return None


class JobChanges:
    """Committed job writes since each reader's last look."""

    def __init__(self, store: Store, clock: Any = time.monotonic) -> None:
        self.clock = clock
        # Reader -> ids changed since its last take (EVERYTHING: read all again).
        self._readers: dict[str, set[str]] = {}
        self._read_all_at: dict[str, float] = {}
        # Some writes commit in worker threads (sweep follow-ups): taking and adding ids is
        # one step at a time, so no id lands in a set just taken.
        self._lock = threading.Lock()
        sessions = store.sessions
        event.listen(sessions, "after_flush", self._flushed)
        event.listen(sessions, "do_orm_execute", self._executed)
        event.listen(sessions, "after_commit", self._committed)
        event.listen(sessions, "after_rollback", self._rolled_back)

    def take(self, reader: str) -> set[str]:
        """Ids of jobs changed since this reader last took them; {EVERYTHING} on a first take,
        after a statement whose jobs are unknown, or when a full read is due."""
        with self._lock:
            changed = self._readers.get(reader)
            self._readers[reader] = set()
        now = self.clock()
        if changed is None or now - self._read_all_at.get(reader, now) >= FULL_READ_SECONDS:
            changed = {EVERYTHING}
        if EVERYTHING in changed:
            self._read_all_at[reader] = now
            changed = {EVERYTHING}
        return changed

    @staticmethod
    def _pending(session: Session) -> set[str]:
        return session.info.setdefault(_PENDING, set())

    def _flushed(self, session: Session, _context: Any) -> None:
        ids = (o.id for o in (*session.new, *session.dirty, *session.deleted) if isinstance(o, Job))
        self._pending(session).update(ids)

    def _executed(self, state: ORMExecuteState) -> None:
        if not (state.is_update or state.is_delete or state.is_insert):
            return
        if getattr(getattr(state.statement, "table", None), "name", None) != Job.__tablename__:
            return
        if state.is_insert:
            rows = state.parameters if isinstance(state.parameters, list) else [state.parameters]
            ids = {row.get("id") for row in rows if isinstance(row, dict)}
            if not ids or None in ids:
                ids = {EVERYTHING}
        else:
            ids = _pinned_ids(state.statement.whereclause) or {EVERYTHING}
        self._pending(state.session).update(ids)

    def _committed(self, session: Session) -> None:
        ids = session.info.pop(_PENDING, None)
        if ids:
            with self._lock:
                for changed in self._readers.values():
                    changed.update(ids)

    def _rolled_back(self, session: Session) -> None:
        session.info.pop(_PENDING, None)
