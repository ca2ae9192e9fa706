"""API: sweeps — create (upload, as a job submission), list, get, results, cancel, pause,
resume, retry."""

from __future__ import annotations

from typing import Any

from tornado import web

from batch_service.api.jobs import (
    MAX_OFFSET,
    UploadHandler,
    _args_field,
    _time_limit_field,
    optional_number,
    refuse_unknown,
)
from batch_service.bounded import parse_json
from batch_service.errors import BatchError
from batch_service.handlers import BaseHandler
from batch_service.jobs import Submission
from batch_service.sweep_results import rows_csv
from batch_service.sweep_space import ADAPTIVE_KINDS
from batch_service.sweeps import MAX_PAGE, SweepRequest, SweepService

SWEEP_ID = r"(?P<sweep_id>[^/]+)"
SWEEP_FIELDS = frozenset(
    {
        "spec",
        "profile",
        "time_limit",
        "group",
        "entry_point",
        "report_mode",
        "args",
        "max_parallel",
        "record",
        "failed_live_window",
        "keep_succeeded",
        "into",
    }
)


def _flag(value: Any, name: str) -> bool:
    if value in (None, ""):
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in (
        "true",
        "1",
        "on",
        "yes",
        "false",
        "0",
        "off",
        "no",
    ):
        return value.lower() in ("true", "1", "on", "yes")
    raise BatchError(f"{name} must be true or false")


def _record_field(raw: Any) -> Any:
    if isinstance(raw, str) and raw.strip().startswith("["):
        return parse_json(raw, what="record")
    return raw


class SweepBase(BaseHandler):
    """Handlers that reach the sweep service."""

    @property
    def sweeps(self) -> SweepService:
        """The service's sweeps."""
        return self.settings["batch_sweeps"]


@web.stream_request_body
class SweepsHandler(UploadHandler, SweepBase):
    """GET: a page of sweeps. POST: a sweep (multipart: the file and its fields)."""

    SUPPORTED_METHODS = ("GET", "POST")

    def get(self) -> None:
        """List sweeps, newest first."""
        query = {name: self.get_query_argument(name, None) for name in ("limit", "offset")}
        self.write_json(
            self.sweeps.list_sweeps(
                self.identity,
                owner=self.get_query_argument("owner", None) or None,
                limit=optional_number(query, "limit", 1, MAX_PAGE, 50) or 50,
                offset=optional_number(query, "offset", 0, MAX_OFFSET, 0) or 0,
            )
        )

    async def post(self) -> None:
        """Check the file and every point, store the sweep with its points, answer 201."""
        self.on_body_complete()
        fields, files = self.upload_form()
        refuse_unknown(fields, files, SWEEP_FIELDS)
        spec_text = fields.get("spec")
        if not spec_text:
            raise BatchError(
                "spec is required, e.g. "
                '{"kind": "grid", "grid": {"lr": "0.1,0.01", "layers": "1:4"}}'
            )
        spec = parse_json(spec_text, what="spec")
        upload = await self.checked_input(fields, files)
        submission = Submission(
            owner=self.identity.name,
            input=upload,
            profile=str(fields.get("profile") or ""),
            time_limit=_time_limit_field(fields),
            parameters={},
            group=fields.get("group") or None,
            report_mode=fields.get("report_mode"),
            args=_args_field(fields.get("args")),
        )
        window = optional_number(fields, "failed_live_window", 0, 10**9)
        request = SweepRequest(
            submission,
            spec,
            max_parallel=optional_number(fields, "max_parallel", 1, 10**9, 1) or 1,
            record=_record_field(fields.get("record")),
            failed_live_window=window,
            keep_succeeded=_flag(fields.get("keep_succeeded"), "keep_succeeded"),
            into=fields.get("into") or None,
        )
        # Points are checked and stored off the event loop: a big grid takes a moment.
        view = await self.run_in_thread(self.sweeps.create, self.identity, request)
        if view["kind"] in ADAPTIVE_KINDS:
            # An optimisation's first trials are asked before the answer, so it shows them.
            asked = await self.settings["batch_followups"].pass_now(view["id"])
            counted = {"added": view["added"] + asked, "skipped": view["skipped"]}
            view = {**self.sweeps.get(self.identity, view["id"]), **counted}
        self.set_header("Location", f"{self.request.path.rstrip('/')}/{view['id']}")
        self.write_json(view, 201)
        self.settings["batch_kick"]()

    async def run_in_thread(self, function: Any, *args: Any) -> Any:
        """Run blocking store work in the default executor."""
        from tornado.ioloop import IOLoop

        return await IOLoop.current().run_in_executor(None, function, *args)


class SweepHandler(SweepBase):
    """GET one sweep with its points counted by state."""

    def get(self, sweep_id: str) -> None:
        """The sweep as the API shows it."""
        self.write_json(self.sweeps.get(self.identity, sweep_id))


class SweepActionHandler(SweepBase):
    """POST cancel, pause, resume or retry."""

    async def post(self, sweep_id: str, action: str) -> None:
        """Act on the sweep's points; running points of a cancelled sweep stop."""
        identity = self.identity
        if action == "cancel":
            view, stops = self.sweeps.cancel(identity, sweep_id)
            for stop in stops:
                await self.app.stop_server_soon(stop)
        elif action in ("pause", "resume"):
            view = self.sweeps.set_paused(identity, sweep_id, action == "pause")
        else:
            view = self.sweeps.retry(identity, sweep_id)
        if view["kind"] in ADAPTIVE_KINDS:
            self.settings["batch_followups"].soon(sweep_id)
        self.write_json(view)
        self.settings["batch_kick"]()


class SweepResultsHandler(SweepBase):
    """GET one row per point: parameters, state, times, error, recorded values, links."""

    def get(self, sweep_id: str) -> None:
        """JSON (default) or a CSV download (`?format=csv`); `?format=json` downloads JSON."""
        fmt = self.get_query_argument("format", "")
        if fmt not in ("", "json", "csv"):
            raise BatchError("format must be json or csv")
        sweep, rows = self.sweeps.results(self.identity, sweep_id, self.settings["batch_prefix"])
        if fmt == "csv":
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header(
                "Content-Disposition", f'attachment; filename="sweep-{sweep["id"]}.csv"'
            )
            self.finish(rows_csv(rows))
            return
        body = {"sweep": sweep, "rows": rows}
        if fmt == "json":
            self.set_header(
                "Content-Disposition", f'attachment; filename="sweep-{sweep["id"]}.json"'
            )
        self.write_json(body)


routes = [
    (r"sweeps", SweepsHandler),
    (rf"sweeps/{SWEEP_ID}", SweepHandler),
    (rf"sweeps/{SWEEP_ID}/(?P<action>cancel|pause|resume|retry)", SweepActionHandler),
    (rf"sweeps/{SWEEP_ID}/results", SweepResultsHandler),
]
