"""API: profiles, the queue's state and kill switch, and the OpenAPI document."""

from __future__ import annotations

from pathlib import Path

from batch_service.clock import now
from batch_service.errors import BatchError
from batch_service.handlers import BaseHandler

OPENAPI = Path(__file__).resolve().parent.parent / "openapi.yaml"


class ProfilesHandler(BaseHandler):
    """GET the batch profiles the caller may use."""

    def get(self) -> None:
        """Each profile's limits, GPUs and time limits."""
        profiles = self.jobs.profiles_for(self.identity)
        self.write_json({"profiles": [p.to_dict() for p in profiles]})


class QueueHandler(BaseHandler):
    """GET counts by state and whether the queue is paused; PUT {"paused": bool} (admins)."""

    def get(self) -> None:
        """The queue at a glance."""
        self.identity  # noqa: B018 - requires a logged-in user
        self.write_json(
            {
                "paused": self.jobs.paused(self.app.paused),
                "counts": self.jobs.counts(),
                "capacity": self.app.capacity,
                "max_concurrent_jobs": self.app.max_concurrent_jobs,
            }
        )

    def put(self) -> None:
        """Pause or resume: no new job starts while paused; running ones go on."""
        if not self.identity.is_admin:
            raise BatchError("only batch admins may pause or resume the queue", status=403)
        body = self.body_json()
        if not isinstance(body, dict) or set(body) != {"paused"}:
            raise BatchError('send {"paused": true} or {"paused": false}')
        self.jobs.set_paused(self.identity, body["paused"])
        self.settings["batch_kick"]()
        self.get()


class WeightsHandler(BaseHandler):
    """GET the fair-share weights in force; PUT one user's or group's weight (admins)."""

    def get(self) -> None:
        """Weights by user and by group (1 is the default)."""
        self.identity  # noqa: B018 - requires a logged-in user
        self.write_json(self.app.admission.weights())

    def put(self) -> None:
        """Set {"kind": "user"|"group", "name": ..., "weight": > 0}."""
        if not self.identity.is_admin:
            raise BatchError("only batch admins may change weights", status=403)
        body = self.body_json()
        if not isinstance(body, dict) or set(body) != {"kind", "name", "weight"}:
            raise BatchError('send {"kind": "user" or "group", "name": ..., "weight": number}')
        kind, name, weight = body["kind"], body["name"], body["weight"]
        if kind not in ("user", "group"):
            raise BatchError("kind must be 'user' or 'group'")
        if not isinstance(name, str) or not 0 < len(name) <= 255:
            raise BatchError("name must be a user or group name")
        if (
            isinstance(weight, bool)
            or not isinstance(weight, (int, float))
            or not 0 < weight <= 1000
        ):
            raise BatchError("weight must be a number above 0 and at most 1000")
        self.app.admission.set_weight(kind, name, float(weight))
        self.settings["batch_kick"]()
        self.get()


class UsageHandler(BaseHandler):
    """GET decayed GPU usage: your own and your groups' (everyone's for batch readers)."""

    def get(self) -> None:
        """GPU-seconds by user and by group as of now (turns go to who used least)."""
        identity = self.identity
        usage = self.app.admission.usage_now(now())
        users, groups = usage.by_user, usage.by_group
        if not identity.can_read_all:
            users = {identity.name: users.get(identity.name, 0.0)}
            groups = {g: groups[g] for g in identity.groups if g in groups}
        self.write_json(
            {
                "as_of": usage.as_of,
                "half_life_seconds": self.app.admission.policy.half_life_seconds,
                "users": {name: round(value, 3) for name, value in sorted(users.items())},
                "groups": {name: round(value, 3) for name, value in sorted(groups.items())},
            }
        )


class OpenAPIHandler(BaseHandler):
    """The API's OpenAPI document (public, like any API reference)."""

    allow_all = True

    def get(self) -> None:
        """Serve openapi.yaml."""
        self.set_header("Content-Type", "application/yaml; charset=utf-8")
        self.finish(OPENAPI.read_bytes())


class ApiRootHandler(BaseHandler):
    """The API's root: its version and where its document is (public)."""

    allow_all = True

    def get(self) -> None:
        """Version and links."""
        self.write_json({"version": "1", "openapi": self.request.path + "openapi.yaml"})


routes = [
    (r"", ApiRootHandler),
    (r"profiles", ProfilesHandler),
    (r"queue", QueueHandler),
    (r"weights", WeightsHandler),
    (r"usage", UsageHandler),
    (r"openapi\.yaml", OpenAPIHandler),
]
