"""SchedulerLoop: scheduler passes every few seconds, never two at once, and one soon on a kick.

A pass with a long line costs real time (the decision, then everyone's place). Under a stream
of submissions every few of them kick a pass, and back to back those passes would take the
service's time from the people submitting. So after a pass the loop rests until the pass's CPU
time is at most `busy_share` of the time since it began: a pass of 1 ms rests 9 ms (nobody
notices), one of 60 ms over a line of many thousands rests 0.54 s, and the kicks that arrive
meanwhile are served by the one pass that follows.

A pass that started nothing while people wait (the queue is paused, or everyone waits for room)
can only tell newcomers where they stand; until something frees room, passes rest to
`idle_share` instead. Kicks for newcomers (`kick_newcomers`: stored submissions, fired
definitions) leave that rest as it is; every other kick (a run ended, a job was cancelled, the
queue resumed, a sweep's follow-up points, which take the room their ended point freed, ...)
may have freed room and cuts the rest back to `busy_share`'s. Under a storm of submissions
into a full line the passes' bursts, which hold the event loop or share the interpreter with
it, then come several times less often, and the submissions' answers wait for them less; what
waits longer is the newcomer who could start at once while all ahead of it wait for something
else (at most the rest of `idle_share`: 99 times the last pass's CPU time, 0.3 s after a pass
of 3 ms).
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
# The share while the last pass started nothing and left people waiting (see above).
IDLE_SHARE = 0.01


class SchedulerLoop(Periodic):
    """Runs passes every `interval` seconds, never two at once; `kick` runs one soon."""

    def __init__(
        self,
        scheduler: Scheduler,
        interval: float,
        ready_poll: float = 0.25,
        busy_share: float = BUSY_SHARE,
        idle_share: float = IDLE_SHARE,
    ) -> None:
        super().__init__(interval)
        self.scheduler = scheduler
        self.ready_poll = ready_poll
        self.busy_share = busy_share
        self.idle_share = idle_share
        self._again = False
        self._rest_until = 0.0  # loop time before which no pass begins
        # When the rest ends should something free room (busy_share's rest).
        self._rest_if_room = 0.0
        self._woken: asyncio.Future[None] | None = None

    async def tick(self) -> None:
        """One pass, or a note to run another right after the current one."""
        if self._running:
            self._again = True
            return
        self._running = True
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self._rest()  # kicks meanwhile are served by this pass
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
                spent, ended = self.scheduler.pass_cpu, loop.time()
                share = self.idle_share if self.scheduler.no_room else self.busy_share
                self._rest_until = ended + spent * (1 - share) / share
                self._rest_if_room = ended + spent * (1 - self.busy_share) / self.busy_share
                if not self._again:
                    break
        finally:
            self._running = False

    async def _rest(self) -> None:
        """Wait out the rest after the last pass (cut short by `kick`)."""
        loop = asyncio.get_running_loop()
        while (rest := self._rest_until - loop.time()) > 0:
            woken = self._woken = loop.create_future()
            timer = loop.call_later(rest, lambda w=woken: w.done() or w.set_result(None))
            await woken
            timer.cancel()

    def kick(self) -> None:
        """Ask for a pass soon: something may have freed room (a run ended, a job was
        cancelled, the queue resumed, a server came up)."""
        IOLoop.current().add_callback(self._room_freed)

    def kick_newcomers(self) -> None:
        """Ask for a pass soon for new requests (stored submissions, fired definitions):
        within the rest the last pass left."""
        IOLoop.current().add_callback(self.tick)

    async def _room_freed(self) -> None:
        self._rest_until = min(self._rest_until, self._rest_if_room)
        if self._woken is not None and not self._woken.done():
            self._woken.set_result(None)
        await self.tick()
