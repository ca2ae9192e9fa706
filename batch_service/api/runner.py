"""API for the runner inside a batch server: its job's spec and input, progress, the output.

A call counts only with the job owner's hub token AND the runner key of the job's current start,
while the job is starting or running and the hub runs its server (batch_service/runs.py).
"""

from __future__ import annotations

from tornado import web

from batch_service.api.downloads import send_file
from batch_service.api.jobs import JOB_ID
from batch_service.handlers import BaseHandler
from batch_service.runs import RunReports
from batch_service.store import Job
from spawner.credentials import RUNNER_KEY_HEADER


class RunnerHandler(BaseHandler):
    """Base: the caller must be the job's batch server, as it runs now."""

    allow_all = True  # server tokens lack access to the service; the runner key is checked

    @property
    def runs(self) -> RunReports:
        """The service's record of what runners report."""
        return self.settings["batch_runs"]

    async def runner_job(self, job_id: str, after_run: bool = False) -> Job:
        """The job this server runs now, or 401/404/409."""
        model = self.current_user
        if not model:
            raise web.HTTPError(401, "send the batch server's API token")
        return await self.runs.runner_job(
            str(model.get("name")), job_id, self.request.headers.get(RUNNER_KEY_HEADER), after_run
        )


class SpecHandler(RunnerHandler):
    """GET what to run."""

    async def get(self, job_id: str) -> None:
        """Kind, input name, parameters, kernel, limits, output name and path."""
        self.write_json(self.runs.spec(await self.runner_job(job_id)))


class InputHandler(RunnerHandler):
    """GET the job's input file."""

    async def get(self, job_id: str) -> None:
        """The bytes the user uploaded."""
        stored = self.runs.input(await self.runner_job(job_id))
        await send_file(self, stored.path, stored.name, "application/octet-stream")


class EventsHandler(RunnerHandler):
    """POST progress, output lines and the end of the run."""

    async def post(self, job_id: str) -> None:
        """Record events idempotently by seq; times are the service's own. After the run, only
        the end of its kept kernel is heard."""
        job = await self.runner_job(job_id, after_run=True)
        body = self.body_json()
        events = body.get("events") if isinstance(body, dict) else None
        if self.runs.apply_events(job.id, events):
            self.settings["batch_kick"]()
        self.set_status(204)
        self.finish()


class NextHandler(RunnerHandler):
    """POST: the run ended; what should this server run next? (a long poll)"""

    async def post(self, job_id: str) -> None:
        """`{"kernel": "gone"}` once the ended run's kernel was shut down (docs/architecture.md,
        warm batch servers)."""
        model = self.current_user
        if not model:
            raise web.HTTPError(401, "send the batch server's API token")
        body = self.body_json()
        gone = isinstance(body, dict) and body.get("kernel") == "gone"
        answer = await self.runs.next_job(
            str(model.get("name")), job_id, self.request.headers.get(RUNNER_KEY_HEADER), gone
        )
        self.write_json(answer)


class OutputHandler(RunnerHandler):
    """PUT the executed notebook."""

    async def put(self, job_id: str) -> None:
        """Check it in a worker process, then store it (the latest upload wins)."""
        job = await self.runner_job(job_id)
        content = self.request.body
        checks = self.settings["batch_checks"]
        await checks.check_notebook(content, "the output")
        self.runs.store_output(job, content)
        if job.sweep_id is not None:
            # A sweep's results table shows what the run glued: read in a worker process.
            values = await checks.recorded_values(content, self.runs.record_names(job))
            self.runs.store_recorded(job.id, values)
        self.set_status(204)
        self.finish()


routes = [
    (rf"jobs/{JOB_ID}/runner/spec", SpecHandler),
    (rf"jobs/{JOB_ID}/runner/input", InputHandler),
    (rf"jobs/{JOB_ID}/runner/events", EventsHandler),
    (rf"jobs/{JOB_ID}/runner/output", OutputHandler),
    (rf"jobs/{JOB_ID}/runner/next", NextHandler),
]
