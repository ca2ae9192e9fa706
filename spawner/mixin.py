"""The batch mixin both spawners share: profiles, the spawn form, user_options, batch env.

A spawner that mixes this in validates user_options through `choose_profile` in JupyterHub's
`apply_user_options` step (so a refusal is an HTTP 400 with the reason, before anything
starts) and keeps the result as `server_request`.
"""

from __future__ import annotations

import dataclasses
import html
import time
from typing import Any

from traitlets import Dict, Float, Integer, List, Unicode, default
from traitlets.config import LoggingConfigurable

from .credentials import TicketError, load_or_create_key, runner_key, turn_key, verify_ticket
from .gpu_line import GpuLineClient, Turn, TurnRefused, describe_wait, wait_for_turn
from .profiles import (
    Profile,
    ProfileError,
    ServerRequest,
    choose_profile,
    load_profiles,
    takes_turn,
)


def config_path_first(folder: str, env: dict[str, str], separator: str) -> str:
    """JUPYTER_CONFIG_PATH that reads `folder` before whatever `env` already names there."""
    return separator.join(filter(None, [folder, env.get("JUPYTER_CONFIG_PATH")]))


def describe_profile(profile: Profile) -> str:
    """One line a person reads on the spawn form: GPUs, CPU, memory, time limits."""
    from .limits import human_bytes

    parts = []
    if profile.gpus:
        kind = f" {profile.gpu_type}" if profile.gpu_type else ""
        parts.append(f"{profile.gpus}{kind} GPU{'s' if profile.gpus > 1 else ''}")
    if profile.cpu_limit:
        parts.append(f"{profile.cpu_limit:g} CPU")
    if profile.mem_limit:
        parts.append(f"{human_bytes(profile.mem_limit)} memory")
    return ", ".join(parts) or "no limits"


