"""Exploration sweeps: runs propose next points by gluing `next_points`.

One pass over a sweep (`Exploration.advance`, in a worker thread, one sweep at a time): each
run that ended and was not yet acted on is read once. A succeeded run's `next_points` (a list
of parameter objects, each naming what changes from the run's own point) are judged by
batch_service/sweep_space.take_proposals: within the sweep's bounds, not seen before, no deeper
than max_depth (a point's depth is its proposer's + 1) and within max_points. Those are queued,
the others counted by why in the sweep's info, and the run marked as acted on: all in one
transaction, so a restart reads no run twice and loses none. The sweep is done when nothing is
queued or running and every ended run was read.

What a run glues is its owner's claim: it can only propose points its own sweep allows.
"""

from __future__ import annotations

import logging
from collections import Counter

from sqlalchemy import select

from batch_service.jobs import ACTIVE_STATES, FINISHED_STATES, QUEUED, SUCCEEDED
from batch_service.store import Job, Store, Sweep
from batch_service.sweep_growth import NewPoint, SweepGrowth
from batch_service.sweep_points import Checker
from batch_service.sweep_space import parse_explore, take_proposals

log = logging.getLogger("batchhub.sweeps")
PROPOSALS = "next_points"


class Exploration:
    """Queues what exploration sweeps' runs propose."""

    def __init__(self, store: Store, growth: SweepGrowth) -> None:
        self.store = store
        self.growth = growth

    def advance(self, sweep_id: str) -> int:
        """Read the proposals of runs that ended; returns how many points were queued."""
        with self.store.session() as session:
            sweep = session.get(Sweep, sweep_id)
            if sweep is None or sweep.kind != "explore":
                return 0
            current = session.scalars(
                select(Job).where(Job.sweep_id == sweep_id, Job.point_hash.is_not(None))
            ).all()
            ended = session.scalars(
                select(Job)
                .where(
                    Job.sweep_id == sweep_id,
                    Job.state.in_(FINISHED_STATES),
                    Job.followed_up.is_(False),
                )
                .order_by(Job.finished_at, Job.id)
            ).all()
        spec = parse_explore(sweep.spec, Checker(None, sweep.input_name), 10**9)
        seen = {job.point_hash for job in current if job.point_hash}
        points = len(seen)
        active = sum(job.state in (QUEUED, *ACTIVE_STATES) for job in current)
        info = dict(sweep.info or {})
        dropped: Counter[str] = Counter(info.get("dropped") or {})
        new: list[NewPoint] = []
        proposed = int(info.get("proposed") or 0)
        for job in ended:
            if job.state != SUCCEEDED:
                continue
            raw = (job.recorded or {}).get(PROPOSALS)
            proposed += len(raw) if isinstance(raw, list) else int(raw is not None)
            depth = job.depth or 0
            taken, why = take_proposals(raw, job.parameters, depth, spec, seen, points)
            dropped.update(why)
            for h, point in taken:
                seen.add(h)
                new.append(NewPoint(h, point, depth=depth + 1))
            points += len(taken)
        deepest = max([job.depth or 0 for job in current] + [p.depth or 0 for p in new])
        info.update(
            {
                "proposed": proposed,
                "dropped": dict(sorted(dropped.items())),
                "points": points,
                "max_points": spec.max_points,
                "deepest": deepest,
                "max_depth": spec.max_depth,
            }
        )
        info.pop("run", None)
        if sweep.state != "active":
            # Paused or cancelled: leave the proposals for when it is resumed.
            return 0
        added = self.growth.add(sweep_id, new, [job.id for job in ended], info)
        if not new and not active:
            self._finish(sweep_id)
        return added

    def _finish(self, sweep_id: str) -> None:
        with self.store.session() as session:
            sweep = session.get(Sweep, sweep_id, with_for_update=True)
            if sweep is None or sweep.state != "active":
                return
            busy = session.scalars(
                select(Job.id)
                .where(Job.sweep_id == sweep_id)
                .where(
                    Job.state.in_([QUEUED, *ACTIVE_STATES])
                    | (Job.state.in_(FINISHED_STATES) & Job.followed_up.is_(False))
                )
                .limit(1)
            ).first()
            if busy is None:
                sweep.state = "done"
                log.info("exploration sweep %s is done", sweep_id)
