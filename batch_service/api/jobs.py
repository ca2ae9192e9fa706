"""API: jobs — create (upload), list, get, cancel, release, delete, priority, files, logs."""

from __future__ import annotations

from typing import Any

from tornado import web

from batch_service.api.downloads import send_file
from batch_service.api.uploads import StreamedUploadMixin
from batch_service.bounded import parse_json, whole_number
from batch_service.checks import CheckPool
from batch_service.durations import DurationError, parse_duration
from batch_service.errors import BatchError, NotFound
from batch_service.files import FileStore
from batch_service.handlers import BaseHandler
from batch_service.jobs import MAX_PAGE, Submission
from batch_service.run_options import run_options
from batch_service.uploads import CheckedInput, empty_notebook

JOB_ID = r"(?P<job_id>[^/]+)"
# Offsets and log positions beyond this are no page anyone can reach.
MAX_OFFSET = 10**9
MAX_LOG_POSITION = 2**53
MAX_TIME_LIMIT = 10**9


def optional_number(
    fields: dict[str, Any], name: str, minimum: int, maximum: int, default: int | None = None
) -> int | None:
    """A whole-number field that may be left out (None or an empty string)."""
    value = fields.get(name)
    if value is None or value == "":
        return default
    return whole_number(value, name, minimum, maximum)


def _time_limit_field(fields: dict[str, Any]) -> int | None:
    """Seconds as a number, or text with a unit (90m, 2h, 3600s; plain digits are seconds)."""
    value = fields.get("time_limit")
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = parse_duration(value, plain_unit="s")
        except DurationError as e:
            raise BatchError(f"time_limit: {e}", field="time_limit") from None
    return whole_number(value, "time_limit", 1, MAX_TIME_LIMIT, field="time_limit")


def _parameters_field(raw: Any) -> Any:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str):
        raise BatchError("parameters must be a JSON object of name: value")
    return parse_json(raw, what="parameters")


def _args_field(raw: Any) -> Any:
    if raw in (None, "") or isinstance(raw, list):
        return raw
    if not isinstance(raw, str):
        raise BatchError('args must be a JSON list of strings, e.g. ["--epochs", "3"]')
    try:
        return parse_json(raw, what="args")
    except BatchError as e:
        raise BatchError(
            f'args must be a JSON list of strings, e.g. ["--epochs", "3"] ({e})'
        ) from None


# What a submission may carry; anything else is refused by name rather than dropped unread.
FORM_FIELDS = frozenset(
    {
        "profile",
        "time_limit",
        "parameters",
        "priority",
        "group",
        "entry_point",
        "report_mode",
        "args",
    }
)
EMPTY_FIELDS = frozenset(
    {"kind", "profile", "time_limit", "priority", "group", "report_mode", "parameters"}
)
INSPECT_FIELDS = frozenset({"entry_point", "parameters", "report_mode", "args"})


def refuse_unknown(
    fields: dict[str, Any], files: dict[str, Any], allowed: frozenset[str], with_file: bool = True
) -> None:
    """A field we do not know is a mistake the sender should hear about (a 400 naming it)."""
    unknown = sorted(set(fields) - allowed - {"_xsrf"}) + sorted(set(files) - {"file"})
    if unknown:
        names = ", ".join(repr(name[:64]) for name in unknown[:5])
        known = ", ".join(sorted(allowed | ({"file"} if with_file else set())))
        raise BatchError(f"unknown field {names}; known fields: {known}")


class UploadHandler(StreamedUploadMixin, BaseHandler):
    """Shared start of the streamed handlers: identity first, then the size gate."""

    async def prepare(self) -> None:
        """Refuse unauthenticated or oversized uploads before reading the body."""
        await super().prepare()
        if self.request.method == "POST":
            if not self.identity.can_submit:
                raise BatchError("you may not submit batch jobs", status=403)
            self.start_upload()

    @property
    def checks(self) -> CheckPool:
        """The worker processes that check uploads off the event loop."""
        return self.settings["batch_checks"]

    async def checked_input(
        self, fields: dict[str, str], files: dict[str, Any], stage: bool = False
    ) -> CheckedInput:
        """Check the uploaded file (kind, name, content) in a worker process; with `stage`,
        the worker also writes it in a staged job folder (CheckedInput.staged)."""
        upload = self.uploaded_file(files)
        arguments = (
            upload.filename or "",
            upload.body,
            fields.get("entry_point") or None,
            self.settings["batch_zip_max_members"],
            self.settings["batch_zip_max_bytes"],
        )
        if stage:
            return await self.checks.check_and_stage(*arguments, self.file_store.staging_root)
        return await self.checks.check_upload(*arguments)

    @property
    def file_store(self) -> FileStore:
        """Where inputs are staged and stored."""
        return self.jobs.job_files.files


