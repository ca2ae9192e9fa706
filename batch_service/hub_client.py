"""Talking to the hub's REST API with the service's own token: start, stop and look at servers.

Transient failures (connection refused while the hub restarts, 5xx) are retried with backoff;
a 4xx, or a 5xx still there after the retries, is the hub's answer and is returned to the
caller as a HubError with the hub's message.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

log = logging.getLogger("batchhub.hub")


class HubError(Exception):
    """The hub refused a call; `status` and `message` say why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class HubUnreachable(Exception):
    """The hub did not answer after retries."""


class HubClient:
    """Async calls to /hub/api/ on behalf of the batch service."""

    def __init__(
        self, api_url: str, token: str, retries: int = 4, backoff: float = 0.5, timeout: float = 30
    ) -> None:
        self.api_url = api_url.rstrip("/") + "/"
        self.token = token
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One API call with retries on transient failures; returns (status, JSON body)."""
        request = HTTPRequest(
            self.api_url + path,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
            body=json.dumps(body) if body is not None else (b"" if method == "POST" else None),
            request_timeout=self.timeout,
            allow_nonstandard_methods=True,
        )
        delay = self.backoff
        for attempt in range(self.retries + 1):
            answered: HubError | None = None
            try:
                response = await AsyncHTTPClient().fetch(request)
                text = response.body.decode() if response.body else ""
                return response.code, json.loads(text) if text else None
            except HTTPClientError as e:
                if e.code < 500 and e.code != 599:
                    raise HubError(e.code, _message(e)) from None
                reason = f"{e.code} {_message(e)}"
                if e.code != 599:
                    answered = HubError(e.code, _message(e))
            except OSError as e:
                reason = str(e)
            if attempt == self.retries:
                if answered is not None:
                    # The hub answered, every time, that it failed: that is its answer.
                    raise answered
                raise HubUnreachable(f"{method} {path}: {reason}")
            log.warning(
                "hub call %s %s failed (%s); retrying in %.1fs", method, path, reason, delay
            )
            await asyncio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    async def start_server(self, user: str, server: str, user_options: dict[str, Any]) -> int:
        """Ask the hub to start a named server; 201 started, 202 pending."""
        status, _ = await self.call(
            "POST", f"users/{quote(user, safe='')}/servers/{quote(server)}", user_options
        )
        return status

    async def stop_server(self, user: str, server: str) -> None:
        """Stop and forget a named server; already gone is fine."""
        try:
            await self.call(
                "DELETE",
                f"users/{quote(user, safe='')}/servers/{quote(server)}",
                {"remove": True},
            )
        except HubError as e:
            if e.status not in (400, 404):
                raise
            log.info("server %s/%s was already gone: %s", user, server, e.message)

    async def servers(self, user: str) -> dict[str, dict[str, Any]] | None:
        """A user's running or pending named servers; None if the user no longer exists."""
        try:
            _, model = await self.call("GET", f"users/{quote(user, safe='')}")
        except HubError as e:
            if e.status == 404:
                return None
            raise
        return dict(model.get("servers") or {})


def _message(error: HTTPClientError) -> str:
    body = error.response.body if error.response is not None else b""
    try:
        return str(json.loads(body).get("message") or error.message)
    except (ValueError, AttributeError):
        return str(error.message)


class ServerLookup:
    """The hub's current model of one server, asked at most once a second per user.

    Runner and turn calls are accepted only while the hub runs their server; this keeps that
    check cheap when a runner reports several times a second.
    """

    def __init__(self, hub: HubClient, max_age: float = 1.0) -> None:
        self.hub = hub
        self.max_age = max_age
        self._cache: dict[str, tuple[float, asyncio.Future[dict[str, Any] | None]]] = {}

    async def __call__(self, owner: str, server: str) -> dict[str, Any] | None:
        """The server's model (pending, ready, started ...), or None if the hub lacks it."""
        loop = asyncio.get_running_loop()
        requested = loop.time()
        cached = self._cache.get(owner)
        if cached is None or loop.time() - cached[0] > self.max_age:
            future = asyncio.ensure_future(self.hub.servers(owner))
            self._cache[owner] = cached = (loop.time(), future)
            if len(self._cache) > 10_000:
                self._cache = {owner: cached}
        try:
            servers = await asyncio.shield(cached[1])
            if servers is not None and server not in servers and cached[0] < requested:
                # Asked before this server's start: only a fresh answer may say it is gone.
                self._cache.pop(owner, None)
                return await self(owner, server)
        except (HubError, HubUnreachable):
            self._cache.pop(owner, None)
            raise
        return (servers or {}).get(server)

    def forget(self, owner: str) -> None:
        """Drop what is known of a user's servers (after starting or stopping one)."""
        self._cache.pop(owner, None)
