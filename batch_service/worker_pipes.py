"""A few long-lived worker processes that run named functions for the event loop, over pipes.

concurrent.futures' ProcessPoolExecutor hands each call through two threads of the service (a
queue feeder and a result manager) and a shared, locked queue: under a stream of submissions
those threads took about a fifth of the service's busy time, contending with the event loop
for the interpreter lock. Here each worker has a pipe in and a pipe out, read and written by
the event loop itself (add_reader / add_writer). A worker holds a few calls at once (answered
in order), so it starts the next as soon as it answers one, without waiting for the busy
event loop to send it; each call goes to the worker with the fewest bytes in hand, and none
goes behind a big upload's check (over BIG_CALL) while that is under way.

A worker that dies (killed, out of memory) fails only the call it was on, with a message, and
is started again; the calls it held behind that one go to the next free worker. Workers end
with the service: their input pipe closes, and each watches its parent
(parent_watch.end_with) in case it is busy when that happens.

Frames. A call: u64 length of its pickle, u32 count of out-of-band buffers, a u64 length per
buffer, the pickle of (name, args), then the buffers: bytes arguments travel beside the
pickle, not copied into it (uploads are megabytes). An answer: u64 length, then the pickle of
(ok, value): the function's result, or the exception it raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batch_service.errors import BatchError

log = logging.getLogger("batch.workers")

CALL_HEADER = struct.Struct("!QI")
LENGTH = struct.Struct("!Q")
READ_SIZE = 1 << 20
# Calls handed to one worker before it answers the first.
DEPTH = 4
# A worker holding this many bytes of calls takes no more until it answers: nothing small
# waits behind a big upload's check.
BIG_CALL = 1 << 20
PICKLE_PROTOCOL = 5


def encode_call(name: str, args: Sequence[Any]) -> list[bytes | memoryview]:
    """The frame of one call, as the parts to write one after another."""
    buffers: list[pickle.PickleBuffer] = []
    wrapped = [pickle.PickleBuffer(a) if isinstance(a, bytes) else a for a in args]
    meta = pickle.dumps((name, wrapped), protocol=PICKLE_PROTOCOL, buffer_callback=buffers.append)
    views = [b.raw() for b in buffers]
    lengths = b"".join(LENGTH.pack(v.nbytes) for v in views)
    return [CALL_HEADER.pack(len(meta), len(views)) + lengths + meta, *views]


def encode_answer(ok: bool, value: Any) -> bytes:
    """The frame of one answer."""
    try:
        body = pickle.dumps((ok, value), protocol=PICKLE_PROTOCOL)
    except Exception as e:  # noqa: BLE001 (an exception that will not pickle still answers)
        body = pickle.dumps((False, RuntimeError(f"{type(value).__name__}: {value} ({e})")))
    return LENGTH.pack(len(body)) + body


@dataclass(eq=False)
class _Call:
    future: asyncio.Future[Any]
    parts: list[bytes | memoryview]

    @property
    def size(self) -> int:
        return sum(len(part) for part in self.parts)


@dataclass(eq=False)
class _Worker:
    process: subprocess.Popen[bytes]
    to_worker: int  # our end of its input pipe (non-blocking)
    from_worker: int  # our end of its output pipe (non-blocking)
    calls: deque[_Call] = field(default_factory=deque)  # handed over, in the order answered
    unwritten: deque[memoryview] = field(default_factory=deque)
    received: bytearray = field(default_factory=bytearray)
    loop: asyncio.AbstractEventLoop | None = None

    @property
    def bytes_in_hand(self) -> int:
        return sum(call.size for call in self.calls)


class WorkerPool:
    """`workers` processes running `python -m <module> <our pid>` (a loop over frames: see
    batch_service.check_worker), started on first use or by `start`. Calls come from one
    event loop at a time."""

    def __init__(self, module: str, workers: int = 2) -> None:
        self.module = module
        self.size = max(1, workers)
        self._workers: list[_Worker] = []
        self._waiting: deque[_Call] = deque()
        self._closed = False

    # --- processes --------------------------------------------------------------------
    def start(self) -> None:
        """Start the workers now (they import their modules before the first call)."""
        while len(self._workers) < self.size:
            worker = self._spawn()
            self._workers.append(worker)
            with contextlib.suppress(RuntimeError):  # outside a loop: watched from first use
                self._watch(worker, asyncio.get_running_loop())

    def _spawn(self) -> _Worker:
        # The worker imports batch_service from where this process found it.
        package_root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        process = subprocess.Popen(
            [sys.executable, "-m", self.module, str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        assert process.stdin is not None and process.stdout is not None
        to_worker, from_worker = process.stdin.fileno(), process.stdout.fileno()
        os.set_blocking(to_worker, False)
        os.set_blocking(from_worker, False)
        return _Worker(process, to_worker, from_worker)

    def _end(self, worker: _Worker) -> None:
        """Stop watching a worker, close its pipes and end it."""
        self._unwatch(worker)
        for stream in (worker.process.stdin, worker.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        with contextlib.suppress(OSError):
            worker.process.kill()

    def shutdown(self) -> None:
        """End the workers; calls still waiting or under way are cancelled."""
        self._closed = True
        for worker in self._workers:
            self._waiting.extend(worker.calls)
            self._end(worker)
        for call in self._waiting:
            call.future.cancel()
        self._waiting.clear()
        for worker in self._workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(timeout=2)
        self._workers.clear()

    # --- calls ------------------------------------------------------------------------
    async def run(self, name: str, *args: Any) -> Any:
        """Call `name(*args)` in a worker; its result, or the exception it raised."""
        if self._closed:
            raise RuntimeError("the worker pool is shut down")
        self.start()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Call(future, encode_call(name, args)))
        self._dispatch()
        return await future

    def _dispatch(self) -> None:
        """Hand waiting calls to the workers with the fewest bytes in hand."""
        while self._waiting:
            open_workers = [
                w
                for w in self._workers
                if not w.calls or (len(w.calls) < DEPTH and w.bytes_in_hand < BIG_CALL)
            ]
            if not open_workers:
                return
            call = self._waiting.popleft()
            if call.future.done():  # its caller stopped waiting
                continue
            worker = min(open_workers, key=lambda w: w.bytes_in_hand)
            if not worker.calls and worker.process.poll() is not None:  # died while idle
                worker = self._respawn(worker)
            self._hand_over(worker, call)

    def _hand_over(self, worker: _Worker, call: _Call) -> None:
        worker.calls.append(call)
        was_writing = bool(worker.unwritten)
        worker.unwritten.extend(memoryview(part) for part in call.parts)
        self._watch(worker, call.future.get_loop())
        if not was_writing:
            self._on_writable(worker)

    def _watch(self, worker: _Worker, loop: asyncio.AbstractEventLoop) -> None:
        """Read the worker's answers on `loop` from now on, idle or not: a worker that dies
        idle is replaced at once."""
        if worker.loop is not loop:
            self._unwatch(worker)
            worker.loop = loop
            loop.add_reader(worker.from_worker, self._on_readable, worker)

    def _unwatch(self, worker: _Worker) -> None:
        if worker.loop is not None and not worker.loop.is_closed():
            worker.loop.remove_reader(worker.from_worker)
            worker.loop.remove_writer(worker.to_worker)
        worker.loop = None

    def _on_writable(self, worker: _Worker) -> None:
        """Write what is left of the calls' frames; wait for room when the pipe is full."""
        try:
            while worker.unwritten:
                view = worker.unwritten[0]
                written = os.write(worker.to_worker, view)
                if written < view.nbytes:
                    worker.unwritten[0] = view[written:]
                    break
                worker.unwritten.popleft()
        except BlockingIOError:
            pass
        except OSError:
            self._failed(worker)
            return
        assert worker.loop is not None
        if worker.unwritten:
            worker.loop.add_writer(worker.to_worker, self._on_writable, worker)
        else:
            worker.loop.remove_writer(worker.to_worker)

    def _on_readable(self, worker: _Worker) -> None:
        """Take what the worker wrote; settle each call whose whole answer is here."""
        try:
            data = os.read(worker.from_worker, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._failed(worker)
            return
        worker.received += data
        answered = 0
        while len(worker.received) - answered >= LENGTH.size:
            (length,) = LENGTH.unpack_from(worker.received, answered)
            end = answered + LENGTH.size + length
            if len(worker.received) < end or not worker.calls:
                break
            with memoryview(worker.received) as view:
                ok, value = pickle.loads(view[answered + LENGTH.size : end])
            answered = end
            call = worker.calls.popleft()
            if not call.future.done():
                if ok:
                    call.future.set_result(value)
                else:
                    call.future.set_exception(value)
        del worker.received[:answered]
        self._dispatch()

    def _respawn(self, worker: _Worker) -> _Worker:
        """A fresh worker in the place of one that failed."""
        loop = worker.loop
        self._end(worker)
        worker.process.wait()
        fresh = self._spawn()
        self._workers[self._workers.index(worker)] = fresh
        if loop is not None and not loop.is_closed():
            self._watch(fresh, loop)
        return fresh

    def _failed(self, worker: _Worker) -> None:
        """The worker died under its first unanswered call: that call fails with a message,
        the calls behind it (never begun: a worker answers in order) go back to the front
        of the line, and a fresh worker takes the dead one's place."""
        log.warning(
            "a check worker stopped (exit code %s); starting another", worker.process.poll()
        )
        calls = list(worker.calls)
        if self._closed:
            self._end(worker)
        else:
            self._respawn(worker)
        if calls and not calls[0].future.done():
            calls[0].future.set_exception(
                BatchError(
                    "the worker process checking this file stopped before it finished "
                    "(out of memory, or killed); nothing was stored. Try again, or with a "
                    "smaller file.",
                    status=500,
                )
            )
        self._waiting.extendleft(reversed(calls[1:]))
        self._dispatch()
