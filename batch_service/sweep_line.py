"""A sweep's points in the line: at most `max_parallel` of them hold resources at once.

Admission offers the policy only as many of a sweep's queued points as the sweep has room for
(its `max_parallel` less its points starting or running; none while it is paused), first come
first (highest priority, then oldest). The policy itself is unchanged: the points offered take
turns as their owner's jobs, so a 1,000-point sweep does not shut out a colleague's single
run. The points held back wait with the reason code `sweep_limit` and words saying why.

The gate is kept between passes like the rest of the line (queued.py): each sweep's queued
points in order, and which of them are offered; a pass reads the sweeps that have queued
points and moves only the points whose offer changed.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from batch_service.store import Sweep

PAUSED_WORDS = "waiting: the sweep is paused; resume it to start its points"

PointKey = tuple[int, float, str]  # (-priority, submitted_at, job id): first offered first


def limit_words(max_parallel: int) -> str:
    """Why a point waits while its sweep runs as many as it may."""
    return f"waiting: the sweep runs at most {max_parallel} at once"


class SweepGate:
    """Queued sweep points, in order per sweep, and which of them the policy is offered."""

    def __init__(self) -> None:
        self._points: dict[str, list[PointKey]] = {}  # sweep -> its queued points, in order
        self._key: dict[str, tuple[str, PointKey]] = {}  # job id -> (sweep, key)
        self.offered: dict[str, set[str]] = {}  # sweep -> ids offered now
        self._words: dict[str, str] = {}  # sweep -> why its other points wait
        self.held = HeldPoints(self)

    def sweep_of(self, job_id: str) -> str | None:
        """The sweep a queued point belongs to (None: not a queued sweep point)."""
        found = self._key.get(job_id)
        return None if found is None else found[0]

    def add(self, job_id: str, sweep_id: str, priority: int, submitted_at: float) -> None:
        """A sweep's point is queued (not offered until the next `gate`)."""
        self.remove(job_id)
        key = (-priority, submitted_at, job_id)
        bisect.insort(self._points.setdefault(sweep_id, []), key)
        self._key[job_id] = (sweep_id, key)

    def remove(self, job_id: str) -> bool:
        """A point left the queue; True if it was offered."""
        found = self._key.pop(job_id, None)
        if found is None:
            return False
        sweep_id, key = found
        points = self._points[sweep_id]
        del points[bisect.bisect_left(points, key)]
        offered = self.offered.get(sweep_id, set())
        was_offered = job_id in offered
        offered.discard(job_id)
        if not points:
            del self._points[sweep_id]
            self.offered.pop(sweep_id, None)
            self._words.pop(sweep_id, None)
        return was_offered

    def gate(
        self, session: Session, active: Mapping[str, int]
    ) -> tuple[Iterable[str], Iterable[str]]:
        """Work out each sweep's room (`active`: sweep -> its points starting or running);
        returns the points to offer now and those offered before that are not any more."""
        if not self._points:
            return (), ()
        sweeps = {
            row.id: row
            for row in session.execute(
                select(Sweep.id, Sweep.max_parallel, Sweep.state).where(
                    Sweep.id.in_(list(self._points))
                )
            )
        }
        newly: list[str] = []
        gone: list[str] = []
        for sweep_id, points in self._points.items():
            sweep = sweeps.get(sweep_id)
            if sweep is None:  # no sweep row (deleted): its points are plain jobs
                room, words = len(points), ""
            elif sweep.state == "paused":
                room, words = 0, PAUSED_WORDS
            else:
                room = max(0, sweep.max_parallel - active.get(sweep_id, 0))
                words = limit_words(sweep.max_parallel)
            self._words[sweep_id] = words
            now_offered = {key[2] for key in points[:room]}
            before = self.offered.get(sweep_id, set())
            newly += now_offered - before
            gone += before - now_offered
            self.offered[sweep_id] = now_offered
        return newly, gone

    def held_ids(self) -> Iterator[str]:
        for sweep_id, points in self._points.items():
            offered = self.offered.get(sweep_id, set())
            yield from (key[2] for key in points if key[2] not in offered)


class HeldPoints(Mapping[str, str]):
    """Job id -> why it waits, for every queued sweep point not offered (read on demand)."""

    def __init__(self, gate: SweepGate) -> None:
        self._gate = gate

    def __getitem__(self, job_id: str) -> str:
        sweep_id = self._gate.sweep_of(job_id)
        if sweep_id is None or job_id in self._gate.offered.get(sweep_id, ()):
            raise KeyError(job_id)
        return self._gate._words.get(sweep_id, "")

    def __iter__(self) -> Iterator[str]:
        return self._gate.held_ids()

    def __len__(self) -> int:
        gate = self._gate
        return sum(len(p) - len(gate.offered.get(s, ())) for s, p in gate._points.items())
