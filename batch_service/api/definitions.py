"""API: job definitions — create (upload), list, get, change (pause, resume), delete, its jobs."""

from __future__ import annotations

from typing import Any

from tornado import web

from batch_service.api.jobs import (
    MAX_OFFSET,
    UploadHandler,
    _parameters_field,
    _time_limit_field,
    optional_number,
    refuse_unknown,
)
from batch_service.clock import now
from batch_service.definitions import DefinitionService, DefinitionSpec
from batch_service.handlers import BaseHandler
from batch_service.jobs import MAX_PAGE
from batch_service.schedules import MAX_PREVIEW, check_schedule, check_timezone, describe, firings

DEFINITION_ID = r"(?P<definition_id>[^/]+)"
DEFINITION_FIELDS = frozenset(
    {
        "name",
        "profile",
        "parameters",
        "time_limit",
        "schedule",
        "timezone",
        "paused",
        "on_overlap",
        "entry_point",
    }
)


class DefinitionMixin:
    """The definition service from the application's settings."""

    settings: dict[str, Any]

    @property
    def definitions(self) -> DefinitionService:
        """Job definitions over the store."""
        return self.settings["batch_definitions"]


def _page(handler: BaseHandler) -> tuple[int, int]:
    query = {name: handler.get_query_argument(name, None) for name in ("limit", "offset")}
    limit = optional_number(query, "limit", 1, MAX_PAGE, 50) or 50
    offset = optional_number(query, "offset", 0, MAX_OFFSET, 0) or 0
    return limit, offset


@web.stream_request_body
class DefinitionsHandler(DefinitionMixin, UploadHandler):
    """GET: the caller's definitions. POST: save a definition (multipart upload)."""

    SUPPORTED_METHODS = ("GET", "POST")

    def get(self) -> None:
        """A page of definitions, newest first."""
        limit, offset = _page(self)
        owner = self.get_query_argument("owner", None) or None
        self.write_json(self.definitions.list_definitions(self.identity, owner, limit, offset))

    async def post(self) -> None:
        """Check the file and every choice as a submission would; store; answer 201."""
        self.on_body_complete()
        fields, files = self.upload_form()
        refuse_unknown(fields, files, DEFINITION_FIELDS)
        upload = await self.checked_input(fields, files)
        spec = DefinitionSpec(
            name=fields.get("name"),
            profile=fields.get("profile") or "",
            parameters=_parameters_field(fields.get("parameters")),
            time_limit=_time_limit_field(fields),
            schedule=fields.get("schedule"),
            timezone=fields.get("timezone") or "UTC",
            paused=fields.get("paused"),
            on_overlap=fields.get("on_overlap"),
        )
        definition = self.definitions.create(self.identity, spec, upload)
        self.set_header("Location", f"{self.request.path.rstrip('/')}/{definition['id']}")
        self.write_json(definition, 201)


class DefinitionHandler(DefinitionMixin, BaseHandler):
    """One definition: GET it, PATCH it (also {"paused": true|false}), DELETE it."""

    def get(self, definition_id: str) -> None:
        """The definition as the API shows it."""
        self.write_json(self.definitions.get(self.identity, definition_id))

    async def patch(self, definition_id: str) -> None:
        """Change its schedule, time zone, profile, parameters, time limit, name or pause it."""
        changes = self.body_json()
        if isinstance(changes, dict) and "time_limit" in changes:
            changes["time_limit"] = _time_limit_field(changes)
        upload = None
        if isinstance(changes, dict) and "parameters" in changes:
            changes["parameters"] = _parameters_field(changes["parameters"])
            # New parameters are checked against the stored input's, as at submission.
            name, content, entry = self.definitions.input_of(self.identity, definition_id)
            upload = await self.settings["batch_checks"].check_upload(
                name,
                content,
                entry,
                self.settings["batch_zip_max_members"],
                self.settings["batch_zip_max_bytes"],
            )
        self.write_json(
            self.definitions.update(self.identity, definition_id, changes, upload=upload)
        )

    def delete(self, definition_id: str) -> None:
        """Delete it; the jobs it fired stay."""
        self.definitions.delete(self.identity, definition_id)
        self.set_status(204)
        self.finish()


class DefinitionActionHandler(DefinitionMixin, BaseHandler):
    """POST pause or resume (a resume fires next at the schedule's next moment from now)."""

    def post(self, definition_id: str, action: str) -> None:
        """Pause or resume."""
        changes = {"paused": action == "pause"}
        self.write_json(self.definitions.update(self.identity, definition_id, changes))


class DefinitionJobsHandler(DefinitionMixin, BaseHandler):
    """GET the jobs a definition fired."""

    def get(self, definition_id: str) -> None:
        """Newest first, as the job list shows them."""
        limit, offset = _page(self)
        self.write_json(self.definitions.jobs_of(self.identity, definition_id, limit, offset))


class SchedulePreviewHandler(BaseHandler):
    """GET a schedule in words and its next firings, checked as saving a definition checks it
    (the Batch page previews what a person types)."""

    def get(self) -> None:
        """?schedule=<cron>&timezone=<IANA name>&count=<1-10>"""
        query = {"count": self.get_query_argument("count", None)}
        count = optional_number(query, "count", 1, MAX_PREVIEW, 5) or 5
        schedule = check_schedule(self.get_query_argument("schedule", None))
        timezone = check_timezone(self.get_query_argument("timezone", None) or "UTC")
        self.write_json(
            {
                "schedule": schedule,
                "timezone": timezone,
                "description": describe(schedule),
                "next": firings(schedule, timezone, now(), count),
            }
        )


routes = [
    (r"schedule-preview", SchedulePreviewHandler),
    (r"definitions", DefinitionsHandler),
    (rf"definitions/{DEFINITION_ID}", DefinitionHandler),
    (rf"definitions/{DEFINITION_ID}/(?P<action>pause|resume)", DefinitionActionHandler),
    (rf"definitions/{DEFINITION_ID}/jobs", DefinitionJobsHandler),
]
