"""API for the runner: the files a run wrote (artifacts), streamed one at a time.

Same caller rule as batch_service/api/runner.py (the job's own batch server, `runner_job`). The
path is checked, the size is the bytes that arrive (bounded by Content-Length), and the cap is
the service's: a refused file gets 413 with the reason, recorded for the job page.
"""

from __future__ import annotations

from tornado import web

from batch_service.api.jobs import JOB_ID
from batch_service.api.runner import RunnerHandler
from batch_service.artifacts import ArtifactService, Receiving


@web.stream_request_body
class ArtifactUploadHandler(RunnerHandler):
    """PUT one artifact: `jobs/<id>/runner/artifacts/<path>`."""

    receiving: Receiving | None = None

    @property
    def artifacts(self) -> ArtifactService:
        """The artifact service."""
        return self.settings["batch_artifacts"]

    async def prepare(self) -> None:
        """Who is sending, which job, whether the file fits; before any byte is read."""
        await super().prepare()
        if self.request.method != "PUT":
            return
        job = await self.runner_job(self.path_kwargs["job_id"])
        declared = self.request.headers.get("Content-Length")
        size = int(declared) if declared and declared.isdigit() else None
        self.receiving = self.artifacts.begin(job, self.path_kwargs["path"], size)
        self.request.connection.set_max_body_size((size or 0) + 1)

    def data_received(self, chunk: bytes) -> None:
        """Write each piece to the staging file."""
        if self.receiving is not None:
            self.artifacts.chunk(self.receiving, chunk)

    def put(self, job_id: str, path: str) -> None:
        """All bytes arrived: keep the file."""
        assert self.receiving is not None
        receiving, self.receiving = self.receiving, None
        self.write_json(self.artifacts.finish(receiving), 201)

    def on_finish(self) -> None:
        """A refusal or error midway: drop the partial file."""
        if self.receiving is not None:
            self.artifacts.abort(self.receiving)
            self.receiving = None

    def on_connection_close(self) -> None:
        """The server went away midway: drop the partial file."""
        self.on_finish()


routes = [
    (rf"jobs/{JOB_ID}/runner/artifacts/(?P<path>.+)", ArtifactUploadHandler),
]