@web.stream_request_body
class JobsHandler(UploadHandler):
    """GET: a page of jobs. POST: submit a job (multipart upload, or JSON for empty)."""

    SUPPORTED_METHODS = ("GET", "POST")  # so any other method is a 405 before a body streams

    def get(self) -> None:
        """List jobs with paging and filters."""
        query = {name: self.get_query_argument(name, None) for name in ("limit", "offset")}
        page = self.jobs.list_jobs(
            self.identity,
            owner=self.get_query_argument("owner", None) or None,
            state=self.get_query_argument("state", None) or None,
            profile=self.get_query_argument("profile", None) or None,
            limit=optional_number(query, "limit", 1, MAX_PAGE, 50) or 50,
            offset=optional_number(query, "offset", 0, MAX_OFFSET, 0) or 0,
        )
        self.write_json(page)

    async def post(self) -> None:
        """Store the job with its input in one transaction, then answer 201."""
        self.on_body_complete()
        identity = self.identity
        content_type = self.request.headers.get("Content-Type", "")
        if content_type.startswith("application/json"):
            fields = self.upload_json()
            if not isinstance(fields, dict) or fields.get("kind") != "empty":
                raise BatchError('JSON submissions are only for {"kind": "empty"}; upload files')
            refuse_unknown(fields, {}, EMPTY_FIELDS, with_file=False)
            profile_name = str(fields.get("profile") or "")
            profile = self.jobs.profiles.get(profile_name)
            kernel = profile.kernel_name if profile else "python3"
            upload = CheckedInput("empty", "notebook.ipynb", empty_notebook(kernel))
        else:
            fields, files = self.upload_form()
            refuse_unknown(fields, files, FORM_FIELDS)
            upload = await self.checked_input(fields, files, stage=True)
        try:
            submission = Submission(
                owner=identity.name,
                input=upload,
                profile=str(fields.get("profile") or ""),
                time_limit=_time_limit_field(fields),
                parameters=_parameters_field(fields.get("parameters")),
                priority=optional_number(fields, "priority", -1000, 1000, 0) or 0,
                group=fields.get("group") or None,
                report_mode=fields.get("report_mode"),
                args=_args_field(fields.get("args")),
            )
            row = self.jobs.prepare(identity, submission)
        except BaseException:
            # Refused after its input was staged: nothing of it stays. (From here on the group
            # commit places the folder, or removes it with the job when storing fails.)
            if upload.staged is not None:
                self.file_store.discard(upload.staged)
            raise
        # Resolves once the transaction holding the row has committed (and kicks the scheduler
        # once per group): an acknowledged job is a stored job.
        job = await self.settings["batch_group_commit"].store_job(row, submission.input, identity)
        self.set_header("Location", f"{self.request.path.rstrip('/')}/{job['id']}")
        self.write_json(job, 201)


@web.stream_request_body
class InspectHandler(UploadHandler):
    """POST a file: what kind of job it makes and its parameters with types and defaults."""

    SUPPORTED_METHODS = ("POST",)

    async def post(self) -> None:
        """Check the upload as a submission would, store nothing, describe it."""
        self.on_body_complete()
        fields, files = self.upload_form()
        refuse_unknown(fields, files, INSPECT_FIELDS)
        upload = await self.checked_input(fields, files)
        parameters = upload.parameters
        warnings: list[str] = []
        if upload.kind == "notebook" and parameters is None:
            warnings.append(
                "this notebook has no cell tagged 'parameters': parameters you add go into "
                "a new cell at the top, as papermill puts them"
            )
        if fields.get("parameters") or fields.get("args") or fields.get("report_mode"):
            # What a submission with these values would be told (nothing is stored).
            options = run_options(
                upload,
                _parameters_field(fields.get("parameters")),
                fields.get("report_mode"),
                _args_field(fields.get("args")),
            )
            warnings = options.warnings
        self.write_json(
            {
                "kind": upload.kind,
                "name": upload.name,
                "entry_point": upload.entry_point,
                "parameters": [p.to_dict() for p in parameters] if parameters is not None else None,
                "kernel_name": upload.kernel_name,
                "warnings": warnings,
            }
        )


class JobHandler(BaseHandler):
    """One job: GET it, PATCH its priority (admins), DELETE it when finished."""

    def get(self, job_id: str) -> None:
        """The job as the API shows it."""
        self.write_json(self.jobs.get(self.identity, job_id))

    def patch(self, job_id: str) -> None:
        """Change a job's priority."""
        if not self.identity.is_admin:
            # Others' jobs stay unknown (404); one's own: not allowed.
            self.jobs.get(self.identity, job_id)
            raise BatchError("only batch admins may change priorities", status=403)
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

    async def get(self, job_id: str, what: str) -> None:
        """Send the file as a download (HTML inline, sandboxed)."""
        role = "input" if what == "input" else "output"
        stored = self.jobs.file(self.identity, job_id, role)
        if what == "output.html":
            html = await self.settings["batch_checks"].render_html(stored.read())
            self.set_header("Content-Type", "text/html; charset=utf-8")
            # The rendering holds the run's own outputs: keep its scripts away from our origin.
            self.set_header("Content-Security-Policy", "sandbox allow-scripts")
            self.finish(html)
            return
        media = (
            "application/x-ipynb+json"
            if stored.name.endswith(".ipynb")
            else "application/octet-stream"
        )
        await send_file(self, stored.path, stored.name, media)


class JobLogsHandler(BaseHandler):
    """GET a run's output lines after a line id (JSON) or all of them (text)."""

    def get(self, job_id: str) -> None:
        """Lines in order; `after` lets a client follow a run."""
        query = {"after": self.get_query_argument("after", None)}
        after = optional_number(query, "after", 0, MAX_LOG_POSITION, 0) or 0
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
        stored = self.jobs.file(identity, job_id, "output")
        # The executed notebook is the run's: read it in a worker process.
        found = await self.settings["batch_checks"].failing_cell(stored.read(), cell)
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
