"""A file being received goes to disk while more of it arrives.

A PATCH is acknowledged only once its bytes are on disk (fsync). Left to the kernel, a big
PATCH's pages stay dirty until that fsync, which then waits for all of them while the client
waits for its answer; synced every `every` bytes on a thread of its own, the disk works while
the network does and the final fsync finds little left.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

WRITEBACK_EVERY = 32 * 2**20
_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="writeback")


def _sync_and_close(fd: int) -> None:
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


class EarlyWriteback:
    """Syncs of one file in the background, one at a time, as its bytes are written."""

    def __init__(self, offset: int = 0, every: int = WRITEBACK_EVERY) -> None:
        self.every = every
        self._synced_to = offset
        self._pending: Future[None] | None = None

    def wrote(self, file: BinaryIO, offset: int) -> None:
        """`file` now holds `offset` bytes: start a sync if enough came since the last one
        and it is done (a slow disk gets one sync at a time, not a queue of them)."""
        if offset - self._synced_to < self.every:
            return
        if self._pending is not None and not self._pending.done():
            return
        file.flush()
        # Its own descriptor: the file may be closed before the sync ends.
        self._pending = _WORKER.submit(_sync_and_close, os.dup(file.fileno()))
        self._synced_to = offset
