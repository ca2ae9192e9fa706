"""API for the runner inside a batch server: its job's spec, progress events, the output.

Only the job's own server may call these: the token must carry
`access:servers!server=<owner>/batch-<job id>` (docs/architecture.md).
"""

from __future__ import annotations

from tornado import web

from batch_service.api.jobs import JOB_ID
from batch_service.handlers import BaseHandler
from batch_service.identity import Identity
from batch_service.store import Job


class RunnerHandler(BaseHandler):
    """Base: the caller must be the job's batch server."""

    allow_all = True  # server tokens lack access to the service; the server scope is checked

    def runner_job(self, job_id: str) -> Job:
        """The job this server runs, or 401/404."""
        model = self.current_user
        if not model:
            raise web.HTTPError(401, "send the batch server's API token")
        return self.jobs.runner_job(Identity.from_model(model), job_id)


class SpecHandler(RunnerHandler):
    """GET what to run."""

    def get(self, job_id: str) -> None:
        """Kind, input name, parameters, kernel, limits and output name."""
        self.write_json(self.jobs.runner_spec(self.runner_job(job_id)))


class EventsHandler(RunnerHandler):
    """POST progress, output lines and the end of the run."""

    def post(self, job_id: str) -> None:
        """Record events idempotently by seq."""
        job = self.runner_job(job_id)
        body = self.body_json()
        events = body.get("events") if isinstance(body, dict) else None
        self.jobs.apply_events(job.id, events)
        if any(isinstance(e, dict) and e.get("type") == "finished" for e in events or []):
            self.settings["batch_kick"]()
        self.set_status(204)
        self.finish()


class OutputHandler(RunnerHandler):
    """PUT the executed notebook."""

    def put(self, job_id: str) -> None:
        """Store it (the latest upload wins)."""
        job = self.runner_job(job_id)
        self.jobs.store_output(job.id, self.request.body)
        self.set_status(204)
        self.finish()


routes = [
    (rf"jobs/{JOB_ID}/runner/spec", SpecHandler),
    (rf"jobs/{JOB_ID}/runner/events", EventsHandler),
    (rf"jobs/{JOB_ID}/runner/output", OutputHandler),
]
