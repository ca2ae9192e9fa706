"""Group commit: submissions that arrive together are stored in one transaction.

Storing a submission means putting its input file in place and committing its job row with the
file's row. Done on the event loop, one by one, the commits of many clients queue behind each
other and hold the loop. Here the handlers hand their checked job rows to
`GroupCommit.store_job`, which wakes a committer thread: it takes everything handed over so far,
renames the job folders the check workers staged with the inputs in them (or writes the inputs,
fsynced together, where none was staged), commits all rows in ONE transaction and only then
answers each submission. While it works, newcomers gather for its next round: no artificial
delay, and under load one commit serves many submissions.

The thread takes work and answers without the event loop's help: a store needs no task to be
started, and the answers are one callback that resolves every future of the group. Under load
each turn of the loop is long (it serves tens of requests' steps), so each hop a submission
makes through it costs its client a turn; this path has two: the group's answers, then each
handler resuming to write its 201.

A submission is acknowledged (its future resolves, then the handler answers 201) only after the
transaction holding its row has committed: an acknowledged job is a stored job. When the
group's transaction fails, each of its submissions is stored on its own, so one bad row costs
only its own submission (which gets its error) and never its neighbours'. A client that hangs
up does not stop a store under way: the thread stores what it took whatever happens to the
waiting handler.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from batch_service.identity import Identity
from batch_service.job_files import JobFiles
from batch_service.store import Job, JobFile, Store
from batch_service.store.bulk import insert_new
from batch_service.uploads import CheckedInput

log = logging.getLogger("batchhub.submit")
# Seconds between scheduler passes asked for by stored submissions (the first at once).
KICK_EVERY = 0.2


class Throttled:
    """Calls `action` at once, then at most once per `every` seconds: calls asked for in the
    meantime are folded into one at the end of that time, so the last is never lost."""

    def __init__(self, action: Callable[[], None], every: float) -> None:
        self.action = action
        self.every = every
        self._last = float("-inf")
        self._later: asyncio.TimerHandle | None = None

    def __call__(self) -> None:
        if self._later is not None:
            return  # already due at the end of this window
        loop = asyncio.get_running_loop()
        wait = self._last + self.every - loop.time()
        if wait <= 0:
            self._fire()
        else:
            self._later = loop.call_later(wait, self._fire)

    def _fire(self) -> None:
        self._later = None
        self._last = asyncio.get_running_loop().time()
        self.action()


@dataclass
class _Pending:
    """One submission waiting for its group's commit."""

    job: Job
    upload: CheckedInput
    reader: Identity
    future: asyncio.Future[dict[str, Any]]
    row: JobFile | None = None
    error: BaseException | None = None
    view: dict[str, Any] = field(default_factory=dict)


