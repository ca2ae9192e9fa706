"""Moments people want to hear about: a job started, a job ended, a GPU server's turn came.

The places where these happen (the scheduler, the runner's events, the GPU line) each call one
method here and go on: nothing is sent from inside their transactions. A worker on the event
loop reads the row as committed and hands a snapshot to each listener (notifications by e-mail
and webhook, metrics). A moment already handed on is not handed on twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from batch_service.store import Job, Store, Turn

log = logging.getLogger("batchhub.events")

JOB_STARTED, JOB_ENDED, TURN_ADMITTED = "job.started", "job.ended", "turn.admitted"
# Bounds: moments waiting to be handed on, and moments remembered to skip repeats.
MAX_PENDING = 10_000
MAX_REMEMBERED = 10_000


@dataclass(frozen=True)
class Moment:
    """One moment with what the store held about its job or turn once it was committed."""

    kind: str
    owner: str
    subject: dict[str, Any]


Listener = Callable[[Moment], Awaitable[None]]


def job_snapshot(job: Job) -> dict[str, Any]:
    """What listeners may read about a job."""
    return {
        "id": job.id,
        "state": job.state,
        "input_name": job.input_name,
        "profile": job.profile,
        "reason": job.reason,
        "error": f"{job.error_name}: {job.error_value}" if job.error_name else "",
        "submitted_at": job.submitted_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        # A kept kernel counts from the run's end, also while the hub is still handing it over.
        "live": bool(job.live or job.live_pending),
        "live_until": job.live_until,
    }


class Events:
    """Take moments from anywhere on the loop; hand them to listeners from one worker."""

    def __init__(self, store: Store | None = None) -> None:
        self.store = store
        self.listeners: list[Listener] = []
        self._queue: asyncio.Queue[tuple[str, str]] | None = None
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._worker: asyncio.Task | None = None

    # --- the call sites: one line each, never blocking --------------------------------
    def job_started(self, job_id: str) -> None:
        """A queued job's run began."""
        self._put(JOB_STARTED, job_id)

    def job_ended(self, job_id: str) -> None:
        """A job reached succeeded, failed, timed_out or cancelled."""
        self._put(JOB_ENDED, job_id)

    def turn_admitted(self, turn_id: str) -> None:
        """A waiting GPU server's turn came."""
        self._put(TURN_ADMITTED, turn_id)

    def _put(self, kind: str, subject_id: str) -> None:
        if self._queue is None or (kind, subject_id) in self._seen:
            return
        self._seen[(kind, subject_id)] = None
        while len(self._seen) > MAX_REMEMBERED:
            self._seen.popitem(last=False)
        try:
            self._queue.put_nowait((kind, subject_id))
        except asyncio.QueueFull:
            log.warning("too many moments waiting; %s of %s is not told", kind, subject_id)

    # --- the worker -------------------------------------------------------------------
    def start(self) -> None:
        """Begin handing moments on (from the running event loop)."""
        self._queue = asyncio.Queue(MAX_PENDING)
        self._worker = asyncio.ensure_future(self._work())

    async def stop(self) -> None:
        """Stop the worker; moments not yet handed on are dropped."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._queue = None

    async def drain(self) -> None:
        """Wait until every moment taken so far has been handed on (for tests and shutdown)."""
        if self._queue is not None:
            await self._queue.join()

    def _load(self, kind: str, subject_id: str) -> Moment | None:
        assert self.store is not None
        with self.store.session() as session:
            if kind == TURN_ADMITTED:
                turn = session.get(Turn, subject_id)
                if turn is None:
                    return None
                subject = {"id": turn.id, "server": turn.server, "profile": turn.profile}
                return Moment(kind, turn.owner, subject)
            job = session.get(Job, subject_id)
            return None if job is None else Moment(kind, job.owner, job_snapshot(job))

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            kind, subject_id = await self._queue.get()
            try:
                moment = self._load(kind, subject_id)
                for listener in self.listeners if moment else ():
                    try:
                        await listener(moment)
                    except Exception:
                        log.exception("telling about %s of %s failed", kind, subject_id)
            except Exception:
                log.exception("could not read %s of %s", kind, subject_id)
            finally:
                self._queue.task_done()
