"""What the service tells people, without a hub: durations, a failed cell, progress, moments.

Real parts: a real kernel runs the failing notebook (nbclient), the real store (SQLite) takes
the runner's events, a real SMTP server (aiosmtpd) receives the e-mail.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import nbformat
import pytest
from aiosmtpd.controller import Controller
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from batch_service.durations import DurationError, parse_duration
from batch_service.errors import BatchError
from batch_service.events import JOB_ENDED, Events
from batch_service.failure import failing_cell
from batch_service.identity import SUBMIT, Identity
from batch_service.jobs import JobService
from batch_service.notify import Notifier
from batch_service.runs import RunReports
from batch_service.store import Store
from tests.batch import notebook
from tests.hub import free_port
from tests.test_store import PROFILES, submission

ALICE = Identity("alice", frozenset({SUBMIT}))


@pytest.mark.parametrize(
    ("text", "plain", "seconds"),
    [
        ("90m", "m", 5400),
        ("2h", "m", 7200),
        ("1h30m", "m", 5400),
        ("3600s", "m", 3600),
        ("90", "m", 5400),  # the page's and the CLI's plain number: minutes
        ("90", "s", 90),  # the API's: seconds, as before
        (" 1.5h ", "s", 5400),
        ("1d", "s", 86400),
    ],
)
def test_durations_read_as_people_write_them(text: str, plain: str, seconds: int) -> None:
    assert parse_duration(text, plain_unit=plain) == seconds


@pytest.mark.parametrize("text", ["", "soon", "9x", "1h30", "-5m", "0s", "9" * 40, "1e9s"])
def test_a_bad_duration_says_what_is_accepted(text: str) -> None:
    with pytest.raises(DurationError) as refused:
        parse_duration(text, plain_unit="m")
    assert "90m" in str(refused.value) or "at least 1 second" in str(refused.value)


def test_the_failing_cell_comes_with_its_source_and_whole_traceback() -> None:
    nb = nbformat.reads(
        notebook(
            "x = 1",
            "def inner(v):\n    return 1 / (v - 1)\n\ndef outer(v):\n    return inner(v)",
            "outer(x)",
        ).decode(),
        as_version=4,
    )
    with pytest.raises(CellExecutionError):
        NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    found = failing_cell(nbformat.writes(nb).encode(), 3)
    assert found is not None and found["source"] == "outer(x)"
    # The whole chain, outer to inner, colours stripped in the text and rendered in the HTML.
    assert "ZeroDivisionError" in found["traceback"] and "\x1b[" not in found["traceback"]
    assert found["traceback"].index("outer") < found["traceback"].index("inner")
    assert 'class="ansi-' in found["traceback_html"] and "\x1b[" not in found["traceback_html"]
    assert failing_cell(nbformat.writes(nb).encode(), 9) is None
    assert failing_cell(b"not json", 1) is None


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[JobService]:
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    store.migrate()
    yield JobService(store, PROFILES)
    store.dispose()


def started_run(jobs: JobService) -> tuple[RunReports, str]:
    """A job whose server the service asked for, and the record of what its runner reports."""
    job_id = jobs.submit(ALICE, submission())["id"]
    assert jobs.mark(job_id, ["queued"], state="starting", admitted_at=1.0)
    return RunReports(jobs.store, jobs.profiles, None, None, jobs.job_files), job_id  # type: ignore[arg-type]


def test_progress_counts_cells_done_so_a_one_cell_run_is_not_done_while_it_runs(
    jobs: JobService,
) -> None:
    runs, job_id = started_run(jobs)
    runs.apply_events(job_id, [{"seq": 1, "type": "started", "total_cells": 1}])
    runs.apply_events(
        job_id, [{"seq": 2, "type": "cell", "index": 1, "total": 1, "status": "running"}]
    )
    assert jobs.get(ALICE, job_id)["progress"]["index"] == 0
    runs.apply_events(
        job_id, [{"seq": 3, "type": "cell", "index": 1, "total": 1, "status": "done"}]
    )
    assert jobs.get(ALICE, job_id)["progress"]["index"] == 1


async def test_each_moment_is_handed_on_once_after_it_is_committed(jobs: JobService) -> None:
    heard = []

    async def listener(moment) -> None:  # type: ignore[no-untyped-def]
        heard.append((moment.kind, moment.owner, moment.subject["state"]))

    events = Events(jobs.store)
    events.listeners.append(listener)
    events.start()
    runs, job_id = started_run(jobs)
    runs.events = events
    try:
        finished = {"seq": 1, "type": "finished", "state": "failed", "error_name": "E"}
        runs.apply_events(job_id, [finished])
        runs.apply_events(job_id, [{**finished, "seq": 2}])  # a later report: no new moment
        await asyncio.wait_for(events.drain(), 10)
    finally:
        await events.stop()
    assert heard == [(JOB_ENDED, "alice", "failed")]


@pytest.fixture
def smtp() -> Iterator[tuple[int, list]]:
    """A real SMTP server on loopback that keeps what it receives."""

    class Keep:
        def __init__(self) -> None:
            self.messages: list = []

        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            self.messages.append(envelope)
            return "250 OK"

    handler = Keep()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, handler.messages
    finally:
        controller.stop()


async def test_webhook_urls_that_reach_inside_are_refused(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'n.sqlite'}")
    store.migrate()
    notifier = Notifier(store)
    for url, why in [
        ("http://127.0.0.1:8081/hub/api/users", "private or reserved"),
        ("http://10.1.2.3/hook", "private or reserved"),
        ("http://169.254.169.254/latest/meta-data", "private or reserved"),
        ("http://localhost/hook", "private or reserved"),
        ("ftp://example.org/hook", "http:// or https://"),
        ("https://user:pw@example.org/hook", "user name or password"),
    ]:
        with pytest.raises(BatchError) as refused:
            await notifier.put_settings(ALICE, {"webhook_url": url})
        assert why in refused.value.message, url
    with pytest.raises(BatchError, match="no SMTP server"):
        await notifier.put_settings(ALICE, {"email": "alice@example.org"})
    assert notifier.get_settings(ALICE)["webhook_url"] == ""  # nothing stored
    store.dispose()


async def test_e_mail_and_signed_webhook_reach_a_real_smtp_server_and_receiver(
    tmp_path: Path, smtp: tuple[int, list]
) -> None:
    port, messages = smtp
    received: list[tuple[dict, bytes]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    receiver = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    store = Store(f"sqlite:///{tmp_path / 'n.sqlite'}")
    store.migrate()
    notifier = Notifier(
        store,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        webhook_allow_private=True,
    )
    try:
        url = f"http://127.0.0.1:{receiver.server_port}/hook"
        settings = await notifier.put_settings(
            ALICE, {"email": "alice@example.org", "webhook_url": url}
        )
        assert (await notifier.test(ALICE))["sent"] == ["e-mail", "webhook"]
        # Changing one choice keeps the others.
        changed = await notifier.put_settings(ALICE, {"on_start": True})
        assert changed["on_start"] and changed["email"] == "alice@example.org"
        assert changed["webhook_secret"] == settings["webhook_secret"]
    finally:
        receiver.shutdown()
        store.dispose()
    assert messages[0].rcpt_tos == ["alice@example.org"]
    assert "Subject: [batchhub] Test" in messages[0].content.decode()
    headers, body = received[0]
    expected = hmac.new(settings["webhook_secret"].encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Batchhub-Signature"] == f"sha256={expected}"
    assert json.loads(body)["event"] == "test"
