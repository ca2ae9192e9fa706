"""The service's hub client against a real HTTP server: what it retries and what it reports."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator

import pytest
from tornado import web
from tornado.httpserver import HTTPServer

from batch_service.hub_client import HubClient, HubError, HubUnreachable


class FlakyHub(web.RequestHandler):
    """Fails the first `failures` calls with 500, then starts the server (201)."""

    def post(self, user: str, server: str) -> None:
        state = self.settings["state"]
        state["calls"] += 1
        if state["calls"] <= state["failures"]:
            self.set_status(500)
            self.finish(json.dumps({"status": 500, "message": "could not prepare the account"}))
            return
        self.set_status(201)
        self.finish("{}")


@pytest.fixture
async def hub() -> AsyncIterator[tuple[str, dict]]:
    state = {"calls": 0, "failures": 0}
    app = web.Application([(r"/hub/api/users/(\w+)/servers/([\w-]+)", FlakyHub)], state=state)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    server = HTTPServer(app)
    server.add_sockets([sock])
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hub/api/", state
    finally:
        server.stop()


async def test_a_passing_server_error_is_retried(hub: tuple[str, dict]) -> None:
    url, state = hub
    state["failures"] = 2
    client = HubClient(url, "token", retries=3, backoff=0.01)
    assert await client.start_server("ann", "batch-x", {}) == 201
    assert state["calls"] == 3


async def test_a_start_the_hub_keeps_failing_is_its_answer_not_an_outage(
    hub: tuple[str, dict],
) -> None:
    url, state = hub
    state["failures"] = 100
    client = HubClient(url, "token", retries=2, backoff=0.01)
    # The job then fails with the hub's message instead of waiting for a hub that is up.
    with pytest.raises(HubError) as failed:
        await client.start_server("ann", "batch-x", {})
    assert failed.value.status == 500 and "could not prepare the account" in failed.value.message
    assert state["calls"] == 3


async def test_no_answer_at_all_is_an_outage() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = HubClient(f"http://127.0.0.1:{port}/hub/api/", "token", retries=1, backoff=0.01)
    with pytest.raises(HubUnreachable):
        await client.start_server("ann", "batch-x", {})
