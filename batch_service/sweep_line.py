"""A sweep's points in the line: at most `max_parallel` of them hold resources at once.

Admission offers the policy only as many of a sweep's queued points as the sweep has room for
(its `max_parallel` less its points starting or running; none while it is paused), first come
first. The policy itself is unchanged: the points offered take turns as their owner's jobs, so a
1,000-point sweep does not shut out a colleague's single run. The points held back wait with the
reason code `sweep_limit` and words saying why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from batch_service.jobs import ACTIVE_STATES
from batch_service.store import Job, Sweep

PAUSED_WORDS = "waiting: the sweep is paused; resume it to start its points"


def limit_words(max_parallel: int) -> str:
    """Why a point waits while its sweep runs as many as it may."""
    return f"waiting: the sweep runs at most {max_parallel} at once"


def offered_points(session: Session, queued: Sequence[Any]) -> tuple[list[Any], dict[str, str]]:
    """The queued rows (with `id`, `sweep_id`, `priority`, `submitted_at`) to offer the policy,
    and the words of each point held back."""
    sweep_ids = {row.sweep_id for row in queued if row.sweep_id is not None}
    if not sweep_ids:
        return list(queued), {}
    sweeps = {
        row.id: row
        for row in session.execute(
            select(Sweep.id, Sweep.max_parallel, Sweep.state).where(Sweep.id.in_(sweep_ids))
        )
    }
    running = dict(
        session.execute(
            select(Job.sweep_id, func.count())
            .where(Job.sweep_id.in_(sweep_ids), Job.state.in_(ACTIVE_STATES))
            .group_by(Job.sweep_id)
        ).all()
    )
    room = {}
    for sweep_id in sweep_ids:
        sweep = sweeps.get(sweep_id)
        if sweep is None:
            room[sweep_id] = len(queued)
        elif sweep.state == "paused":
            room[sweep_id] = 0
        else:
            room[sweep_id] = max(0, sweep.max_parallel - running.get(sweep_id, 0))
    offered, held = [], {}
    for row in sorted(queued, key=lambda r: (-r.priority, r.submitted_at, r.id)):
        if row.sweep_id is None:
            offered.append(row)
        elif room[row.sweep_id] > 0:
            room[row.sweep_id] -= 1
            offered.append(row)
        else:
            sweep = sweeps[row.sweep_id]
            held[row.id] = (
                PAUSED_WORDS if sweep.state == "paused" else limit_words(sweep.max_parallel)
            )
    return offered, held
