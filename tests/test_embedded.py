"""The embedded default end to end: a real hub, proxy and local servers, as people use them."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import resource
import stat
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ACCOUNT_PREFIX, FAKE_GPUS
from tests.hub import HubProcess, HubUser
from tests.kernels import execute, start_kernel

FAKE_UUIDS = {gpu["uuid"] for gpu in FAKE_GPUS}


@pytest.fixture(scope="module")
def mallory(hub: HubProcess) -> HubUser:
    """A user who sends hostile server options through the REST API."""
    return hub.ready_user("mallory")


def server_pid(hub: HubProcess, user: HubUser, server: str) -> int:
    """The server's process id, from the hub's saved spawner state (admin view)."""
    model = hub.admin().api("GET", f"/hub/api/users/{user.name}").json()
    return model["servers"][server]["state"]["pid"]


def process_env(pid: int) -> dict[str, str]:
    """The environment a server process really runs with."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def server_url(hub: HubProcess, user: HubUser, server: str = "") -> str:
    """Base URL of a user's server, ending with a slash."""
    return f"{hub.url}/user/{user.name}/{server + '/' if server else ''}"


def test_signup_needs_approval_and_short_passwords_are_refused(hub: HubProcess) -> None:
    short = hub.user("shorty", password="abc")
    page = short.signup().text
    assert "at least 8 characters" in page or "too short" in page.lower()
    pending = hub.user("pending")
    pending.signup()
    r = pending.login(check=False)
    assert r.status_code != 302  # not approved yet: no session
    hub.admin().approve("pending")
    pending.login()


def test_repeated_failed_logins_lock_the_account(hub: HubProcess) -> None:
    person = hub.ready_user("locky")
    for _ in range(5):
        person.login(password="wrong-password-1", check=False)
    r = person.login(check=False)  # the right password, but locked now
    assert r.status_code != 302


def first_progress_message(person: HubUser, server: str, containing: str) -> str:
    """Read the spawn page's progress stream until a message contains the text."""
    r = person.api("GET", f"/hub/api/users/{person.name}/servers/{server}/progress", stream=True)
    for raw in r.iter_lines(decode_unicode=True):
        if raw and raw.startswith("data:"):
            message = json.loads(raw[5:]).get("message", "")
            if containing in message:
                r.close()
                return message
    raise AssertionError(f"no progress message with {containing!r}")


def test_gpu_servers_get_dedicated_devices_and_a_third_waits_in_line(hub: HubProcess) -> None:
    alice, bob, dave = (hub.ready_user(n) for n in ("gpualice", "gpubob", "gpudave"))
    for person in (alice, bob):
        r = person.start_server("g", {"profile": "gpu-1"})
        assert r.status_code in (201, 202), r.text
    seen = [process_env(server_pid(hub, p, "g"))["CUDA_VISIBLE_DEVICES"] for p in (alice, bob)]
    assert set(seen) == FAKE_UUIDS  # one each, never shared

    # The third waits in the one GPU line with its position on the spawn page, not an error.
    r = dave.api("POST", f"/hub/api/users/{dave.name}/servers/g", json={"profile": "gpu-1"})
    assert r.status_code == 202, r.text
    message = first_progress_message(dave, "g", "position")
    assert "Waiting for 1 GPU of type fake: position 1 in line" in message
    assert not dave.server_model("g")["ready"]

    alice.stop_server("g")  # her GPU goes back; dave's turn comes and he gets it
    dave.wait_server("g", ready=True, timeout=90)
    assert process_env(server_pid(hub, dave, "g"))["CUDA_VISIBLE_DEVICES"] == seen[0]
    for person in (bob, dave):
        person.stop_server("g")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"profile": "no-such"}, "unknown profile 'no-such'"),
        ({"profile": "gpu-1", "gpus": -1}, "unknown server option 'gpus'"),
        ({"profile": "cpu", "gpus": 1000000}, "unknown server option 'gpus'"),
        ({"profile": "staff-gpu"}, "reserved for the groups staff"),
        ({"profile": "cpu", "image": "evil/image"}, "unknown server option 'image'"),
    ],
)
def test_hostile_user_options_are_refused_and_nothing_starts(
    mallory: HubUser, options: dict, message: str
) -> None:
    person = mallory
    r = person.api("POST", f"/hub/api/users/{person.name}/servers/x", json=options)
    assert r.status_code == 400, r.text
    assert message in r.json()["message"]
    assert person.server_model("x") is None


def test_group_member_may_use_the_group_profile(hub: HubProcess) -> None:
    carol = hub.ready_user("carol")  # in the staff group from the values file
    r = carol.start_server("s", {"profile": "staff-gpu"})
    assert r.status_code in (201, 202), r.text
    carol.stop_server("s")


@pytest.mark.skipif(os.geteuid() != 0, reason="per-user accounts need root; CI runs as root")
async def test_users_are_isolated_from_each_other(hub: HubProcess) -> None:
    """User B's kernel cannot read user A's notebook, nor signal A's processes."""
    alice, bob = hub.ready_user("isoalice"), hub.ready_user("isobob")
    for person in (alice, bob):
        r = person.start_server("", {"profile": "cpu"})
        assert r.status_code in (201, 202), r.text
    secret = {
        "type": "notebook",
        "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5},
    }
    r = alice.api("PUT", server_url(hub, alice) + "api/contents/secret.ipynb", json=secret)
    assert r.status_code == 201, r.text

    alice_pid = server_pid(hub, alice, "")
    alice_account = pwd.getpwuid(os.stat(f"/proc/{alice_pid}").st_uid)
    assert alice_account.pw_name == f"{ACCOUNT_PREFIX}isoalice"
    home = Path(alice_account.pw_dir)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert (home / "secret.ipynb").exists()

    bob_url = server_url(hub, bob)
    kernel = start_kernel(bob_url, bob.token)
    async with asyncio.timeout(60):
        read = await execute(
            bob_url, bob.token, kernel, f"open({str(home / 'secret.ipynb')!r}).read()"
        )
        kill = await execute(bob_url, bob.token, kernel, f"import os; os.kill({alice_pid}, 0)")
    assert read.error_name == "PermissionError"
    assert kill.error_name == "PermissionError"
    for person in (alice, bob):
        person.stop_server("")


