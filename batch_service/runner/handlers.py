"""The runner's endpoints in a batch server: status and interrupt, for the batch service only."""

from __future__ import annotations

import json

from jupyter_server.base.handlers import APIHandler
from tornado import web

SERVICE_NAME = "batch"


class RunnerHandler(APIHandler):
    """Only the hub service `batch` may call these (users open the kernel through JupyterLab)."""

    def check_service(self) -> None:
        """Refuse anyone but the batch service."""
        user = self.current_user
        model = getattr(user, "hub_user", None) or {}
        if model.get("kind") != "service" or model.get("name") != SERVICE_NAME:
            raise web.HTTPError(403, "only the batch service may call the runner")

    @property
    def run(self):  # type: ignore[no-untyped-def]
        """The current batch run."""
        return self.settings["batchhub_run"]


class StatusHandler(RunnerHandler):
    """GET the run's state, kernel and cell."""

    @web.authenticated
    def get(self) -> None:
        """State, kernel id, cell i of N."""
        self.check_service()
        run = self.run
        self.finish(
            json.dumps(
                {
                    "state": run.state,
                    "kernel_id": run.kernel_id,
                    "cell": run.cell_index,
                    "total": run.total,
                    "output_path": run.output_path,
                }
            )
        )


class InterruptHandler(RunnerHandler):
    """POST: interrupt the run's kernel (the kernel stays alive)."""

    @web.authenticated
    async def post(self) -> None:
        """Interrupt now."""
        self.check_service()
        if self.run.kernel_id is None:
            raise web.HTTPError(409, "the run has no kernel yet")
        await self.serverapp.kernel_manager.interrupt_kernel(self.run.kernel_id)
        self.set_status(204)
        self.finish()
