"""The runner's calls to the batch service, with the server's own token and patient retries.

Events are numbered (seq) and sent in batches by one background task; a failed send is retried
with exponential backoff and nothing is dropped, so execution never waits on the network.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from spawner.credentials import RUNNER_KEY_HEADER

log = logging.getLogger("batchhub.runner")


class ServiceRefused(Exception):
    """The service no longer accepts this server for its job (404 or 409): it should end."""


class ServiceClient:
    """HTTP calls to `<service>/api/v1/jobs/<id>/...`."""

    def __init__(
        self, service_url: str, job_id: str, token: str, runner_key: str, timeout: float = 30
    ) -> None:
        self.base = service_url.rstrip("/") + f"/api/v1/jobs/{job_id}/"
        self.token = token
        self.runner_key = runner_key
        self.timeout = timeout

    async def fetch(self, method: str, path: str, body: bytes | None = None) -> bytes:
        """One call; raises on failure."""
        request = HTTPRequest(
            self.base + path,
            method=method,
            body=body,
            headers={
                "Authorization": f"token {self.token}",
                "Content-Type": "application/json",
                RUNNER_KEY_HEADER: self.runner_key,
            },
            request_timeout=self.timeout,
        )
        response = await AsyncHTTPClient().fetch(request)
        return response.body

    async def patient(
        self, method: str, path: str, body: bytes | None = None, max_delay: float = 5
    ) -> bytes:
        """Retry with exponential backoff until the service answers (a 4xx is final).

        The backoff stays short: the service is the hub's neighbour, and a run waiting out a
        long delay after the hub has restarted its service would stay starting for nothing."""
        delay = 0.25
        while True:
            try:
                return await self.fetch(method, path, body)
            except HTTPClientError as e:
                if e.code in (404, 409):
                    raise ServiceRefused(f"{method} {path}: {e.code}") from None
                if 400 <= e.code < 500 and e.code not in (408, 429):
                    raise
                reason = f"{e.code}"
            except OSError as e:
                reason = str(e)
            log.warning(
                "batch service %s %s failed (%s); retry in %.1fs", method, path, reason, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)

    async def spec(self) -> dict[str, Any]:
        """What to run."""
        return json.loads(await self.patient("GET", "runner/spec"))

    async def input(self) -> bytes:
        """The uploaded file."""
        return await self.patient("GET", "runner/input")

    async def upload_output(self, notebook_json: bytes) -> None:
        """The executed notebook, until the service has it."""
        await self.patient("PUT", "runner/output", notebook_json)

    async def upload_artifact(self, relative: str, path: Path, attempts: int = 5) -> str | None:
        """Stream one file the run wrote; None when kept, else the service's reason."""
        url = self.base + "runner/artifacts/" + quote(relative, safe="/")
        delay = 0.5
        for attempt in range(attempts):
            size = os.stat(path).st_size

            async def produce(write: Any, path: Path = path, size: int = size) -> None:
                sent = 0
                with path.open("rb") as f:
                    while sent < size and (chunk := f.read(min(1 << 20, size - sent))):
                        sent += len(chunk)
                        await write(chunk)

            request = HTTPRequest(
                url,
                method="PUT",
                body_producer=produce,
                headers={
                    "Authorization": f"token {self.token}",
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(size),
                    RUNNER_KEY_HEADER: self.runner_key,
                },
                request_timeout=max(self.timeout, 600),
            )
            try:
                await AsyncHTTPClient().fetch(request)
                return None
            except HTTPClientError as e:
                if 400 <= e.code < 500 and e.code not in (408, 409, 429):
                    try:
                        return json.loads(e.response.body)["message"] if e.response else str(e)
                    except (ValueError, KeyError, TypeError):
                        return str(e)
                reason = str(e.code)
            except OSError as e:
                reason = str(e)
            log.warning("artifact %s: %s (attempt %d)", relative, reason, attempt + 1)
            await asyncio.sleep(delay)
            delay *= 2
        return f"the batch service did not take it after {attempts} attempts"


class EventSender:
    """Numbers events and delivers them in order, in batches, in the background."""

    def __init__(self, client: ServiceClient, interval: float = 0.25, batch: int = 500) -> None:
        self.client = client
        self.interval = interval
        self.batch = batch
        self.pending: list[dict[str, Any]] = []
        self.seq = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        """Begin delivering."""
        self._task = asyncio.ensure_future(self._deliver())

    def send(self, event_type: str, **fields: Any) -> None:
        """Queue one event (never blocks)."""
        self.seq += 1
        self.pending.append({"type": event_type, "seq": self.seq, "time": time.time(), **fields})
        if event_type in ("started", "finished") or len(self.pending) >= self.batch:
            self._wake.set()

    async def _deliver(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass
            self._wake.clear()
            while self.pending:
                chunk = self.pending[: self.batch]
                body = json.dumps({"events": chunk}).encode()
                await self.client.patient("POST", "runner/events", body)
                del self.pending[: len(chunk)]
            if self._closing:
                return

    async def close(self) -> None:
        """Deliver everything queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