async def test_memory_limit_is_enforced_and_visible(hub: HubProcess) -> None:
    person = hub.ready_user("memuser")
    r = person.start_server("", {"profile": "cpu"})
    assert r.status_code in (201, 202), r.text
    env = process_env(server_pid(hub, person, ""))
    assert env["MEM_LIMIT"] == str(2 * 1024**3)
    assert "memory limit 2 GiB" in env["BATCHHUB_MEMORY_LIMIT"]

    url = server_url(hub, person)
    kernel = start_kernel(url, person.token)
    async with asyncio.timeout(60):
        shown = await execute(
            url, person.token, kernel, "import os; print(os.environ['BATCHHUB_MEMORY_LIMIT'])"
        )
        hog = await execute(url, person.token, kernel, "x = bytearray(3 * 1024**3)")
    assert "memory limit 2 GiB" in shown.stdout  # the user can see the limit in force
    if "rlimit" in env["BATCHHUB_MEMORY_LIMIT"]:
        assert hog.error_name == "MemoryError"
        limits = Path(f"/proc/{server_pid(hub, person, '')}/limits").read_text()
        assert str(2 * 1024**3) in limits
    person.stop_server("")
    assert resource.getrlimit(resource.RLIMIT_DATA)[0] != 2 * 1024**3  # hub itself unlimited


def test_isolation_off_is_said_on_the_admin_page(fresh_hub: HubProcess) -> None:
    fresh_hub.values["spawner"] = {"local": {"isolation": "off"}}
    fresh_hub.start()
    admin = fresh_hub.admin()
    page = admin.session.get(f"{fresh_hub.url}/hub/admin").text
    assert "Isolation is off" in page
    person = fresh_hub.ready_user("shared")
    r = person.start_server("", {"profile": "cpu"})
    assert r.status_code in (201, 202), r.text
    pid = server_pid(fresh_hub, person, "")
    assert os.stat(f"/proc/{pid}").st_uid == os.getuid()  # runs as the invoking account
    person.stop_server("")


def test_ctrl_c_stops_every_process_it_started(fresh_hub: HubProcess) -> None:
    fresh_hub.start()
    person = fresh_hub.ready_user("ctrlc")
    person.start_server("", {"profile": "cpu"})
    pid = server_pid(fresh_hub, person, "")
    children = _descendants(fresh_hub.proc.pid)
    assert pid in children
    import signal

    assert fresh_hub.stop(signal.SIGINT) is not None
    leftover = [
        p
        for p in children
        if Path(f"/proc/{p}").exists()
        and "zombie" not in Path(f"/proc/{p}/status").read_text().lower()
    ]
    assert leftover == []


def test_the_login_page_never_answers_404_while_batchhub_starts(fresh_hub: HubProcess) -> None:
    """The hub adds its routes to the proxy only once its services answer; until then the
    proxy hands everything to the hub, so a person opening batchhub early gets the login page
    (or a 503 for the moment before the hub listens), never a 404."""
    fresh_hub.launch()
    seen: set[tuple[int, int]] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            login = requests.get(f"{fresh_hub.url}/hub/login", timeout=5)
            batch = requests.get(f"{fresh_hub.url}/services/batch/api/v1/", timeout=5)
        except requests.ConnectionError:
            time.sleep(0.05)
            continue
        seen.add((login.status_code, batch.status_code))
        if batch.status_code == 200 and "openapi" in batch.text:  # the service answers
            break
        time.sleep(0.05)
    assert (200, 200) in seen, sorted(seen)
    # The service's own pages may be missing for a moment; the hub's never are.
    assert all(login in (200, 503) for login, _ in seen), sorted(seen)


def _descendants(pid: int) -> list[int]:
    import psutil

    return [child.pid for child in psutil.Process(pid).children(recursive=True)]


@pytest.mark.gpu
async def test_one_gpu_server_sees_exactly_one_real_device(fresh_hub: HubProcess) -> None:
    """On a machine with NVIDIA GPUs, the NVML inventory hands one device to a 1-GPU server."""
    fresh_hub.values["gpus"] = {"source": "nvml", "devices": []}
    fresh_hub.values["profiles"] = [{"name": "gpu-1", "gpus": 1, "mem_limit": "16G"}]
    fresh_hub.start()
    person = fresh_hub.ready_user("gpureal")
    r = person.start_server("", {"profile": "gpu-1"})
    assert r.status_code in (201, 202), r.text
    url = server_url(fresh_hub, person)
    kernel = start_kernel(url, person.token)
    code = "import pynvml; pynvml.nvmlInit(); print(pynvml.nvmlDeviceGetCount())"
    async with asyncio.timeout(60):
        result = await execute(url, person.token, kernel, code)
    assert result.stdout.strip() == "1", result
    person.stop_server("")
