"""A warm batch server's runner between runs: ask for the next job, let the ended run's kernel
go once the service does, keep a fresh kernel ready (docs/architecture.md, warm batch servers).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from batch_service.runner.kernels import JOB_FOLDER, Spare, kernel_arguments
from batch_service.runner.service_client import ServiceClient, ServiceRefused

log = logging.getLogger("batchhub.runner")


class WarmRunner:
    """What BatchRun does once its run ended, on a server that may run more."""

    serverapp: Any
    client: ServiceClient
    job_id: str
    kernel_id: str | None
    kernel_name: str
    spare: Spare | None
    _watcher: asyncio.Task[None] | None

    async def next_job(self) -> str | None:
        """Once the run ended: ask the service what this server runs next (warm servers).

        While the run's kernel is kept it stays as it is; once the service lets it go, it is
        shut down here, so a next run never meets it. None: nothing more runs here.
        """
        kernel_gone = False
        while not self.serverapp._stopping:
            body = json.dumps({"kernel": "gone" if kernel_gone else "kept"}).encode()
            try:
                answer = json.loads(await self.client.patient("POST", "runner/next", body))
            except ServiceRefused:
                return None
            if not answer.get("keep_kernel") and not kernel_gone:
                await self.shut_kernel()
                kernel_gone = True
                await self.start_spare()
            next_id = answer.get("job_id")
            if isinstance(next_id, str) and next_id:
                return next_id
        return None

    async def start_spare(self) -> None:
        """A warm server: a fresh kernel of the kind the last run used, ready for the next run
        (a kernel start is most of a warm run's wait). It never runs anyone's code before."""
        if not self.kernel_name or self.spare is not None:
            return
        try:
            kernel_id = await self.serverapp.kernel_manager.start_kernel(
                kernel_name=self.kernel_name,
                path=JOB_FOLDER,
                extra_arguments=kernel_arguments(self.kernel_name),
            )
        except Exception as e:  # the next run starts its own kernel then
            log.warning("batchhub: no spare %s kernel: %s", self.kernel_name, e)
            return
        self.spare = Spare(kernel_id, self.kernel_name)

    async def shut_kernel(self) -> None:
        """End the run's kernel and its Jupyter session (quietly: nothing watches it now)."""
        if self._watcher is not None:
            self._watcher.cancel()
        if self.kernel_id is None:
            return
        sessions = self.serverapp.session_manager
        for model in await sessions.list_sessions():
            if (model.get("kernel") or {}).get("id") == self.kernel_id:
                await sessions.delete_session(model["id"])
        if self.kernel_id in self.serverapp.kernel_manager:
            await self.serverapp.kernel_manager.shutdown_kernel(self.kernel_id, now=True)
        log.info("batchhub: the kernel of job %s was shut down", self.job_id)
