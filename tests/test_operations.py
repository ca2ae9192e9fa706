"""Running batchhub: a second one beside the first, one start-up summary, a quiet log, Ctrl-C."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import time
from pathlib import Path

import requests

from hub_config.ports import OFFSETS, is_free
from tests.batch import Batch
from tests.conftest import state_folder
from tests.hub import HubProcess


def public_port_below_ephemeral(avoid: set[int]) -> int:
    """A public port as a person picks one (8000, 8100, ...): below the range the system hands
    out to outgoing connections, so the ports derived from it cannot be taken by some client
    between the check that they are free and the bind, as an ephemeral one can on a busy
    machine. Its derived ports are free now and apart from `avoid`."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(1000):
        public = random.randrange(10000, low - max(OFFSETS.values()) - 1)
        wanted = {public, *(public + offset for offset in OFFSETS.values())}
        if not wanted & avoid and all(is_free(port) for port in wanted):
            avoid.update(wanted)
            return public
    raise RuntimeError("no free public port below the ephemeral range")


def only_bind_url(path: Path, avoid: set[int] | None = None) -> HubProcess:
    """A batchhub configured as a person would for a second one: another bind_url, nothing else
    about ports (log level INFO, as by default)."""
    public = public_port_below_ephemeral(set() if avoid is None else avoid)
    values = {
        "hub": {"bind_url": f"http://127.0.0.1:{public}", "admin_users": ["admin"]},
        "batch": {"scheduler_interval": 0.5},
        "culler": {"enabled": False},
    }
    return HubProcess(state_dir=path, values=values)


def test_a_second_batchhub_runs_beside_the_first_with_only_another_bind_url() -> None:
    with state_folder() as first_dir, state_folder() as second_dir:
        taken: set[int] = set()
        first, second = only_bind_url(first_dir, taken), only_bind_url(second_dir, taken)
        try:
            first.start()
            second.start()
            found = {}
            for hub in (first, second):
                endpoints = json.loads((hub.state_dir / "state" / "batchhub.json").read_text())
                found[hub.url] = endpoints["ports"]
                # Each answers on its own ports: its hub, its batch service behind its proxy.
                assert requests.get(f"{hub.url}/hub/api/", timeout=30).status_code == 200
                root = requests.get(f"{hub.url}/services/batch/api/v1/", timeout=30)
                assert root.json()["version"] == "1"
                assert requests.get(endpoints["urls"]["batch"] + "api/v1/", timeout=30).ok
            ports = [p for v in found.values() for k, p in v.items() if k != "chosen"]
            assert len(set(ports)) == len(ports) == 8, found
            for ports in found.values():
                derived = ports["hub"] == ports["public"] + 81
                assert derived or "free port" in ports["chosen"]["hub"], ports
            # People use both at once. Not the same name: both map hub users to the machine's
            # accounts with the default prefix, so one name is one account (and one home) for
            # both, which a server of the first (a warm one, say) holds while the second starts.
            for number, hub in enumerate((first, second)):
                person = hub.ready_user(f"twin-{number}")
                job = Batch(person).wait(Batch(person).submit("t.py", b"x = 1\n").json()["id"])
                assert job["state"] == "succeeded"
                Batch(person).call("POST", f"jobs/{job['id']}/release")
            time.sleep(5)  # scheduler passes every half second meanwhile
            log = first.log_path.read_text()  # type: ignore[union-attr]
        finally:
            first.stop()
            second.stop()
    # One summary at start-up that says what this batchhub is.
    assert log.count("batchhub is starting:") == 1
    summary = log[log.index("batchhub is starting:") :].splitlines()[:12]
    for topic in ("open", "isolation", "GPUs", "memory limits", "state"):
        assert any(line.strip().startswith(topic) for line in summary), summary
    # The batch service's routine polls of the hub are not in the log.
    assert not re.search(r"GET /hub/api/users\?state=.* \(batch@", log)


def test_ctrl_c_stops_batchhub_in_seconds_without_a_traceback_also_while_starting() -> None:
    with state_folder() as path:
        hub = only_bind_url(path)
        # During start-up (the batch service is being started).
        hub.launch()
        log = hub.log_path  # type: ignore[union-attr]
        deadline = time.monotonic() + 60
        while "Starting managed service batch" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        started = time.monotonic()
        os.killpg(hub.proc.pid, signal.SIGINT)  # type: ignore[union-attr]
        assert hub.proc.wait(30) == 128 + signal.SIGINT  # type: ignore[union-attr]
        assert time.monotonic() - started < 10
        text = log.read_text()
        assert "Traceback" not in text and "never retrieved" not in text, text[-3000:]
        assert "...done" in text  # the hub's own cleanup ran: proxy and service stopped
        assert not port_open(hub.url)
        # Running, with a batch server holding a live kernel and an interactive server.
        hub.start()
        person = hub.ready_user("ctrlc")
        batch = Batch(person)
        job = batch.wait(batch.submit("live.py", b"x = 1\n").json()["id"])
        assert job["live"] is True
        assert person.start_server("", {"profile": "cpu"}).status_code in (201, 202)
        mark = len(log.read_text())
        started = time.monotonic()
        # Pressed twice, as people do: one clean shutdown all the same.
        os.killpg(hub.proc.pid, signal.SIGINT)  # type: ignore[union-attr]
        time.sleep(0.3)
        os.killpg(hub.proc.pid, signal.SIGINT)  # type: ignore[union-attr]
        hub.proc.wait(30)  # type: ignore[union-attr]
        assert time.monotonic() - started < 15
        after = log.read_text()[mark:]
        assert "Traceback" not in after, after
        assert "...done" in after


def port_open(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
    except requests.ConnectionError:
        return False
    return True
