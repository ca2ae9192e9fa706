"""API: jobs — create (upload), list, get, cancel, release, delete, priority, files, logs."""

from __future__ import annotations

import json
from typing import Any

from tornado import web

from batch_service.api.uploads import StreamedUploadMixin
from batch_service.errors import BatchError
from batch_service.handlers import BaseHandler
from batch_service.identity import Identity
from batch_service.jobs import Submission
from batch_service.params import notebook_parameters
from batch_service.render import notebook_html
from batch_service.run_options import run_options
from batch_service.scripts import script_notebook
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


def _parameters_field(raw: Any) -> Any:
    if raw in (None, ""):
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        raise BatchError("parameters must be a JSON object of name: value") from None


def _args_field(raw: Any) -> Any:
    if raw in (None, "") or isinstance(raw, list):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        raise BatchError('args must be a JSON list of strings, e.g. ["--epochs", "3"]') from None


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
EMPTY_FIELDS = frozenset({"kind", "profile", "time_limit", "priority", "group", "report_mode"})
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
            refuse_unknown(fields, {}, EMPTY_FIELDS, with_file=False)
            profile_name = str(fields.get("profile") or "")
            profile = self.jobs.profiles.get(profile_name)
            kernel = profile.kernel_name if profile else "python3"
            upload = CheckedInput("empty", "notebook.ipynb", empty_notebook(kernel))
            parameters: Any = {}
        else:
            fields, files = self.upload_form()
            refuse_unknown(fields, files, FORM_FIELDS)
            upload = self.checked_input(fields, files)
            parameters = _parameters_field(fields.get("parameters"))
        submission = Submission(
            owner=identity.name,
            input=upload,
            profile=str(fields.get("profile") or ""),
            time_limit=_int_field(fields, "time_limit"),
            parameters=parameters,
            priority=_int_field(fields, "priority", 0) or 0,
            group=fields.get("group") or None,
            report_mode=fields.get("report_mode"),
            args=_args_field(fields.get("args")),
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
        refuse_unknown(fields, files, INSPECT_FIELDS)
        upload = self.checked_input(fields, files)
        parameters = None
        kernel_name = None
        warnings: list[str] = []
        if upload.notebook is not None:
            found = notebook_parameters(upload.notebook)
            parameters = [p.to_dict() for p in found] if found is not None else None
            kernel_name = upload.notebook.metadata.get("kernelspec", {}).get("name")
            if found is None:
                warnings.append(
                    "this notebook has no cell tagged 'parameters': parameters you add go into "
                    "a new cell at the top, as papermill puts them"
                )
        elif upload.kind == "script":
            nb = script_notebook(upload.content.decode("utf-8"))
            found = notebook_parameters(nb)
            parameters = [p.to_dict() for p in found] if found is not None else None
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
                "parameters": parameters,
                "kernel_name": kernel_name,
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


routes = [
    (r"jobs", JobsHandler),
    (r"inspect", InspectHandler),
    (rf"jobs/{JOB_ID}", JobHandler),
    (rf"jobs/{JOB_ID}/(?P<action>cancel|release)", JobActionHandler),
    (rf"jobs/{JOB_ID}/(?P<what>input|output|output\.html)", JobFileHandler),
    (rf"jobs/{JOB_ID}/logs", JobLogsHandler),
]
