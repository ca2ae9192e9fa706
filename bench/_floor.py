"""The floor for the HTTP benches: a compiled server (bench/floor, Go) that writes each request's
body to a new fsynced file and answers, behind configurable-http-proxy (the program and version
the hub runs). What it reaches is what this machine allows any server that acknowledges only
what is on disk; printed beside batchhub's figures, it tells a slow machine from a slow service.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench._go import BIN, build_env, go
from tests.hub import free_port, wait_for_http

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


@contextmanager
def floor_behind_proxy(folder: Path) -> Iterator[str]:
    """Start the floor server (bodies written in `folder`) and a proxy in front; yield the
    proxy's URL, as people reach the hub; stop both."""
    server = subprocess.Popen(
        [str(floor_binary()), "-addr", "127.0.0.1:0", "-dir", str(folder)],
        stdout=subprocess.PIPE,
        text=True,
    )
    proxy = None
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[-1])
        proxy_port = free_port()
        proxy = subprocess.Popen(
            [
                str(PROXY),
                "--ip=127.0.0.1",
                f"--port={proxy_port}",
                "--api-ip=127.0.0.1",
                f"--api-port={free_port()}",
                f"--default-target=http://127.0.0.1:{port}",
                "--log-level=error",
            ],
            env=dict(os.environ, CONFIGPROXY_AUTH_TOKEN=secrets.token_hex(16)),
        )
        url = f"http://127.0.0.1:{proxy_port}"
        wait_for_http(url, timeout=30, ok=(200,))
        yield url
    finally:
        for process in (proxy, server):
            if process is not None:
                process.terminate()
                process.wait(10)
