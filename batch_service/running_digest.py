"""A file's sha256 computed while its bytes arrive, on a thread of its own.

hashlib releases the GIL on large updates, so hashing overlaps with receiving instead of costing
a second read of the whole file when the upload completes. One worker thread serves every upload
(in order: it takes chunks first in, first out); each upload has at most MAX_PENDING chunks
queued, after which the receiver waits for the oldest (memory stays bounded).
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor

MAX_PENDING = 16
_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")


class RunningDigest:
    """sha256 of the bytes fed so far, in order."""

    def __init__(self) -> None:
        self.offset = 0
        self._sha = hashlib.sha256()
        self._pending: list[Future[None]] = []

    def feed(self, data: bytes) -> None:
        """Hash the next bytes (in order, on the worker)."""
        self.offset += len(data)
        self._pending = [f for f in self._pending if not f.done()]
        if len(self._pending) >= MAX_PENDING:
            self._pending[0].result()  # back-pressure: wait for the oldest
        self._pending.append(_WORKER.submit(self._sha.update, data))

    def hexdigest(self) -> str:
        """Wait for every queued chunk, then the digest (call off the event loop)."""
        for future in self._pending:
            future.result()
        self._pending = []
        return self._sha.hexdigest()

    def close(self) -> None:
        """Drop what is still queued for this upload."""
        for future in self._pending:
            future.cancel()
        self._pending = []