class BatchSpawnerMixin(LoggingConfigurable):
    """Profiles and batch servers, for LocalBatchSpawner and BatchKubeSpawner."""

    profiles = List(
        Dict(),
        config=True,
        help="""Server profiles (the values file's `profiles` list).

        Each is a dict with name, display_name, description, cpu_limit, mem_limit, gpus,
        gpu_type, groups, max_time_limit, default_time_limit, live_window, kernel_name.
        The first one a user may use is the default.
        """,
    )

    batch_service_url = Unicode(
        "",
        config=True,
        help="""URL at which a batch server reaches the batch service (ends with
        /services/batch/). Passed to the runner as BATCHHUB_SERVICE_URL.""",
    )

    interactive_default_url = Unicode(
        "/lab",
        config=True,
        help="Page an interactive server opens on (batch servers open none).",
    )

    gpu_line_url = Unicode(
        "",
        config=True,
        help="""API URL of the batch service (ending in /services/batch/api/v1/) where
        interactive GPU servers wait their turn in the one GPU line. Empty: a GPU server
        whose GPUs are busy is refused instead of waiting.""",
    )

    turn_poll_interval = Float(
        1.0, config=True, help="Seconds between checks of a waiting server's place in line."
    )

    max_turn_wait = Integer(
        8 * 3600,
        config=True,
        help="Longest an interactive GPU server waits in line before its spawn gives up.",
    )

    signing_key_file = Unicode(
        "",
        config=True,
        help="""File holding the key that only the hub and the batch service share (the hub
        config creates it in the hub's private state folder). Batch servers start only with a
        start ticket the service signed with it; empty: no batch server may start.""",
    )

    batch_service_name = Unicode(
        "batch",
        config=True,
        help="Name of the hub service that alone may start batch (batch-*) servers.",
    )

    server_request: ServerRequest | None = None
    turn: Turn | None = None
    _signing_keys: dict[str, bytes] = {}

    @property
    def signing_key(self) -> bytes | None:
        """The shared signing key, read once per hub process; None when not configured."""
        path = self.signing_key_file
        if not path:
            return None
        if path not in self._signing_keys:
            self._signing_keys[path] = load_or_create_key(path)
        return self._signing_keys[path]

    @property
    def profile_models(self) -> list[Profile]:
        """The configured profiles as Profile objects."""
        return load_profiles(self.profiles)

    def user_group_names(self) -> list[str]:
        """Names of the hub groups the user belongs to."""
        return [group.name for group in getattr(self.user, "groups", [])]

    def usable_profiles(self, batch: bool = False) -> list[Profile]:
        """Profiles this user may pick for an interactive (or batch) server."""
        groups = self.user_group_names()
        return [
            p
            for p in self.profile_models
            if p.allows(groups) and (p.batch if batch else p.interactive)
        ]

    @default("options_form")
    def _options_form_default(self) -> Any:
        return self.render_profile_form

    def render_profile_form(self, spawner: Any = None) -> str:
        """The spawn page's profile picker: one radio button per profile the user may use."""
        rows = []
        for index, profile in enumerate(self.usable_profiles()):
            checked = " checked" if index == 0 else ""
            pid = f"profile-{html.escape(profile.name)}"
            rows.append(
                f'<div class="form-check mb-2">'
                f'<input class="form-check-input" type="radio" name="profile" id="{pid}" '
                f'value="{html.escape(profile.name)}"{checked}>'
                f'<label class="form-check-label" for="{pid}">'
                f"<strong>{html.escape(profile.title)}</strong> "
                f'<span class="text-muted">({html.escape(describe_profile(profile))})</span>'
                f"<br><small>{html.escape(profile.description)}</small></label></div>"
            )
        if not rows:
            return '<p class="text-danger">No profile is open to you; ask an admin.</p>'
        return "<fieldset><legend>Profile</legend>" + "".join(rows) + "</fieldset>"

    def options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, Any]:
        """Turn the spawn form into user_options: just the profile name."""
        names = formdata.get("profile") or []
        return {"profile": names[0]} if names else {}

    @default("apply_user_options")
    def _apply_user_options_default(self) -> Any:
        return type(self).validate_user_options

    def validate_user_options(self, user_options: dict[str, Any]) -> None:
        """Check hostile user_options and apply the chosen profile's limits."""
        try:
            request = choose_profile(
                user_options, self.profile_models, self.user_group_names(), self.name or ""
            )
        except ProfileError as e:
            from tornado import web

            raise web.HTTPError(400, str(e)) from None
        if request.is_batch:
            request = self.check_start_ticket(request, user_options["batch"])
        self.server_request = request
        self.apply_profile(request.profile)
        self.check_capacity(request)
        if self.uses_gpu_line:
            # waiting in line is part of starting: give the spawn the time the line may take
            self.start_timeout = self.start_timeout + self.max_turn_wait
        if request.is_batch:
            self.default_url = ""
        else:
            self.default_url = self.interactive_default_url

    def requested_by_batch_service(self) -> bool:
        """True if the hub call that is starting this server came from the batch service."""
        requester = getattr(getattr(self, "handler", None), "current_user", None)
        return (
            getattr(requester, "kind", None) == "service"
            and getattr(requester, "name", None) == self.batch_service_name
        )

    def check_start_ticket(self, request: ServerRequest, batch: dict[str, Any]) -> ServerRequest:
        """Only the batch service starts batch servers: a signed, fresh ticket from its call."""
        from tornado import web

        key = self.signing_key
        if key is None:
            raise web.HTTPError(400, "batch servers are not enabled on this hub (no signing key)")
        if not self.requested_by_batch_service():
            raise web.HTTPError(
                400,
                f"server {self.name!r}: batch servers are started by the batch service only; "
                "submit a job on the Batch page instead",
            )
        try:
            start_id = verify_ticket(
                key, self.user.name, self.name or "", request.profile.name, batch, time.time()
            )
        except TicketError as e:
            raise web.HTTPError(400, f"server {self.name!r}: {e}") from None
        return dataclasses.replace(request, start_id=start_id)

    def apply_profile(self, profile: Profile) -> None:
        """Set the spawner's own limits from a profile (subclasses add their own)."""
        self.cpu_limit = profile.cpu_limit
        self.mem_limit = profile.mem_limit

    def check_capacity(self, request: ServerRequest) -> None:
        """Refuse a request that cannot fit now (subclasses that hold GPUs override)."""

    @property
    def uses_gpu_line(self) -> bool:
        """True for an interactive GPU server when the GPU line is configured."""
        request = self.server_request
        return bool(
            self.gpu_line_url
            and request
            and not request.is_batch
            and takes_turn(request.profile, self.profile_models)
        )

    async def take_turn(self) -> None:
        """Wait in the GPU line until this interactive GPU server is admitted."""
        if not self.uses_gpu_line:
            return
        from tornado import web

        profile = self.server_request.profile  # type: ignore[union-attr]
        client = self.gpu_line_client()

        def remember(turn: Turn) -> None:
            self.turn = turn
            self.log.info(
                "%s: %s", self._log_name, describe_wait(turn, profile.gpus, profile.gpu_type)
            )

        try:
            self.turn = await wait_for_turn(
                client, self.name or "", profile.name, remember, self.turn_poll_interval
            )
        except TurnRefused as e:
            self.turn = None
            raise web.HTTPError(409, f"profile {profile.name!r}: {e}") from None

    def gpu_line_client(self) -> GpuLineClient:
        """A client of the GPU line that signs its calls for this server."""
        key = self.signing_key
        signature = turn_key(key, self.user.name, self.name or "") if key else ""
        return GpuLineClient(self.gpu_line_url, self.api_token, turn_key=signature)

    async def leave_turn(self) -> None:
        """Say the server stopped (the line ends the turn once the hub no longer runs it)."""
        turn, self.turn = self.turn, None
        if turn is not None and self.gpu_line_url and self.api_token:
            await self.gpu_line_client().leave(turn.id)

    def _in_line(self) -> bool:
        waiting = self.turn is None or self.turn.state == "waiting"
        return self.uses_gpu_line and waiting and getattr(self, "pending", None) == "spawn"

    async def progress(self) -> Any:
        """While in line, the spawn page shows the position; then the parent's events."""
        import asyncio

        last = ""
        while self._in_line():
            if self.turn is not None and self.server_request is not None:
                profile = self.server_request.profile
                message = describe_wait(self.turn, profile.gpus, profile.gpu_type)
                if message != last:
                    last = message
                    yield {"progress": 10, "message": message}
            await asyncio.sleep(0.5)
        async for event in super().progress():  # type: ignore[misc]
            yield event

    def batch_env(self) -> dict[str, str]:
        """Environment of a batch server: who it is and where the service is."""
        request = self.server_request
        if request is None or not request.is_batch:
            # JupyterLab's Create Job and Jobs panel talk to the service (lab_scheduler.py).
            return {"BATCHHUB_SERVICE_URL": self.batch_service_url}
        key = self.signing_key
        assert key is not None and request.start_id  # checked in validate_user_options
        return {
            "BATCHHUB_JOB_ID": request.job_id or "",
            "BATCHHUB_START_ID": request.start_id,
            # Valid for this start only, and only while the hub runs this server.
            "BATCHHUB_RUNNER_KEY": runner_key(
                key, self.user.name, self.name or "", request.start_id
            ),
            "BATCHHUB_SERVICE_URL": self.batch_service_url,
            "BATCHHUB_TIME_LIMIT": str(request.time_limit),
            "BATCHHUB_LIVE_WINDOW": str(request.live_window),
            "BATCHHUB_PROFILE": request.profile.name,
            "BATCHHUB_KERNEL_NAME": request.profile.kernel_name,
        }

    def get_env(self) -> dict[str, str]:
        """The parent's environment plus the batch variables."""
        env = super().get_env()  # type: ignore[misc]
        env.update(self.batch_env())
        return env

    def profile_state(self) -> dict[str, Any]:
        """What get_state saves about the request, so a hub restart can restore it."""
        request = self.server_request
        if request is None:
            return {}
        return {
            "profile": request.profile.name,
            "turn": self.turn.id if self.turn else None,
            "job_id": request.job_id,
            "start_id": request.start_id,
            "time_limit": request.time_limit,
            "live_window": request.live_window,
        }

    def restore_profile_state(self, state: dict[str, Any]) -> None:
        """Rebuild server_request from saved state (profiles may have changed: be lenient)."""
        if state.get("turn"):
            self.turn = Turn(id=state["turn"], state="admitted")
        name = state.get("profile")
        profile = next((p for p in self.profile_models if p.name == name), None)
        if profile is not None:
            self.server_request = ServerRequest(
                profile,
                job_id=state.get("job_id"),
                time_limit=state.get("time_limit"),
                live_window=state.get("live_window"),
                start_id=state.get("start_id"),
            )
