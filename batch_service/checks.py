"""CPU-heavy checks in worker processes, so one big upload never stalls the service.

Parsing and validating a notebook, scanning a zip, compiling a script and rendering HTML take
seconds for big files and hold the interpreter while they run (a thread would still block the
event loop). `CheckPool` runs them in a small pool of separate processes (worker_pipes); each
returns plain data and raises BatchError (which pickles) with the message for the user.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from batch_service.files import stage_job_folder
from batch_service.uploads import CheckedInput, check_upload, read_notebook
from batch_service.worker_pipes import WorkerPool


def _check_upload(
    name: str, content: bytes, entry_point: str | None, max_members: int, max_bytes: int
) -> CheckedInput:
    # The caller keeps the content: send back only what the checks found.
    return replace(check_upload(name, content, entry_point, max_members, max_bytes), content=b"")


def _check_and_stage(
    name: str,
    content: bytes,
    entry_point: str | None,
    max_members: int,
    max_bytes: int,
    staging: str,
) -> CheckedInput:
    found = check_upload(name, content, entry_point, max_members, max_bytes)
    staged = stage_job_folder(Path(staging), "input", found.name, content)
    return replace(found, content=b"", staged=staged)


def _check_notebook(content: bytes, name: str) -> None:
    read_notebook(content, name)


def _failing_cell(content: bytes, cell: int) -> dict | None:
    from batch_service.failure import failing_cell

    return failing_cell(content, cell)


def _recorded_values(content: bytes, names: list[str]) -> dict:
    from batch_service.recorded import recorded_values

    return recorded_values(content, names)


def _render_html(content: bytes) -> str:
    from batch_service.render import notebook_html

    return notebook_html(content)


# What a worker may be asked to run, by name (check_worker looks nothing else up).
WORKER_FUNCTIONS: dict[str, Callable[..., Any]] = {
    function.__name__: function
    for function in (
        _check_upload,
        _check_and_stage,
        _check_notebook,
        _failing_cell,
        _recorded_values,
        _render_html,
    )
}


class CheckPool:
    """A few worker processes for the checks above (started once, reused)."""

    def __init__(self, workers: int = 2) -> None:
        self._pool = WorkerPool("batch_service.check_worker", workers)

    async def _run(self, function: Callable[..., Any], *args: Any) -> Any:
        return await self._pool.run(function.__name__, *args)

    async def check_upload(
        self, name: str, content: bytes, entry_point: str | None, max_members: int, max_bytes: int
    ) -> CheckedInput:
        """check_upload in a worker; the content stays here."""
        found = await self._run(_check_upload, name, content, entry_point, max_members, max_bytes)
        return replace(found, content=content)

    async def check_and_stage(
        self,
        name: str,
        content: bytes,
        entry_point: str | None,
        max_members: int,
        max_bytes: int,
        staging: Path,
    ) -> CheckedInput:
        """check_upload, then the input written in a new job folder under `staging` (fsynced),
        both in a worker: the caller places the folder (FileStore.place_job_folder) or
        discards it."""
        found = await self._run(
            _check_and_stage, name, content, entry_point, max_members, max_bytes, str(staging)
        )
        return replace(found, content=content)

    async def check_notebook(self, content: bytes, name: str) -> None:
        """Refuse what is not a valid notebook (BatchError)."""
        await self._run(_check_notebook, content, name)

    async def failing_cell(self, content: bytes, cell: int) -> dict | None:
        """Where a failed run stopped, read from its executed notebook."""
        return await self._run(_failing_cell, content, cell)

    async def recorded_values(self, content: bytes, names: list[str]) -> dict:
        """Values an executed notebook recorded (scrapbook's glue, named outputs)."""
        return await self._run(_recorded_values, content, names)

    async def render_html(self, content: bytes) -> str:
        """An executed notebook as HTML."""
        return await self._run(_render_html, content)

    def warm_up(self) -> None:
        """Start the workers now, so the first upload does not wait for them."""
        self._pool.start()

    def shutdown(self) -> None:
        """Stop the workers."""
        self._pool.shutdown()
