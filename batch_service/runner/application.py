"""RunnerApp: the extension's settings and start-up (active only in batch servers)."""

from __future__ import annotations

import asyncio
import os

from jupyter_server.extension.application import ExtensionApp
from traitlets import Float, Unicode, default

from batch_service.runner.execution import BatchRun
from batch_service.runner.handlers import InterruptHandler, StatusHandler
from batch_service.runner.service_client import ServiceClient


class RunnerApp(ExtensionApp):
    """Runs the server's batch job when BATCHHUB_JOB_ID is set."""

    name = "batchhub_runner"
    load_other_extensions = True

    job_id = Unicode(help="The job this server runs (BATCHHUB_JOB_ID); empty: do nothing.").tag(
        config=True
    )
    service_url = Unicode(
        help="The batch service as this server reaches it (BATCHHUB_SERVICE_URL)."
    ).tag(config=True)
    api_token = Unicode(help="The server's own hub token (JUPYTERHUB_API_TOKEN).").tag(config=False)
    runner_key = Unicode(
        help="This start's key for reporting to the service (BATCHHUB_RUNNER_KEY)."
    ).tag(config=False)
    save_interval = Float(
        2.0, help="Seconds between saves of the executed notebook while a run goes on."
    ).tag(config=True)
    event_interval = Float(
        0.25, help="Seconds between batches of progress events sent to the service."
    ).tag(config=True)

    @default("job_id")
    def _default_job_id(self) -> str:
        return os.environ.get("BATCHHUB_JOB_ID", "")

    @default("service_url")
    def _default_service_url(self) -> str:
        return os.environ.get("BATCHHUB_SERVICE_URL", "")

    @default("api_token")
    def _default_token(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    @default("runner_key")
    def _default_runner_key(self) -> str:
        # Kernels inherit the server's environment: they need not carry the key.
        return os.environ.pop("BATCHHUB_RUNNER_KEY", "")

    @property
    def active(self) -> bool:
        """True in a batch server."""
        return bool(self.job_id and self.service_url)

    def initialize_settings(self) -> None:
        """Create the run (not started yet) for the handlers."""
        self.batch_run = None
        if self.active:
            client = ServiceClient(self.service_url, self.job_id, self.api_token, self.runner_key)
            self.batch_run = BatchRun(
                self.serverapp, client, self.job_id, self.save_interval, self.event_interval
            )
        self.settings["batchhub_run"] = self.batch_run

    def initialize_handlers(self) -> None:
        """Status and interrupt, under the server's base URL."""
        if self.active:
            self.handlers.extend(
                [
                    (r"/batchhub/runner/status", StatusHandler),
                    (r"/batchhub/runner/interrupt", InterruptHandler),
                ]
            )

    async def _start_jupyter_server_extension(self, serverapp) -> None:  # type: ignore[no-untyped-def]
        """Start the run once the server's loop runs."""
        if self.batch_run is not None:
            self._task = asyncio.ensure_future(self._run(self.batch_run))

    # Each run, and each wait for the next, is a task that ends: AnyIO stops its worker
    # threads only when the task that first used them is done (see BatchRun.run).
    async def _run(self, run: BatchRun) -> None:
        self.log.info("batchhub: running batch job %s", run.job_id)
        if await run.run():
            self._task = asyncio.ensure_future(self._next(run))

    async def _next(self, ended: BatchRun) -> None:
        """A warm server: the next job the service hands this server, if any."""
        next_id = await ended.next_job()
        if next_id is None:
            return
        client = ServiceClient(self.service_url, next_id, self.api_token, self.runner_key)
        run = BatchRun(
            self.serverapp,
            client,
            next_id,
            self.save_interval,
            self.event_interval,
            spare=ended.spare,
        )
        self.batch_run = self.serverapp.web_app.settings["batchhub_run"] = run
        self._task = asyncio.ensure_future(self._run(run))
