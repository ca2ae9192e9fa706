"""Work done every so many seconds on the service's loop, the first time right away."""

from __future__ import annotations

from tornado.ioloop import IOLoop, PeriodicCallback


class Periodic:
    """Calls `tick` every `interval` seconds once started (subclasses say what a tick does and
    keep two from overlapping)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._running = False
        self._callback = PeriodicCallback(self.tick, interval * 1000)

    def start(self) -> None:
        """Begin (the first tick right away)."""
        self._callback.start()
        IOLoop.current().add_callback(self.tick)

    def stop(self) -> None:
        """No more ticks."""
        self._callback.stop()

    async def tick(self) -> None:
        """One round of the work."""
        raise NotImplementedError
