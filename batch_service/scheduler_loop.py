"""SchedulerLoop: scheduler passes every few seconds, never two at once, and one soon on a kick.

A pass with a long line costs real time (the decision, then everyone's place). Under a stream
of submissions every few of them kick a pass, and back to back those passes would take the
service's time from the people submitting. So after a pass the loop rests until the pass's CPU
time is at most `busy_share` of the time since it began: a pass of 1 ms rests 9 ms (nobody
notices), one of 60 ms over a line of many thousands rests 0.54 s, and the kicks that arrive
meanwhile are served by the one pass that follows.
"""

from __future__ import annotations

import asyncio
import logging

from tornado.ioloop import IOLoop

from batch_service.periodic import Periodic
from batch_service.scheduler import Scheduler

log = logging.getLogger("batchhub.scheduler")
# At most this share of the service's time goes to passes run back to back.
BUSY_SHARE = 0.1


class SchedulerLoop(Periodic):
    """Runs passes every `interval` seconds, never two at once; `kick` runs one soon."""

    def __init__(
        self,
        scheduler: Scheduler,
        interval: float,
        ready_poll: float = 0.25,
        busy_share: float = BUSY_SHARE,
    ) -> None:
        super().__init__(interval)
        self.scheduler = scheduler
        self.ready_poll = ready_poll
        self.busy_share = busy_share
        self._again = False
        self._rest_until = 0.0  # loop time before which no pass begins

    async def tick(self) -> None:
        """One pass, or a note to run another right after the current one."""
        if self._running:
            self._again = True
            return
        self._running = True
        loop = asyncio.get_running_loop()
        try:
            while True:
                rest = self._rest_until - loop.time()
                if rest > 0:
                    await asyncio.sleep(rest)  # kicks meanwhile are served by this pass
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
                spent = self.scheduler.pass_cpu
                self._rest_until = loop.time() + spent * (1 - self.busy_share) / self.busy_share
                if not self._again:
                    break
        finally:
            self._running = False

    def kick(self) -> None:
        """Ask for a pass soon (after a submit, cancel or runner event)."""
        IOLoop.current().add_callback(self.tick)
