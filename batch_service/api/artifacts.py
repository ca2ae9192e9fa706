"""API: a job's artifacts — the list (kept and dropped), one file, all of them as a zip."""

from __future__ import annotations

from batch_service.api.downloads import attachment, send_file
from batch_service.api.jobs import JOB_ID
from batch_service.artifacts import ArtifactService, ZipSink, zip_members
from batch_service.handlers import BaseHandler


class ArtifactBase(BaseHandler):
    """Handlers over the artifact service."""

    @property
    def artifacts(self) -> ArtifactService:
        """The artifact service."""
        return self.settings["batch_artifacts"]


class ArtifactsHandler(ArtifactBase):
    """GET the job's artifacts with sizes, and what was dropped and why."""

    def get(self, job_id: str) -> None:
        """Kept and dropped artifacts, the bytes kept and the profile's cap."""
        self.write_json(self.artifacts.listing(self.identity, job_id))


class ArtifactHandler(ArtifactBase):
    """GET one artifact as a download."""

    async def get(self, job_id: str, path: str) -> None:
        """Stream the file."""
        found = self.artifacts.find(self.identity, job_id, path)
        await send_file(self, found, path.rsplit("/", 1)[-1])


class ArtifactsZipHandler(ArtifactBase):
    """GET every kept artifact as one zip, made while it is sent."""

    async def get(self, job_id: str) -> None:
        """Stream the zip (stored, not compressed: checkpoints and tables rarely shrink)."""
        members = self.artifacts.kept_paths(self.identity, job_id)
        self.set_header("Content-Type", "application/zip")
        self.set_header("Content-Disposition", attachment(f"{job_id}-artifacts.zip"))
        for data in zip_members(members, ZipSink()):
            if data:
                self.write(data)
                await self.flush()
        self.finish()


routes = [
    (rf"jobs/{JOB_ID}/artifacts", ArtifactsHandler),
    (rf"jobs/{JOB_ID}/artifacts\.zip", ArtifactsZipHandler),
    (rf"jobs/{JOB_ID}/artifacts/(?P<path>.+)", ArtifactHandler),
]
