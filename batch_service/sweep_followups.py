"""Follow-up runs of adaptive sweeps: acting on each run's end, off the event loop.

When the service learns that a run ended (the runner's finished event in runs.py, a failed
start, a cancel: each tells `Events.job_ended`), the run's sweep gets a pass: an optimisation
sweep tells Optuna and asks new trials (sweep_optuna.py), an exploration sweep queues the
points its runs proposed (sweep_explore.py). Passes run in a worker thread (Optuna's sampler
and the store's reads are CPU and I/O work), one at a time, so two passes never act on one
sweep at once. Every few seconds, and right after the service starts, every open adaptive
sweep gets a pass too: an end the service heard while it was dying is acted on after the
restart. A pass that queued runs asks the scheduler for a pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy import select
from tornado.ioloop import PeriodicCallback

from batch_service.events import JOB_ENDED, Moment
from batch_service.jobs import JobService
from batch_service.store import Job, Sweep
from batch_service.sweep_explore import Exploration
from batch_service.sweep_growth import SweepGrowth
from batch_service.sweep_optuna import OptunaTrials
from batch_service.sweep_space import ADAPTIVE_KINDS

log = logging.getLogger("batchhub.sweeps")
# The safety net's period: ends heard by no one (a restart) are acted on within this.
LOOK_EVERY = 5.0
OPEN_STATES = ("active", "paused")


class FollowUps:
    """Passes over adaptive sweeps, one at a time, in a worker thread."""

    def __init__(self, jobs: JobService, kick: Callable[[], None] = lambda: None) -> None:
        self.store = jobs.store
        growth = SweepGrowth(jobs)
        self.optuna = OptunaTrials(self.store, growth)
        self.explore = Exploration(self.store, growth)
        self.kick = kick
        self._pending: set[str] = set()
        self._worker: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self._callback: PeriodicCallback | None = None

    # --- one pass (blocking; in a worker thread) --------------------------------------
    def advance(self, sweep_id: str) -> int:
        """Act on the sweep's ended runs and queue what follows; returns runs queued."""
        with self.store.session() as session:
            kind = session.scalar(select(Sweep.kind).where(Sweep.id == sweep_id))
        if kind == "optuna":
            return self.optuna.advance(sweep_id)
        if kind == "explore":
            return self.explore.advance(sweep_id)
        return 0

    def open_sweeps(self) -> list[str]:
        """Adaptive sweeps that may still grow or have runs to act on."""
        with self.store.session() as session:
            return list(
                session.scalars(
                    select(Sweep.id).where(
                        Sweep.kind.in_(ADAPTIVE_KINDS), Sweep.state.in_(OPEN_STATES)
                    )
                )
            )

    def sweep_of(self, job_id: str) -> str | None:
        """The adaptive sweep a job belongs to (None: none)."""
        with self.store.session() as session:
            return session.scalar(
                select(Sweep.id)
                .join(Job, Job.sweep_id == Sweep.id)
                .where(Job.id == job_id, Sweep.kind.in_(ADAPTIVE_KINDS))
            )

    # --- on the event loop -------------------------------------------------------------
    async def pass_now(self, sweep_id: str) -> int:
        """One pass over the sweep, after any pass under way."""
        async with self._lock:
            added = await asyncio.to_thread(self.advance, sweep_id)
        if added:
            self.kick()
        return added

    def soon(self, sweep_id: str) -> None:
        """A pass over the sweep soon (several asks for one sweep make one pass)."""
        self._pending.add(sweep_id)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.ensure_future(self._work())

    async def on_moment(self, moment: Moment) -> None:
        """Events' listener: a run that ended gets its sweep a pass."""
        if moment.kind != JOB_ENDED:
            return
        sweep_id = await asyncio.to_thread(self.sweep_of, moment.subject["id"])
        if sweep_id is not None:
            self.soon(sweep_id)

    async def look_at_all(self) -> None:
        """A pass over every open adaptive sweep (the safety net)."""
        try:
            for sweep_id in await asyncio.to_thread(self.open_sweeps):
                self.soon(sweep_id)
        except Exception:
            log.exception("could not list the adaptive sweeps; trying again later")

    async def _work(self) -> None:
        while self._pending:
            sweep_id = self._pending.pop()
            try:
                await self.pass_now(sweep_id)
            except Exception:
                # One sweep's trouble must not stop the others; the next look tries again.
                log.exception("the follow-up pass of sweep %s failed", sweep_id)

    def start(self, interval: float = LOOK_EVERY) -> None:
        """Passes now (ends missed while the service was down) and every `interval`."""
        self._callback = PeriodicCallback(self.look_at_all, interval * 1000)
        self._callback.start()
        asyncio.ensure_future(self.look_at_all())

    async def stop(self) -> None:
        """No more passes; the one under way finishes."""
        if self._callback is not None:
            self._callback.stop()
        if self._worker is not None:
            await asyncio.gather(self._worker, return_exceptions=True)
