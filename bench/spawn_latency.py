"""Time from "Start" to JupyterLab ready for a CPU server, beside a bare `jupyter lab` start.

Both are measured in one run on the same machine, median of N (default 5):
- batchhub: POST /hub/api/users/<name>/servers/<server> (what the Start button does) until
  /user/<name>/<server>/lab answers 200 through the proxy;
- baseline: `jupyter lab` started by hand until /lab answers 200.

    .venv/bin/python bench/spawn_latency.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.hub import HubProcess, free_port, remove_accounts  # noqa: E402


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


def batchhub_start(hub: HubProcess, runs: int) -> list[float]:
    """Start-to-JupyterLab times through the hub, proxy and LocalBatchSpawner."""
    person = hub.ready_user("benchuser")
    times = []
    for i in range(runs):
        server = f"bench{i}"
        began = time.perf_counter()
        r = person.api(
            "POST", f"/hub/api/users/{person.name}/servers/{server}", json={"profile": "cpu"}
        )
        assert r.status_code in (201, 202), r.text
        wait_ok(
            f"{hub.url}/user/{person.name}/{server}/lab",
            headers={"Authorization": f"token {person.token}"},
        )
        times.append(time.perf_counter() - began)
        person.stop_server(server)
    return times


def bare_jupyter_lab(runs: int) -> list[float]:
    """Start-to-ready times of `jupyter lab` on its own."""
    times = []
    for _ in range(runs):
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
                times.append(time.perf_counter() - began)
            finally:
                proc.terminate()
                proc.wait(30)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="batchhub-bench-"))
    os.chmod(state, 0o711)
    prefix = f"bb{os.getpid() % 10000}-"
    overrides = {"hub": {"log_level": "INFO"}, "spawner": {"local": {"account_prefix": prefix}}}
    hub = HubProcess.configure(state, overrides).start()
    try:
        ours = batchhub_start(hub, args.runs)
    finally:
        hub.stop()
        remove_accounts(prefix)
        shutil.rmtree(state, ignore_errors=True)
    bare = bare_jupyter_lab(args.runs)
    med_ours, med_bare = statistics.median(ours), statistics.median(bare)
    print(f"{'':34}{'median s':>10}{'min s':>10}{'max s':>10}")
    print(
        f"{'batchhub Start -> JupyterLab ready':34}{med_ours:10.2f}{min(ours):10.2f}"
        f"{max(ours):10.2f}"
    )
    print(f"{'bare jupyter lab -> ready':34}{med_bare:10.2f}{min(bare):10.2f}{max(bare):10.2f}")
    print(f"ratio batchhub / bare: {med_ours / med_bare:.2f}x  (runs: {args.runs})")


if __name__ == "__main__":
    main()
