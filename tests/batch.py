"""Helpers for the batch tests: notebooks to submit, and a user's view of the batch API."""

from __future__ import annotations

import io
import json
import time
import zipfile
from typing import Any

import nbformat
import requests

from tests.hub import HubUser

FINISHED = ("succeeded", "failed", "timed_out", "cancelled")


def notebook(*cells: str, parameters: str | None = None) -> bytes:
    """A python3 notebook: an optional parameters cell, then code cells."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells.extend(nbformat.v4.new_code_cell(source) for source in cells)
    return nbformat.writes(nb).encode()


def zip_bytes(members: dict[str, bytes | str]) -> bytes:
    """A zip archive of the given members."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


class Batch:
    """One user's calls to /services/batch/api/v1/ with their hub token."""

    def __init__(self, user: HubUser) -> None:
        self.user = user
        self.base = f"{user.hub.url}/services/batch/api/v1/"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Any API call."""
        return self.user.api(method, self.base + path, **kwargs)

    def submit(
        self,
        name: str,
        content: bytes,
        profile: str = "cpu",
        parameters: dict[str, Any] | None = None,
        **fields: Any,
    ) -> requests.Response:
        """Upload a file as a job."""
        data = {"profile": profile, **{k: str(v) for k, v in fields.items()}}
        if parameters is not None:
            data["parameters"] = json.dumps(parameters)
        return self.call("POST", "jobs", files={"file": (name, content)}, data=data)

    def job(self, job_id: str) -> dict[str, Any]:
        """The job as the API shows it."""
        r = self.call("GET", f"jobs/{job_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def wait(
        self, job_id: str, states: tuple[str, ...] = FINISHED, timeout: float = 120
    ) -> dict[str, Any]:
        """Poll until the job reaches one of the states."""
        deadline = time.monotonic() + timeout
        job = self.job(job_id)
        while time.monotonic() < deadline:
            job = self.job(job_id)
            # A kept kernel is handed over (live) moments after the run ends.
            if job["state"] in states and not job.get("live_pending"):
                return job
            time.sleep(0.3)
        raise TimeoutError(f"job {job_id} stayed {job['state']}: {job}")

    def wait_kernel_gone(self, job: dict[str, Any], timeout: float = 10) -> None:
        """Until the job's server has no Jupyter session left: its runner shut the kernel down
        (a warm server waits for the next run)."""
        url = f"{self.user.hub.url}/user/{self.user.name}/{job['server_name']}/api/sessions"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.user.api("GET", url)
            if r.status_code == 200 and not r.json():
                return
            time.sleep(0.2)
        raise AssertionError(f"the kernel of job {job['id']} was not shut down")

    def logs(self, job_id: str) -> list[str]:
        """All output lines of a run."""
        r = self.call("GET", f"jobs/{job_id}/logs")
        assert r.status_code == 200, r.text
        return [line["text"] for line in r.json()["lines"]]

    def count(self) -> int:
        """How many jobs this user can see."""
        return self.call("GET", "jobs?limit=1").json()["total"]
