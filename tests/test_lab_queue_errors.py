"""The Batch queue panel's handlers (batch_service/lab_queue.py) in a real Jupyter Server: when
the batch service cannot be reached, the panel gets a 502 with words it shows the user."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_server(tmp_path: Path, service_url: str | None) -> Iterator[tuple[str, str]]:
    """A Jupyter Server with the queue handlers on; yields its URL and token."""
    port, token = free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "BATCHHUB"))}
    env |= {"JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTERHUB_API_TOKEN": "unused"}
    if service_url is not None:
        env["BATCHHUB_SERVICE_URL"] = service_url
    process = subprocess.Popen(
        [
            str(BIN / "jupyter-server"),
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            "--ServerApp.jpserver_extensions=batch_service.lab_queue=True",
            f"--ServerApp.root_dir={tmp_path}",
            "--no-browser",
            "--allow-root",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(f"{url}/api/status", params={"token": token}, timeout=2)
                break
            except requests.ConnectionError:
                assert process.poll() is None, "the Jupyter Server ended at its start"
                time.sleep(0.2)
        yield url, token
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def unreachable(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The batch service's URL is a loopback port nothing listens on."""
    yield from lab_server(tmp_path, f"http://127.0.0.1:{free_port()}/services/batch/")


@pytest.fixture
def unknown(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The server was given no batch service URL."""
    yield from lab_server(tmp_path, None)


def get(server: tuple[str, str], path: str) -> requests.Response:
    url, token = server
    return requests.get(
        f"{url}/batchhub/{path}", headers={"Authorization": f"token {token}"}, timeout=30
    )


def test_an_unreachable_service_is_a_502_with_a_message(unreachable: tuple[str, str]) -> None:
    for path in ("queue", "profiles"):
        r = get(unreachable, path)
        assert r.status_code == 502, r.text
        assert "the batch service cannot be reached" in r.json()["message"]
    # Without the server's own auth, nothing.
    r = requests.get(f"{unreachable[0]}/batchhub/queue", timeout=30)
    assert r.status_code == 403


def test_a_server_that_does_not_know_the_service_says_so(unknown: tuple[str, str]) -> None:
    r = get(unknown, "queue")
    assert r.status_code == 502 and "does not know the batch service" in r.json()["message"]