class GroupCommit:
    """Stores checked job rows with their inputs, many per transaction, in a committer thread."""

    def __init__(
        self,
        store: Store,
        job_files: JobFiles,
        views: Callable[[Session, list[tuple[Job, Identity]]], list[dict[str, Any]]],
        on_stored: Callable[[], None] = lambda: None,
        kick_every: float = KICK_EVERY,
        max_group: int = 256,
    ) -> None:
        self.store = store
        self.job_files = job_files
        self.views = views
        # The scheduler's pass walks the whole line: asked for once per group, passes would
        # run back to back under load and hold the event loop longer the longer the line.
        self.on_stored = Throttled(on_stored, kick_every)
        self.max_group = max_group
        # Handed over, not yet taken by the thread (appended on the loop, taken in the thread).
        self._waiting: deque[_Pending] = deque()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        # How many transactions stored how many submissions (for tests and metrics).
        self.commits = 0
        self.stored = 0

    async def store_job(self, job: Job, upload: CheckedInput, reader: Identity) -> dict[str, Any]:
        """Store a checked job with its input; return its view once its row is committed."""
        pending = _Pending(job, upload, reader, asyncio.get_running_loop().create_future())
        with self._wake:
            if self._closed:
                raise RuntimeError("the service is stopping: no more submissions are stored")
            self._waiting.append(pending)
            if self._thread is None:
                # One thread: a group's work is the interpreter's (renames, the INSERTs, the
                # views), so a second one would only take turns with it and split the groups.
                self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
                self._thread.start()
            self._wake.notify()
        # Cancelling this wait (the handler gone) cancels only the wait: the thread stores
        # what it took, and skips answering a future nobody waits for.
        return await pending.future

    def close(self, wait: float = 10.0) -> None:
        """Refuse newcomers; the thread stores what was handed over, then ends (waited for up
        to `wait` seconds, so that the store it is on is done before the database closes)."""
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(wait)

    # --- in the committer thread --------------------------------------------------------
    def _run(self) -> None:
        """Take everything handed over so far, store it, answer it; until closed and idle."""
        while True:
            with self._wake:
                while not self._waiting and not self._closed:
                    self._wake.wait()
                if not self._waiting:
                    return
                taken = min(len(self._waiting), self.max_group)
                group = [self._waiting.popleft() for _ in range(taken)]
            try:
                self._store_group(group)
            except BaseException as e:  # noqa: BLE001 (every waiter must hear the outcome)
                for pending in group:
                    if pending.error is None and not pending.view:
                        pending.error = e
            for loop in {pending.future.get_loop() for pending in group}:
                mine = [p for p in group if p.future.get_loop() is loop]
                try:
                    loop.call_soon_threadsafe(self._answer, mine)
                except RuntimeError:
                    log.warning("%d submissions stored after their event loop closed", len(mine))

    def _answer(self, group: list[_Pending]) -> None:
        """On the event loop: resolve every future of the group, then ask for a pass."""
        for pending in group:
            if pending.future.done():
                continue
            if pending.error is not None:
                pending.future.set_exception(pending.error)
            else:
                pending.future.set_result(pending.view)
        if any(p.error is None for p in group):
            self.on_stored()

    def _store_group(self, group: list[_Pending]) -> None:
        """Write the inputs, commit the rows together (or one by one on failure), view them."""
        # The files first (fsynced, in place): a job row is never committed without its input.
        rows = self.job_files.write_group(
            [(p.job.id, "input", p.upload.name, p.upload.content, p.upload.staged) for p in group]
        )
        for pending, row in zip(group, rows, strict=True):
            if isinstance(row, Exception):
                pending.error = row  # this submission's error, not the group's
            else:
                pending.row = row
        ready = [p for p in group if p.error is None]
        if not ready:
            return
        try:
            self._commit(ready)
        except Exception:
            log.warning(
                "a group of %d submissions failed to commit; storing each alone", len(ready)
            )
            for pending in ready:
                try:
                    self._commit([pending])
                except Exception as e:  # noqa: BLE001
                    pending.error = e
                    self.job_files.files.remove_job(pending.job.id)
        stored = [p for p in ready if p.error is None]
        if not stored:
            return
        # Committed: from here on a failure to describe a job must not un-acknowledge it.
        try:
            with self.store.session() as session:
                views = self.views(session, [(p.job, p.reader) for p in stored])
        except Exception:
            log.exception("describing stored jobs failed")
            views = [{"id": p.job.id, "state": p.job.state} for p in stored]
        for pending, view in zip(stored, views, strict=True):
            pending.view = view

    def _commit(self, group: list[_Pending]) -> None:
        with self.store.session() as session:
            # The jobs first: their files refer to them.
            insert_new(session, [pending.job for pending in group])
            insert_new(session, [pending.row for pending in group if pending.row is not None])
        self.commits += 1
        self.stored += len(group)


def new_job_views(jobs: Any) -> Callable[[Session, list[tuple[Job, Identity]]], list[dict]]:
    """How a JobService describes jobs it just stored: as `JobService.view` would, with the
    queue's paused flag read once per group and no look for outputs (a new job has none)."""
    from batch_service.job_view import job_view

    def views(session: Session, stored: list[tuple[Job, Identity]]) -> list[dict]:
        paused = jobs.line.is_paused()
        answers = []
        for job, reader in stored:
            if job.machine_record is not None:
                answers.append(jobs.view(job, session, reader))
                continue
            wait = jobs.wait(job, session, reader, paused)
            answers.append(job_view(job, wait, jobs.hub_base_url, False))
        return answers

    return views
