"""The spawner's side of the one GPU line: an interactive GPU server waits its turn.

The batch service keeps the line (see docs/architecture.md). A `Turn` is one interactive
request in it; `wait_for_turn` asks for one and polls until the service admits it, keeping the
latest status so the spawn page can show the position.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .credentials import TURN_KEY_HEADER


class TurnRefused(RuntimeError):
    """The line will not admit this server; the message is shown to the user."""


@dataclass
class Turn:
    """The status of one request in the line."""

    id: str
    state: str
    position: int | None = None
    reason: str = ""
    reason_code: str = ""  # why it waits, as the batch service's API says (resources, ...)
    estimated_start: float | None = None  # epoch seconds, when it can be worked out

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Turn:
        """Build from the service's answer."""
        start = body.get("estimated_start")
        return cls(
            id=str(body["id"]),
            state=str(body["state"]),
            position=body.get("position"),
            reason=str(body.get("reason") or ""),
            reason_code=str(body.get("reason_code") or ""),
            estimated_start=float(start) if isinstance(start, (int, float)) else None,
        )


class GpuLineClient:
    """Calls the batch service's turns API with a server's own token and the hub's turn key."""

    def __init__(self, api_url: str, token: str, timeout: float = 10, turn_key: str = "") -> None:
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"
        self.token = token
        self.timeout = timeout
        self.turn_key = turn_key

    async def _call(self, method: str, path: str, body: dict | None = None) -> dict | None:
        request = HTTPRequest(
            self.api_url + path,
            method=method,
            body=json.dumps(body) if body is not None else None,
            headers={
                "Authorization": f"token {self.token}",
                "Content-Type": "application/json",
                TURN_KEY_HEADER: self.turn_key,
            },
            request_timeout=self.timeout,
            allow_nonstandard_methods=True,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as e:
            message = ""
            if e.response is not None and e.response.body:
                try:
                    message = json.loads(e.response.body).get("message", "")
                except ValueError:
                    message = ""
            raise TurnRefused(message or f"the GPU line answered {e.code}") from None
        except OSError as e:
            raise TurnRefused(
                f"the batch service that keeps the GPU line is not reachable: {e}"
            ) from None
        return json.loads(response.body) if response.body else None

    async def ask(self, server: str, profile: str) -> Turn:
        """Join the line."""
        body = await self._call("POST", "turns", {"server": server, "profile": profile})
        assert body is not None
        return Turn.from_json(body)

    async def status(self, turn_id: str) -> Turn:
        """Where a turn stands now."""
        body = await self._call("GET", f"turns/{turn_id}")
        assert body is not None
        return Turn.from_json(body)

    async def leave(self, turn_id: str) -> None:
        """Leave the line or give the admitted GPUs back."""
        try:
            await self._call("DELETE", f"turns/{turn_id}")
        except TurnRefused:
            pass  # already gone: reconciliation in the service frees it anyway


async def wait_for_turn(
    client: GpuLineClient,
    server: str,
    profile: str,
    on_status: Callable[[Turn], None],
    poll_interval: float = 1.0,
) -> Turn:
    """Join the line and return once admitted; raise TurnRefused if the service refuses."""
    turn = await client.ask(server, profile)
    on_status(turn)
    try:
        while turn.state == "waiting":
            await asyncio.sleep(poll_interval)
            turn = await client.status(turn.id)
            on_status(turn)
    except BaseException:
        # a cancelled spawn must not keep its place in the line
        await asyncio.shield(client.leave(turn.id))
        raise
    if turn.state != "admitted":
        await client.leave(turn.id)
        raise TurnRefused(turn.reason or f"the GPU line answered {turn.state}")
    return turn


def describe_wait(turn: Turn, gpus: int, gpu_type: str | None) -> str:
    """The sentence the spawn page shows while a server waits for GPUs."""
    kind = f"{gpus} GPU{'s' if gpus > 1 else ''}" + (f" of type {gpu_type}" if gpu_type else "")
    if not gpus:
        kind = "the machine"  # a CPU server waits only while an exclusive run holds it
    if turn.state == "admitted":
        return f"Your turn: {kind} reserved" if gpus else "Your turn: the machine is free"
    if turn.reason_code and turn.reason:
        # The line's own sentence: what, the place in line, and why (what holds the GPUs).
        text = turn.reason[:1].upper() + turn.reason[1:]
        if turn.estimated_start is not None:
            minutes = max(1, round((turn.estimated_start - time.time()) / 60))
            text += f"; expected to start in about {minutes} min"
        return text
    where = f"position {turn.position} in line" if turn.position else "in line"
    return f"Waiting for {kind}: {where}" + (f" ({turn.reason})" if turn.reason else "")
