"""How the runner starts kernels, and the spare kernel a warm server keeps ready."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

# Runs work in <server root>/batch/<job id>/ (the service names the same folder).
JOB_FOLDER = "batch"


@dataclass
class Spare:
    """A started kernel no code has run in yet."""

    kernel_id: str
    kernel_name: str


async def kernel_alive(km: Any, kernel_id: str) -> bool:
    """The server's kernel is alive (its manager may answer sync or async)."""
    alive = km.get_kernel(kernel_id).is_alive()
    return bool(await alive if asyncio.iscoroutine(alive) else alive)


def kernel_arguments(kernel_name: str) -> list[str]:
    """The arguments nbclient (so papermill) starts an IPython kernel with.

    Its history database in memory: written to the account's history.sqlite, every cell
    waited for a commit, which made a run's cells about 1.7 times as slow as papermill's.
    """
    if not KernelManager(kernel_name=kernel_name).ipykernel:
        return []
    return [f"--HistoryManager.hist_file={NotebookClient.ipython_hist_file.default_value}"]
