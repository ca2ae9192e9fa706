"""API: jobs — create (upload), list, get, cancel, release, delete, priority, files, logs."""

from __future__ import annotations

import json
from typing import Any

from tornado import web
from tornado.ioloop import IOLoop

from batch_service.api.uploads import StreamedUploadMixin
from batch_service.durations import DurationError, parse_duration
from batch_service.errors import BatchError, NotFound
from batch_service.failure import failing_cell
from batch_service.handlers import BaseHandler
from batch_service.identity import Identity
from batch_service.jobs import Submission
from batch_service.params import notebook_parameters
from batch_service.render import notebook_html
from batch_service.uploads import CheckedInput, check_upload, empty_notebook

JOB_ID = r"(?P<job_id>[^/]+)"


def _int_field(fields: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = fields.get(name)
    if value in (None, ""):
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise BatchError(f"{name} must be a whole number, not {value!r}")


def _time_limit_field(fields: dict[str, Any]) -> int | None:
    """Seconds as a number, or text with a unit (90m, 2h, 3600s; plain digits are seconds)."""
    value = fields.get("time_limit")
    if value in (None, ""):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return parse_duration(value, plain_unit="s")
        except DurationError as e:
            raise BatchError(f"time_limit: {e}") from None
    raise BatchError("time_limit must be seconds, or a duration such as 90m or 2h")


def _parameters_field(raw: Any) -> Any:
    if raw in (None, ""):
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        raise BatchError("parameters must be a JSON object of name: value") from None


class UploadHandler(StreamedUploadMixin, BaseHandler):
    """Shared start of the streamed handlers: identity first, then the size gate."""

    async def prepare(self) -> None:
        """Refuse unauthenticated or oversized uploads before reading the body."""
        await super().prepare()
        if self.request.method == "POST":
            if not self.identity.can_submit:
                raise BatchError("you may not submit batch jobs", status=403)
            self.start_upload()

    def checked_input(self, fields: dict[str, str], files: dict[str, Any]) -> CheckedInput:
        """Check the uploaded file (kind, name, content) with the configured zip limits."""
        upload = self.uploaded_file(files)
        return check_upload(
            upload.filename or "",
            upload.body,
            fields.get("entry_point") or None,
            self.settings["batch_zip_max_members"],
            self.settings["batch_zip_max_bytes"],
        )


@web.stream_request_body
class JobsHandler(UploadHandler):
    """GET: a page of jobs. POST: submit a job (multipart upload, or JSON for empty)."""

    def get(self) -> None:
        """List jobs with paging and filters."""
        identity = self.identity
        page = self.jobs.list_jobs(
            identity,
            owner=self.get_query_argument("owner", None) or None,
            state=self.get_query_argument("state", None) or None,
            profile=self.get_query_argument("profile", None) or None,
            limit=_int_field({"limit": self.get_query_argument("limit", "50")}, "limit") or 50,
            offset=_int_field({"offset": self.get_query_argument("offset", "0")}, "offset") or 0,
        )
        self.write_json(page)

    def post(self) -> None:
        """Store the job with its input in one transaction, then answer 201."""
        identity = self.identity
        content_type = self.request.headers.get("Content-Type", "")
        if content_type.startswith("application/json"):
            fields = self.upload_json()
            if not isinstance(fields, dict) or fields.get("kind") != "empty":
                raise BatchError('JSON submissions are only for {"kind": "empty"}; upload files')
            profile_name = str(fields.get("profile") or "")
            profile = self.jobs.profiles.get(profile_name)
            kernel = profile.kernel_name if profile else "python3"
            upload = CheckedInput("empty", "notebook.ipynb", empty_notebook(kernel))
            parameters: Any = {}
        else:
            fields, files = self.upload_form()
            upload = self.checked_input(fields, files)
            parameters = _parameters_field(fields.get("parameters"))
        submission = Submission(
            owner=identity.name,
            input=upload,
            profile=str(fields.get("profile") or ""),
            time_limit=_time_limit_field(fields),
            parameters=parameters,
            priority=_int_field(fields, "priority", 0) or 0,
            group=fields.get("group") or None,
        )
        job = self.jobs.submit(identity, submission)
        self.set_header("Location", f"{self.request.path.rstrip('/')}/{job['id']}")
        self.write_json(job, 201)
        self.settings["batch_kick"]()


@web.stream_request_body
class InspectHandler(UploadHandler):
    """POST a file: what kind of job it makes and its parameters with types and defaults."""

    def post(self) -> None:
        """Check the upload as a submission would, store nothing, describe it."""
        fields, files = self.upload_form()
        upload = self.checked_input(fields, files)
        parameters = None
        kernel_name = None
        if upload.notebook is not None:
            found = notebook_parameters(upload.notebook)
            parameters = [p.to_dict() for p in found] if found is not None else None
            kernel_name = upload.notebook.metadata.get("kernelspec", {}).get("name")
        self.write_json(
            {
                "kind": upload.kind,
                "name": upload.name,
                "entry_point": upload.entry_point,
                "parameters": parameters,
                "kernel_name": kernel_name,
            }
        )


class JobHandler(BaseHandler):
    """One job: GET it, PATCH its priority (admins), DELETE it when finished."""

    def get(self, job_id: str) -> None:
        """The job as the API shows it."""
        self.write_json(self.jobs.get(self.identity, job_id))

    def patch(self, job_id: str) -> None:
        """Change a job's priority."""
        body = self.body_json()
        if not isinstance(body, dict) or set(body) != {"priority"}:
            raise BatchError('send {"priority": <whole number>}')
        self.write_json(self.jobs.set_priority(self.identity, job_id, body["priority"]))

    async def delete(self, job_id: str) -> None:
        """Delete a finished job, its files and logs."""
        stop = self.jobs.delete(self.identity, job_id)
        if stop is not None:
            await self.app.stop_server_soon(stop)
        self.set_status(204)
        self.finish()


class JobActionHandler(BaseHandler):
    """POST cancel or release."""

    async def post(self, job_id: str, action: str) -> None:
        """Cancel a queued or running job, or release a live kernel."""
        identity = self.identity
        if action == "cancel":
            job, stop = self.jobs.cancel(identity, job_id)
        else:
            job, stop = self.jobs.release(identity, job_id)
        if stop is not None:
            await self.app.stop_server_soon(stop)
        self.write_json(job)


class JobFileHandler(BaseHandler):
    """GET a job's input, executed notebook, or its HTML rendering."""

    allow_all = True  # the runner's server token fetches the input too; checked below

    def get(self, job_id: str, what: str) -> None:
        """Send the file as a download (HTML inline, sandboxed)."""
        model = self.current_user
        if not model:
            raise web.HTTPError(401, "log in to the hub, or send a hub API token")
        identity = Identity.from_model(model)
        role = "input" if what == "input" else "output"
        if what == "input" and self.jobs.is_runner(identity, job_id):
            name, content = self.jobs.stored_file(job_id, "input")
        else:
            if not self.hub_auth.check_scopes(self.hub_scopes, model):
                raise web.HTTPError(403, "your hub account may not use the batch service")
            name, content = self.jobs.file(identity, job_id, role)
        if what == "output.html":
            self.set_header("Content-Type", "text/html; charset=utf-8")
            # The rendering holds the run's own outputs: keep its scripts away from our origin.
            self.set_header("Content-Security-Policy", "sandbox allow-scripts")
            self.finish(notebook_html(content))
            return
        media = (
            "application/x-ipynb+json" if name.endswith(".ipynb") else "application/octet-stream"
        )
        self.set_header("Content-Type", media)
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.finish(content)


class JobLogsHandler(BaseHandler):
    """GET a run's output lines after a line id (JSON) or all of them (text)."""

    def get(self, job_id: str) -> None:
        """Lines in order; `after` lets a client follow a run."""
        after = _int_field({"after": self.get_query_argument("after", "0")}, "after") or 0
        page = self.jobs.logs(self.identity, job_id, after=after)
        if self.get_query_argument("format", "json") == "text":
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish("".join(line["text"] + "\n" for line in page["lines"]))
            return
        self.write_json(page)


class JobFailureHandler(BaseHandler):
    """GET where a failed run stopped: the failing cell's source and its whole traceback."""

    async def get(self, job_id: str) -> None:
        """Read from the executed notebook (parsed off the event loop)."""
        identity = self.identity
        job = self.jobs.get(identity, job_id)
        cell = (job.get("error") or {}).get("cell")
        if not isinstance(cell, int) or not job.get("has_output"):
            raise NotFound(f"job {job_id} has no failing cell recorded")
        _, content = self.jobs.file(identity, job_id, "output")
        found = await IOLoop.current().run_in_executor(None, failing_cell, content, cell)
        if found is None:
            raise NotFound(f"the executed notebook of job {job_id} has no cell {cell}")
        self.write_json({**found, "error": job["error"]})


routes = [
    (r"jobs", JobsHandler),
    (r"inspect", InspectHandler),
    (rf"jobs/{JOB_ID}", JobHandler),
    (rf"jobs/{JOB_ID}/(?P<action>cancel|release)", JobActionHandler),
    (rf"jobs/{JOB_ID}/(?P<what>input|output|output\.html)", JobFileHandler),
    (rf"jobs/{JOB_ID}/logs", JobLogsHandler),
    (rf"jobs/{JOB_ID}/failure", JobFailureHandler),
]
