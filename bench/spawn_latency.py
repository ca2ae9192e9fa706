"""Time from "Start" to JupyterLab ready for a CPU server, beside a bare `jupyter lab` start.

Both are measured in one run on the same machine, taken in turns (ABAB..., who goes first
alternating) while the hub runs, the median of --samples (default 5) after a discarded
warm-up turn:
- batchhub: POST /hub/api/users/<name>/servers/<server> (what the Start button does) until
  /user/<name>/<server>/lab answers 200 through the proxy; the server is stopped after each;
- baseline: `jupyter lab` started by hand until /lab answers 200, then stopped.
Goal: batchhub <= 1.3x the bare start. --quick changes nothing (there are no sizes to lower).

    .venv/bin/python bench/spawn_latency.py [--samples 5]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._table import Figure, arguments, interleaved, report  # noqa: E402
from tests.hub import HubProcess, HubUser, free_port, remove_accounts  # noqa: E402


def wait_ok(url: str, headers: dict[str, str] | None = None, timeout: float = 120) -> None:
    """Poll until url answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, headers=headers, timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise TimeoutError(url)


def batchhub_start(hub: HubProcess, person: HubUser, server: str) -> float:
    """Start-to-JupyterLab time through the hub, proxy and LocalBatchSpawner."""
    began = time.perf_counter()
    r = person.api(
        "POST", f"/hub/api/users/{person.name}/servers/{server}", json={"profile": "cpu"}
    )
    assert r.status_code in (201, 202), r.text
    wait_ok(
        f"{hub.url}/user/{person.name}/{server}/lab",
        headers={"Authorization": f"token {person.token}"},
    )
    took = time.perf_counter() - began
    person.stop_server(server)
    return took


def bare_jupyter_lab() -> float:
    """Start-to-ready time of `jupyter lab` on its own."""
    port = free_port()
    with tempfile.TemporaryDirectory() as home:
        began = time.perf_counter()
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "jupyter"),
                "lab",
                "--no-browser",
                f"--port={port}",
                "--ServerApp.token=bench",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.root_dir={home}",
                "--allow-root",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "HOME": home},
        )
        try:
            wait_ok(f"http://127.0.0.1:{port}/lab?token=bench")
            return time.perf_counter() - began
        finally:
            proc.terminate()
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments(parser)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="batchhub-bench-"))
    os.chmod(state, 0o711)
    prefix = f"bb{os.getpid() % 10000}-"
    overrides = {"hub": {"log_level": "INFO"}, "spawner": {"local": {"account_prefix": prefix}}}
    hub = HubProcess.configure(state, overrides).start()
    try:
        person = hub.ready_user("benchuser")
        names = (f"bench{i}" for i in itertools.count())
        ours, bare = interleaved(
            lambda: batchhub_start(hub, person, next(names)), bare_jupyter_lab, args.samples
        )
    finally:
        hub.stop()
        remove_accounts(prefix)
        shutil.rmtree(state, ignore_errors=True)
    report(
        [
            Figure(
                "Start -> JupyterLab, CPU server",
                "s",
                ours,
                bare,
                "bare jupyter lab",
                goal_ratio=1.3,
            )
        ]
    )


if __name__ == "__main__":
    main()
