"""`python -m batch_service.check_worker <parent pid>`: one check worker (see worker_pipes).

Reads calls from its input, runs the named check (checks.WORKER_FUNCTIONS, nothing else) and
writes each answer to its output. Standard output is sent to the log stream first, so a stray
print in a library cannot corrupt the frames.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from typing import BinaryIO

from batch_service.parent_watch import end_with
from batch_service.worker_pipes import CALL_HEADER, LENGTH, encode_answer


def read_exactly(source: BinaryIO, size: int) -> bytes | None:
    """`size` bytes, or None at the end of the input (the service is gone)."""
    data = source.read(size)
    return data if len(data) == size else None


def read_call(source: BinaryIO) -> tuple[str, list] | None:
    """The next call's (name, args), or None at the end of the input."""
    header = read_exactly(source, CALL_HEADER.size)
    if header is None:
        return None
    meta_length, count = CALL_HEADER.unpack(header)
    lengths = read_exactly(source, LENGTH.size * count)
    meta = read_exactly(source, meta_length)
    if lengths is None or meta is None:
        return None
    buffers = []
    for (length,) in LENGTH.iter_unpack(lengths):
        buffer = read_exactly(source, length)
        if buffer is None:
            return None
        buffers.append(buffer)
    return pickle.loads(meta, buffers=buffers)


def write_all(fd: int, data: bytes) -> None:
    """All of `data`, however many writes the pipe takes."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def serve(parent: int) -> None:
    """Answer calls until the input ends."""
    from batch_service.checks import WORKER_FUNCTIONS

    # Ctrl-C in a terminal reaches the whole group; the service ends its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    end_with(parent)
    # Private copies of the pipes; fd 1 becomes the log stream, fd 0 nothing.
    source = os.fdopen(os.dup(0), "rb")
    answers = os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    while (call := read_call(source)) is not None:
        name, args = call
        try:
            answer = encode_answer(True, WORKER_FUNCTIONS[name](*args))
        except BaseException as e:  # noqa: BLE001 (the service hears every failure)
            answer = encode_answer(False, e)
        write_all(answers, answer)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
