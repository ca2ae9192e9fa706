"""E-mail and webhooks when jobs start and end and a GPU turn comes: a real batchhub, a real
SMTP server (aiosmtpd) and a real webhook receiver, all on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from aiosmtpd.controller import Controller

from tests.batch import Batch
from tests.hub import HubProcess, free_port


class Inbox:
    """What the SMTP server received."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.messages.append(envelope)
        return "250 OK"

    def subjects(self) -> list[str]:
        return [message_from_bytes(m.content)["Subject"] for m in self.messages]


def wait_for(check, timeout: float = 90) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("not told in time")
        time.sleep(0.3)


@pytest.fixture
def inbox() -> Iterator[tuple[int, Inbox]]:
    keep = Inbox()
    port = free_port()
    controller = Controller(keep, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, keep
    controller.stop()


@pytest.fixture
def receiver() -> Iterator[tuple[str, list]]:
    calls: list[tuple[dict, bytes]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            calls.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", calls
    server.shutdown()


def test_people_hear_of_their_runs_and_gpu_turns_by_e_mail_and_webhook(
    fresh_hub: HubProcess, inbox, receiver
) -> None:
    smtp_port, mail = inbox
    hook_url, calls = receiver
    fresh_hub.values["notifications"] = {
        "email": {"smtp_host": "127.0.0.1", "smtp_port": smtp_port, "starttls": False},
        # The tests' receiver is on loopback, which batchhub refuses unless told otherwise.
        "webhooks": {"allow_private_addresses": True},
    }
    fresh_hub.start()
    user = fresh_hub.ready_user("nt-ines")
    batch = Batch(user)
    wanted = {"email": "ines@example.org", "webhook_url": hook_url, "on_start": True}
    settings = batch.call("PUT", "notifications", json=wanted)
    assert settings.status_code == 200, settings.text
    secret = settings.json()["webhook_secret"]
    # Bad input is refused with the reason, and what was saved stays.
    bad = batch.call("PUT", "notifications", json={"email": "ines at example"})
    assert bad.status_code == 400 and "is not an e-mail address" in bad.json()["message"]
    assert batch.call("GET", "notifications").json()["email"] == "ines@example.org"

    job = batch.wait(batch.submit("tell.py", b"x = 1\n").json()["id"])
    wait_for(lambda: len(mail.messages) >= 2 and len(calls) >= 2)
    assert mail.subjects()[:2] == [
        f"[batchhub] Job {job['id']} started: tell.py",
        f"[batchhub] Job {job['id']} succeeded: tell.py",
    ]
    assert all(m.rcpt_tos == ["ines@example.org"] for m in mail.messages)
    body = message_from_bytes(mail.messages[1].content).get_payload()
    assert f"{fresh_hub.url}/services/batch/jobs/{job['id']}" in body
    assert "live kernel is waiting for you" in body
    events = []
    for headers, raw in calls:
        signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        assert headers["X-Batchhub-Signature"] == f"sha256={signature}"
        events.append(json.loads(raw))
    assert [e["event"] for e in events[:2]] == ["job.started", "job.ended"]
    assert events[1]["job"]["state"] == "succeeded" and events[1]["user"] == "nt-ines"

    # An interactive GPU server's turn: told once admitted.
    assert user.start_server("g", {"profile": "gpu-1"}).status_code in (201, 202)
    wait_for(lambda: any("Your turn" in s for s in mail.subjects()))
    assert any(json.loads(raw)["event"] == "turn.admitted" for _, raw in calls)
    user.stop_server("g")
    batch.call("POST", f"jobs/{job['id']}/release")
