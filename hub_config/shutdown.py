"""Ctrl-C while the hub is still starting stops everything, quickly and quietly.

JupyterHub installs its own SIGINT/SIGTERM handlers only once start-up is over; until then a
Ctrl-C was lost (the hub went on starting) and whatever it had started stayed behind. From the
moment the config is read until JupyterHub takes over, the first signal ends start-up and the
hub's own cleanup stops what was started (services, servers, the proxy), on the hub's own event
loop; a second one leaves at once.

Afterwards JupyterHub's own handlers stop everything, with two guards: the periodic checks
(the services' health among them) stop first, so none runs against a service already stopped,
and a second Ctrl-C while stopping is noted instead of starting a second, overlapping shutdown
that cancels the first midway.
"""

from __future__ import annotations

import asyncio
import atexit
import signal
import sys
from types import FrameType
from typing import Any


def _run(loop: asyncio.AbstractEventLoop, awaitable: object) -> None:
    """Run to completion, even past a stop() that the cancelled start-up left scheduled."""
    future = asyncio.ensure_future(awaitable, loop=loop)  # type: ignore[arg-type]
    for _ in range(5):
        try:
            loop.run_until_complete(future)
            return
        except RuntimeError:
            if future.done():
                return


def _cleanup(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what start-up was doing, then run the hub's cleanup on its own loop."""
    from jupyterhub.app import JupyterHub

    if loop.is_closed() or loop.is_running() or not JupyterHub.initialized():
        return
    app = JupyterHub.instance()

    def quiet(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        # The start-up was cancelled on purpose: its cancellations are not news.
        if not isinstance(context.get("exception"), asyncio.CancelledError):
            loop.default_exception_handler(context)

    loop.set_exception_handler(quiet)
    try:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            _run(loop, asyncio.gather(*pending, return_exceptions=True))
        for service in getattr(app, "_service_map", {}).values():
            process = getattr(getattr(service, "spawner", None), "proc", None)
            if process is not None and process.poll() is None:
                # SIGTERM, not the hub's SIGINT: a Python still starting up would print a
                # KeyboardInterrupt traceback; the hub's cleanup then finds it gone.
                process.terminate()
        proxy = getattr(app, "proxy", None)
        if proxy is not None:
            if getattr(proxy, "proxy_process", None) is None:
                app.cleanup_proxy = False  # not started yet: nothing to stop
            _run(loop, app.cleanup())
    except Exception as e:  # exiting anyway: one line, not a traceback
        print(f"batchhub: cleanup after an interrupted start-up: {e}", file=sys.stderr)
    finally:
        loop.close()


_signalled: list[int] = []


def _exit(signum: int) -> None:
    raise SystemExit(128 + signum)


def _interrupted(signum: int, frame: FrameType | None) -> None:
    if _signalled:  # a second Ctrl-C: leave now
        _exit(signum)
    _signalled.append(signum)
    name = signal.Signals(signum).name
    print(f"batchhub: {name} during start-up: stopping what has started", file=sys.stderr)
    # The signal lands in the main thread, inside the hub's running loop (if one runs yet).
    # Leave from a loop callback, where nothing can swallow the exit (an exception raised in
    # an arbitrary frame of start-up code can be caught and dropped there).
    loop = asyncio._get_running_loop()
    if loop is None:
        _exit(signum)
    atexit.register(_cleanup, loop)
    loop.call_soon_threadsafe(_exit, signum)


def stop_cleanly_during_startup() -> None:
    """Install the start-up handlers (JupyterHub replaces them once it runs)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupted)


def stop_once(app: Any) -> None:
    """Make the hub's shutdown (its signal handlers call it) run once, periodic checks first."""
    original = app.shutdown_cancel_tasks
    stopping: list[bool] = []

    async def shutdown_once(sig: signal.Signals | None = None) -> None:
        if stopping:
            app.log.warning("already stopping; %s noted", getattr(sig, "name", "request"))
            return
        stopping.append(True)
        for callback in getattr(app, "_periodic_callbacks", {}).values():
            callback.stop()
        await original(sig)

    app.shutdown_cancel_tasks = shutdown_once
