"""JupyterLab's Jobs (jupyter-scheduler) backed by batchhub's queue instead of the lab server.

jupyter-scheduler's "Create Job", Jobs panel and job definitions stay as they are; these three
classes, set by batch_service/lab/etc/jupyter_server_config.json, make them talk
to the batch service's API with the server's own hub token (JUPYTERHUB_API_TOKEN, which the hub's
`server` role lets submit and read its own user's jobs, nothing more):

* `BatchScheduler` (its scheduler_class): jobs and definitions are batchhub's; the Jobs panel
  lists every batchhub job of the user (from the Batch page, the CLI or a definition too);
* `ProfileEnvironments` (its environment manager): batchhub's profiles are the compute types;
* `BatchJobFiles` (its job files manager): "Download" fetches the executed notebook and its
  HTML rendering from the service into the user's folder.

Jobs run in batch servers, so stopping the lab server leaves queued and running jobs alone.
"""

from __future__ import annotations

import io
import json
import os
import uuid
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jupyter_scheduler.environments import EnvironmentManager
from jupyter_scheduler.exceptions import SchedulerError
from jupyter_scheduler.job_files_manager import JobFilesManager
from jupyter_scheduler.models import (
    CountJobsQuery,
    CreateJob,
    CreateJobDefinition,
    CreateJobFromDefinition,
    DescribeJob,
    DescribeJobDefinition,
    ListJobDefinitionsQuery,
    ListJobDefinitionsResponse,
    ListJobsQuery,
    ListJobsResponse,
    RuntimeEnvironment,
    Status,
    UpdateJob,
    UpdateJobDefinition,
)
from jupyter_scheduler.scheduler import BaseScheduler
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from urllib3 import encode_multipart_formdata

from batch_service.lab_tags import time_limit_from_tags, time_limit_tags

ENVIRONMENT = "batchhub"
OUTPUT_FORMATS = {"ipynb": "Notebook", "html": "HTML"}
# Batch states as jupyter-scheduler shows them, and back (for its status filter).
STATUS = {
    "queued": Status.QUEUED,
    "starting": Status.QUEUED,
    "running": Status.IN_PROGRESS,
    "succeeded": Status.COMPLETED,
    "failed": Status.FAILED,
    "timed_out": Status.FAILED,
    "cancelled": Status.STOPPED,
}
STATE_OF = {
    Status.QUEUED: "queued",
    Status.IN_PROGRESS: "running",
    Status.COMPLETED: "succeeded",
    Status.FAILED: "failed",
    Status.STOPPED: "cancelled",
}
# The service refuses bigger uploads anyway; this keeps the lab from reading a huge file.
MAX_INPUT_BYTES = 100 * 2**20
MAX_FOLDER_FILES = 1000


