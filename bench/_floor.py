"""The floor for the HTTP benches: a compiled server (bench/floor, Go) that writes each request's
body to a new fsynced file and answers, behind configurable-http-proxy (the program and version
the hub runs). What it reaches is what this machine allows any server that acknowledges only
what is on disk; printed beside batchhub's figures, it tells a slow machine from a slow service.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from bench._go import BIN, build_env, go

SOURCE = Path(__file__).resolve().parent / "floor"
PROXY = SOURCE.parent.parent / "node_modules" / ".bin" / "configurable-http-proxy"
# How the tables name it.
FLOOR = "floor: proxy + Go, fsynced file"


def floor_binary() -> Path:
    """The floor server, built the first time its source is seen (a few seconds)."""
    digest = hashlib.sha256()
    for name in ("go.mod", "main.go"):
        digest.update((SOURCE / name).read_bytes())
    binary = BIN / f"floor-{digest.hexdigest()[:12]}"
    if not binary.exists():
        BIN.mkdir(parents=True, exist_ok=True)
        building = binary.with_name(binary.name + f".{os.getpid()}")
        command = [go("the floor server"), "build", "-o", str(building), "."]
        subprocess.run(command, cwd=SOURCE, env=build_env(), check=True)
        building.replace(binary)
    return binary


@dataclass(frozen=True)
class Floor:
    """Where the floor answers: through the proxy, as people reach the hub, and directly."""

    proxy_url: str
    direct_url: str


def free_port() -> int:
    """A port nobody listens on now (the proxy takes its ports as numbers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def floor_behind_proxy(folder: Path) -> Iterator[Floor]:
    """Start the floor server (bodies written in `folder`) and a proxy in front; stop both."""
    server = subprocess.Popen(
        [str(floor_binary()), "-addr", "127.0.0.1:0", "-dir", str(folder)],
        stdout=subprocess.PIPE,
        text=True,
    )
    proxy = None
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[-1])
        direct = f"http://127.0.0.1:{port}"
        proxy_port = free_port()
        proxy = subprocess.Popen(
            [
                str(PROXY),
                "--ip=127.0.0.1",
                f"--port={proxy_port}",
                "--api-ip=127.0.0.1",
                f"--api-port={free_port()}",
                f"--default-target={direct}",
                "--log-level=error",
            ],
            env=dict(os.environ, CONFIGPROXY_AUTH_TOKEN=secrets.token_hex(16)),
        )
        url = f"http://127.0.0.1:{proxy_port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url, timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or proxy.poll() is not None:
                raise SystemExit("the proxy in front of the floor server did not start")
            time.sleep(0.1)
        yield Floor(url, direct)
    finally:
        for process in (proxy, server):
            if process is not None:
                process.terminate()
                process.wait(10)
