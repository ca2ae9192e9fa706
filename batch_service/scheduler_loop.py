"""SchedulerLoop: scheduler passes every few seconds, never two at once, and one soon on a kick."""

from __future__ import annotations

import logging

from tornado.ioloop import IOLoop

from batch_service.periodic import Periodic
from batch_service.scheduler import Scheduler

log = logging.getLogger("batchhub.scheduler")


class SchedulerLoop(Periodic):
    """Runs passes every `interval` seconds, never two at once; `kick` runs one soon."""

    def __init__(self, scheduler: Scheduler, interval: float, ready_poll: float = 0.25) -> None:
        super().__init__(interval)
        self.scheduler = scheduler
        self.ready_poll = ready_poll
        self._again = False

    async def tick(self) -> None:
        """One pass, or a note to run another right after the current one."""
        if self._running:
            self._again = True
            return
        self._running = True
        try:
            while True:
                self._again = False
                try:
                    report = await self.scheduler.run_once()
                    if report.started or report.failed or report.stopped:
                        log.info("pass: %s", report)
                    if report.awaiting_ready:
                        # A kernel is kept but the hub has not seen its server up yet.
                        IOLoop.current().call_later(self.ready_poll, self.kick)
                except Exception:
                    log.exception("scheduler pass failed")
                if not self._again:
                    break
        finally:
            self._running = False

    def kick(self) -> None:
        """Ask for a pass soon (after a submit, cancel or runner event)."""
        IOLoop.current().add_callback(self.tick)