class BatchApi:
    """The batch service's API with this server's hub token."""

    def __init__(self) -> None:
        base = os.environ.get("BATCHHUB_SERVICE_URL", "")
        if not base:
            raise SchedulerError(
                "this server does not know the batch service (BATCHHUB_SERVICE_URL)"
            )
        self.base = base.rstrip("/") + "/api/v1/"
        self.token = os.environ.get("JUPYTERHUB_API_TOKEN", "")

    async def call(
        self, method: str, path: str, body: bytes | None = None, content_type: str = ""
    ) -> Any:
        """One call; the service's message becomes the error the Jobs UI shows."""
        headers = {"Authorization": f"token {self.token}"}
        if content_type:
            headers["Content-Type"] = content_type
        request = HTTPRequest(
            self.base + path,
            method=method,
            headers=headers,
            body=body,
            request_timeout=120,
            allow_nonstandard_methods=True,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as e:
            message = str(e)
            if e.response is not None and e.response.body:
                try:
                    message = json.loads(e.response.body)["message"]
                except (ValueError, KeyError, TypeError):
                    pass
            raise SchedulerError(f"batchhub: {message}") from None
        except OSError as e:
            raise SchedulerError(f"batchhub: the batch service cannot be reached ({e})") from None
        if response.code == 204 or not response.body:
            return None
        if response.headers.get("Content-Type", "").startswith("application/json"):
            return json.loads(response.body)
        return response.body

    async def form(self, method: str, path: str, fields: dict[str, Any]) -> Any:
        """A multipart/form-data call (an upload)."""
        body, content_type = encode_multipart_formdata(fields)
        return await self.call(method, path, body, content_type)


# jupyter-scheduler's routes take ids with a dash; a job's is its batch server's name.
JOB_PREFIX, DEFINITION_PREFIX = "batch-", "definition-"


def _service_id(lab_id: str, prefix: str) -> str:
    """The service's id inside the Jobs UI's id, quoted for a URL path."""
    if not lab_id.startswith(prefix):
        raise SchedulerError(f"no batchhub job or definition {lab_id[:60]!r}")
    return quote(lab_id[len(prefix) :], safe="")


def _parameter_value(text: str) -> Any:
    """The Jobs form sends text: 3 is a number, true a bool, [1, 2] a list; the rest is text."""
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return text


def _parameters(values: dict[str, str] | None) -> str:
    return json.dumps({k: _parameter_value(v) for k, v in (values or {}).items()})


def _millis(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


def describe_job(job: dict[str, Any]) -> DescribeJob:
    """A batchhub job as the Jobs panel shows it (states, place in line, error)."""
    state = job["state"]
    # The Jobs UI shows status_message as an error: only a failure's words go there.
    message = None
    error = job.get("error") or {}
    if state in ("failed", "timed_out"):
        message = f"{error.get('name') or state}: {error.get('value') or job.get('reason') or ''}"
        message = message[:500]
    submitted = job["submitted_at"]
    return DescribeJob(
        job_id=JOB_PREFIX + job["id"],
        name=job["input_name"].rsplit(".", 1)[0],
        input_filename=job["input_name"],
        runtime_environment_name=ENVIRONMENT,
        compute_type=job["profile"],
        parameters={k: json.dumps(v) for k, v in (job.get("parameters") or {}).items()},
        output_formats=list(OUTPUT_FORMATS),
        url=job.get("live_kernel_url") or "",
        create_time=_millis(submitted),
        update_time=_millis(job.get("finished_at") or job.get("started_at") or submitted),
        start_time=_millis(job.get("started_at")),
        end_time=_millis(job.get("finished_at")),
        status=STATUS.get(state, Status.CREATED),
        status_message=message,
        tags=time_limit_tags(job.get("time_limit")),
    )


def describe_definition(d: dict[str, Any]) -> DescribeJobDefinition:
    """A batchhub job definition as jupyter-scheduler shows one."""
    return DescribeJobDefinition(
        job_definition_id=DEFINITION_PREFIX + d["id"],
        name=d["name"],
        input_filename=d["input_name"],
        runtime_environment_name=ENVIRONMENT,
        compute_type=d["profile"],
        parameters={k: json.dumps(v) for k, v in (d.get("parameters") or {}).items()},
        output_formats=list(OUTPUT_FORMATS),
        schedule=d["schedule"],
        timezone=d["timezone"],
        create_time=_millis(d["created_at"]),
        update_time=_millis(d["updated_at"]),
        active=not d["paused"],
        tags=time_limit_tags(d.get("time_limit")),
    )


class ProfileEnvironments(EnvironmentManager):
    """One environment, batchhub's queue; the user's batch profiles are its compute types."""

    async def list_environments(self) -> list[RuntimeEnvironment]:  # type: ignore[override]
        """Read the profiles this user may use from the service."""
        profiles = await BatchApi().call("GET", "profiles")
        names = [p["name"] for p in profiles.get("profiles", profiles)]
        return [
            RuntimeEnvironment(
                name=ENVIRONMENT,
                label="batchhub queue",
                description="Runs in batchhub's fair GPU queue; the compute type is the profile.",
                file_extensions=["ipynb", "py"],
                output_formats=list(OUTPUT_FORMATS),
                metadata={},
                compute_types=names,
                default_compute_type=names[0] if names else None,
                utc_only=False,
            )
        ]

    def manage_environments_command(self) -> str:
        """Profiles are set by the admins in the values file."""
        return ""

    def output_formats_mapping(self) -> dict[str, str]:
        """The formats a download brings."""
        return dict(OUTPUT_FORMATS)


class BatchScheduler(BaseScheduler):
    """jupyter-scheduler's jobs and job definitions, kept by batchhub's batch service."""

    task_runner = None  # definitions fire in the service, not in this server

    @property
    def api(self) -> BatchApi:
        """A client of the service with this server's token."""
        return BatchApi()

    def _input(self, input_uri: str) -> tuple[str, bytes]:
        root = Path(self.root_dir).resolve()
        path = (root / input_uri).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise SchedulerError(f"no file {input_uri!r} in your folder")
        if path.stat().st_size > MAX_INPUT_BYTES:
            raise SchedulerError(f"{input_uri!r} is larger than {MAX_INPUT_BYTES >> 20} MiB")
        return path.name, path.read_bytes()

    @staticmethod
    def _choices(model: Any) -> dict[str, Any]:
        """Profile, parameters and time limit (sent as a tag by the Additional options)."""
        fields: dict[str, Any] = {"parameters": _parameters(model.parameters)}
        if model.compute_type:
            fields["profile"] = model.compute_type
        time_limit = time_limit_from_tags(model.tags)
        if time_limit is not None:
            fields["time_limit"] = str(time_limit)
        return fields

    def _upload(self, model: Any) -> dict[str, Any]:
        """The file part of a submission: the notebook, or with "Run job with input folder" a
        zip of its folder (bounded; hidden files and the downloads folder left out) whose entry
        point is the notebook."""
        name, content = self._input(model.input_uri)
        if not getattr(model, "package_input_folder", False):
            return {"file": (name, content, "application/octet-stream")}
        root = Path(self.root_dir).resolve()
        folder = (root / model.input_uri).resolve().parent
        skip = (root / self.output_directory).resolve()
        buffer = io.BytesIO()
        count = total = 0
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                relative = path.relative_to(folder)
                if any(part.startswith(".") for part in relative.parts):
                    continue
                if path.is_symlink() or not path.is_file() or path.is_relative_to(skip):
                    continue
                count += 1
                total += path.stat().st_size
                if count > MAX_FOLDER_FILES or total > MAX_INPUT_BYTES:
                    raise SchedulerError(
                        f"the notebook's folder holds more than {MAX_FOLDER_FILES} files or "
                        f"{MAX_INPUT_BYTES >> 20} MiB: put big data in a dataset (/data/<name>) "
                        "and run the job without its input folder"
                    )
                archive.write(path, relative.as_posix())
        stem = name.rsplit(".", 1)[0]
        return {
            "file": (f"{stem}.zip", buffer.getvalue(), "application/zip"),
            "entry_point": name,
        }

    # --- jobs -------------------------------------------------------------------------
    async def create_job(self, model: CreateJob) -> str:  # type: ignore[override]
        """Submit the notebook to batchhub's queue with the chosen profile, parameters and
        time limit."""
        fields = {**self._choices(model), **self._upload(model)}
        job = await self.api.form("POST", "jobs", fields)
        return JOB_PREFIX + str(job["id"])

    async def update_job(self, job_id: str, model: UpdateJob) -> None:  # type: ignore[override]
        """Only stopping is a change batchhub makes to a job."""
        if model.status == Status.STOPPED:
            await self.stop_job(job_id)
            return
        raise SchedulerError("a batchhub job's name and profile are fixed once it is queued")

    async def list_jobs(self, query: ListJobsQuery) -> ListJobsResponse:  # type: ignore[override]
        """The user's batchhub jobs, newest first, from every source."""
        limit = max(1, min(int(query.max_items or 50), 500))
        offset = int(query.next_token or 0)
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if query.status is not None and query.status in STATE_OF:
            params["state"] = STATE_OF[query.status]
        if query.job_definition_id:
            path = f"definitions/{_service_id(query.job_definition_id, DEFINITION_PREFIX)}/jobs"
            params.pop("state", None)
        else:
            path = "jobs"
        page = await self.api.call("GET", f"{path}?{urlencode(params)}")
        jobs = [describe_job(j) for j in page["jobs"]]
        for job in jobs:
            # Whether its files are already in the user's folder (no download button then).
            self.add_job_files(model=job)
        if query.name:
            jobs = [j for j in jobs if query.name.lower() in j.name.lower()]
        following = offset + limit
        return ListJobsResponse(
            jobs=jobs,
            total_count=page["total"],
            next_token=str(following) if following < page["total"] else None,
        )

    async def count_jobs(self, query: CountJobsQuery) -> int:  # type: ignore[override]
        """How many of the user's jobs are in a state."""
        state = STATE_OF.get(query.status, "running")
        page = await self.api.call("GET", f"jobs?{urlencode({'state': state, 'limit': 1})}")
        return int(page["total"])

    async def get_job(self, job_id: str, job_files: bool | None = True) -> DescribeJob:  # type: ignore[override]
        """One job; with the files already downloaded into the user's folder."""
        job = describe_job(await self.api.call("GET", f"jobs/{_service_id(job_id, JOB_PREFIX)}"))
        if job_files:
            self.add_job_files(model=job)
        return job

    async def delete_job(self, job_id: str) -> None:  # type: ignore[override]
        """Delete a job (a queued or running one is cancelled first)."""
        path = f"jobs/{_service_id(job_id, JOB_PREFIX)}"
        job = await self.api.call("GET", path)
        if job["state"] in ("queued", "starting", "running"):
            await self.api.call("POST", f"{path}/cancel", b"")
        await self.api.call("DELETE", path)

    async def stop_job(self, job_id: str) -> None:  # type: ignore[override]
        """Cancel a queued or running job."""
        await self.api.call("POST", f"jobs/{_service_id(job_id, JOB_PREFIX)}/cancel", b"")

    # --- job definitions --------------------------------------------------------------
    async def create_job_definition(self, model: CreateJobDefinition) -> str:  # type: ignore[override]
        """A batchhub job definition: it fires in the service, also while nobody is logged in."""
        fields: dict[str, Any] = {
            **self._choices(model),
            **self._upload(model),
            "name": model.name or Path(model.input_uri).stem,
            "schedule": model.schedule or "",
            "timezone": model.timezone or "UTC",
        }
        definition = await self.api.form("POST", "definitions", fields)
        return DEFINITION_PREFIX + str(definition["id"])

    async def update_job_definition(  # type: ignore[override]
        self, job_definition_id: str, model: UpdateJobDefinition
    ) -> None:
        """Change its schedule, time zone, name, profile or parameters; pause or resume it."""
        changes: dict[str, Any] = {}
        for field, key in (("schedule", "schedule"), ("timezone", "timezone"), ("name", "name")):
            value = getattr(model, field)
            if value is not None:
                changes[key] = value
        if model.compute_type is not None:
            changes["profile"] = model.compute_type
        if model.parameters is not None:
            changes["parameters"] = json.loads(_parameters(model.parameters))
        if model.active is not None:
            changes["paused"] = not model.active
        if model.tags is not None:
            changes["time_limit"] = time_limit_from_tags(model.tags)
        path = f"definitions/{_service_id(job_definition_id, DEFINITION_PREFIX)}"
        await self.api.call("PATCH", path, json.dumps(changes).encode(), "application/json")

    async def delete_job_definition(self, job_definition_id: str) -> None:  # type: ignore[override]
        """Delete it; the jobs it fired stay."""
        await self.api.call(
            "DELETE", f"definitions/{_service_id(job_definition_id, DEFINITION_PREFIX)}"
        )

    async def get_job_definition(self, job_definition_id: str) -> DescribeJobDefinition:  # type: ignore[override]
        """One definition."""
        d = await self.api.call(
            "GET", f"definitions/{_service_id(job_definition_id, DEFINITION_PREFIX)}"
        )
        return describe_definition(d)

    async def list_job_definitions(  # type: ignore[override]
        self, query: ListJobDefinitionsQuery
    ) -> ListJobDefinitionsResponse:
        """The user's definitions, newest first."""
        limit = max(1, min(int(query.max_items or 50), 500))
        offset = int(query.next_token or 0)
        page = await self.api.call(
            "GET", f"definitions?{urlencode({'limit': limit, 'offset': offset})}"
        )
        items = [describe_definition(d) for d in page["definitions"]]
        following = offset + limit
        return ListJobDefinitionsResponse(
            job_definitions=items,
            total_count=page["total"],
            next_token=str(following) if following < page["total"] else None,
        )

    async def create_job_from_definition(  # type: ignore[override]
        self, job_definition_id: str, model: CreateJobFromDefinition
    ) -> str:
        """Definitions fire at their schedule in the service."""
        raise SchedulerError(
            "a batchhub job definition runs at its schedule; to run the notebook now, "
            "use Create Job on it"
        )

    def get_staging_paths(self, model: Any) -> dict[str, str]:
        """Nothing is staged here: outputs stay in the service until downloaded."""
        return {}


class BatchJobFiles(JobFilesManager):
    """jupyter-scheduler's job files manager: downloads outputs from the service."""

    scheduler: BatchScheduler

    async def copy_from_staging(self, job_id: str, redownload: bool | None = False) -> None:
        """The executed notebook and its HTML into <output dir>/<name>-<job id>/ of the user."""
        job = await self.scheduler.get_job(job_id, False)
        names = self.scheduler.get_job_filenames(job)
        folder = Path(self.scheduler.get_local_output_path(job))
        sources = {"ipynb": "output", "html": "output.html", "input": "input"}
        service_id = _service_id(job_id, JOB_PREFIX)
        for kind, name in names.items():
            if kind not in sources or not isinstance(name, str):
                continue
            target = folder / Path(name).name
            if not redownload and _exists(target):
                continue
            content = await self.scheduler.api.call("GET", f"jobs/{service_id}/{sources[kind]}")
            _save(target, content if isinstance(content, bytes) else json.dumps(content).encode())


def _exists(path: Path) -> bool:
    return path.exists()


def _save(target: Path, content: bytes) -> None:
    """Write whole or not at all (a half file never shows in the file browser)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
    partial.write_bytes(content)
    partial.replace(target)
