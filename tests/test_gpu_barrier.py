"""A server reaches only its own GPUs' device files, even when its code unsets CUDA_VISIBLE_DEVICES.

Without an NVIDIA GPU the devices are character nodes made for the test with the NVIDIA major
number (195): opening one the barrier lets through fails with ENXIO (no driver behind it),
one it fences fails with EPERM (device cgroup) or EACCES (ownership). On a machine with a GPU,
the `gpu` test asks the CUDA driver itself.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FAKE_GPUS
from tests.hub import HubProcess, HubUser, deep_update
from tests.kernels import execute, start_kernel

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="device files and per-user accounts need root; CI runs as root"
)
NVIDIA_MAJOR = 195
DEVICES_CGROUP = Path("/sys/fs/cgroup/devices")

PROBE = """
import errno, json, os
os.environ.pop("CUDA_VISIBLE_DEVICES", None)  # user code may drop the courtesy variable
seen = {}
for path in PATHS:
    try:
        os.close(os.open(path, os.O_RDWR))
        seen[path] = "opened"
    except OSError as e:
        seen[path] = errno.errorcode[e.errno]
print(json.dumps(seen))
"""


@pytest.fixture
def gpu_nodes() -> Iterator[list[dict]]:
    """Two GPU device nodes (and the listed fake GPUs that name them)."""
    folder = Path(tempfile.mkdtemp(prefix="batchhub-dev-"))
    os.chmod(folder, 0o755)
    devices = []
    for i, gpu in enumerate(FAKE_GPUS):
        path = folder / f"nvidia{i}"
        os.mknod(path, 0o666 | 0o020000, os.makedev(NVIDIA_MAJOR, 240 + i))
        os.chmod(path, 0o666)  # as the driver makes them: anyone may open (mknod obeys umask)
        devices.append({**gpu, "device": str(path)})
    yield devices
    for device in devices:
        Path(device["device"]).unlink(missing_ok=True)
    folder.rmdir()


async def probe(hub: HubProcess, person: HubUser, server: str, paths: list[str]) -> dict:
    """What each device open gives in a kernel of the person's server."""
    url = f"{hub.url}/user/{person.name}/{server}/"
    kernel = start_kernel(url, person.token)
    code = f"PATHS = {paths!r}\n{PROBE}"
    async with asyncio.timeout(60):
        result = await execute(url, person.token, kernel, code)
    assert result.error_name is None, result
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("barrier", "fenced"),
    [
        pytest.param(
            "cgroup",
            errno.errorcode[errno.EPERM],
            marks=pytest.mark.skipif(
                not (DEVICES_CGROUP / "devices.deny").exists(),
                reason="this machine has no cgroup v1 devices controller (cgroup v2 only)",
            ),
        ),
        ("owner", errno.errorcode[errno.EACCES]),
    ],
)
async def test_a_server_opens_only_its_own_gpus(
    fresh_hub: HubProcess, gpu_nodes: list[dict], barrier: str, fenced: str
) -> None:
    deep_update(fresh_hub.values, {"gpus": {"devices": gpu_nodes, "barrier": barrier}})
    fresh_hub.start()
    ada, cpu_user = fresh_hub.ready_user("fence-ada"), fresh_hub.ready_user("fence-cy")
    assert ada.start_server("g", {"profile": "gpu-1"}).status_code in (201, 202)
    assert cpu_user.start_server("c", {"profile": "cpu"}).status_code in (201, 202)
    paths = [d["device"] for d in gpu_nodes]
    try:
        seen = await probe(fresh_hub, ada, "g", paths)
        # Exactly one device lets her through (ENXIO: allowed, nothing behind the node).
        outcomes = sorted(seen.values())
        assert outcomes == sorted(["ENXIO", fenced]), seen
        # A CPU server reaches no GPU at all.
        assert set((await probe(fresh_hub, cpu_user, "c", paths)).values()) == {fenced}
        note = "a device cgroup" if barrier == "cgroup" else "device-file ownership"
        assert f"GPUs fenced by {note}" in fresh_hub.log_tail(400)
    finally:
        ada.stop_server("g")
        cpu_user.stop_server("c")
    if barrier == "owner":
        # Given back: the device files are root's again.
        assert {os.stat(p).st_uid for p in paths} == {0}


@pytest.mark.gpu
async def test_a_kernel_that_clears_cuda_visible_devices_sees_only_its_own_gpu(
    fresh_hub: HubProcess,
) -> None:
    deep_update(fresh_hub.values, {"gpus": {"source": "nvml", "devices": []}})
    fresh_hub.values["profiles"] = [
        {"name": "cpu", "gpus": 0},
        {"name": "gpu-1", "gpus": 1, "gpu_type": None},
    ]
    fresh_hub.start()
    person = fresh_hub.ready_user("fence-gpu")
    assert person.start_server("g", {"profile": "gpu-1"}).status_code in (201, 202)
    assert person.start_server("c", {"profile": "cpu"}).status_code in (201, 202)
    count = (
        "import ctypes, os\n"
        "os.environ.pop('CUDA_VISIBLE_DEVICES', None)\n"
        "cuda = ctypes.CDLL('libcuda.so.1')\n"
        "n = ctypes.c_int(0)\n"
        "status = cuda.cuInit(0)\n"
        "cuda.cuDeviceGetCount(ctypes.byref(n)) if status == 0 else None\n"
        "print(n.value)\n"
    )
    try:
        for server, expected in (("g", "1"), ("c", "0")):
            url = f"{fresh_hub.url}/user/{person.name}/{server}/"
            kernel = start_kernel(url, person.token)
            async with asyncio.timeout(60):
                result = await execute(url, person.token, kernel, count)
            assert result.stdout.strip() == expected, (server, result)
    finally:
        person.stop_server("g")
        person.stop_server("c")
