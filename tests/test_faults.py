"""Faults during a run: the kernel dies, the batch server is killed, the service restarts."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.batch import Batch, notebook
from tests.hub import HubProcess


def pids_with_env(variable: str, value: str) -> list[int]:
    """Processes whose environment holds variable=value (batch servers carry their job id)."""
    wanted = f"{variable}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_kernel_that_dies_fails_the_job_and_keeps_the_partial_notebook(hub: HubProcess) -> None:
    batch = Batch(hub.ready_user("fault-kd"))
    nb = notebook("print('first cell ran')", "import os\nos._exit(1)", "never = 1")
    job = batch.wait(batch.submit("dies.ipynb", nb).json()["id"])
    assert job["state"] == "failed", job
    assert job["error"]["name"] == "KernelDied" and job["error"]["cell"] == 2
    assert "kernel died" in job["error"]["value"]
    assert job["live"] is False
    output = batch.call("GET", f"jobs/{job['id']}/output")
    assert output.status_code == 200 and "first cell ran" in output.text


def test_memory_beyond_the_profile_limit_fails_the_cell_not_the_machine(hub: HubProcess) -> None:
    batch = Batch(hub.ready_user("fault-mem"))
    nb = notebook("kept = 'yes'", "hog = bytearray(3 * 2**30)")  # the cpu profile allows 2 GiB
    job = batch.wait(batch.submit("hog.ipynb", nb).json()["id"])
    assert job["state"] == "failed" and job["error"]["name"] == "MemoryError", job
    batch.call("POST", f"jobs/{job['id']}/release")


def test_a_killed_batch_server_fails_its_job_with_a_reason(hub: HubProcess) -> None:
    batch = Batch(hub.ready_user("fault-kill"))
    nb = notebook("import time\ntime.sleep(120)")
    job = batch.wait(batch.submit("slow.ipynb", nb).json()["id"], states=("running",))
    time.sleep(1)
    for pid in pids_with_env("BATCHHUB_JOB_ID", job["id"]):
        os.kill(pid, signal.SIGKILL)
    job = batch.wait(job["id"], timeout=90)
    assert job["state"] == "failed"
    assert "stopped unexpectedly" in job["reason"]


def test_a_batch_server_that_dies_while_starting_is_started_again(hub: HubProcess) -> None:
    batch = Batch(hub.ready_user("fault-start"))
    nb = notebook("print('the run ran')")
    # A GPU run with an hour's limit: each admission charges 3,600 GPU-seconds to its owner.
    job_id = batch.submit("once.ipynb", nb, profile="gpu-1", time_limit=3600).json()["id"]
    # Killed as soon as its process exists: seconds before its runner could take the job.
    killed: list[int] = []
    deadline = time.monotonic() + 60
    while not killed and time.monotonic() < deadline:
        for pid in pids_with_env("BATCHHUB_JOB_ID", job_id):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        time.sleep(0.02)
    assert killed, "the batch server never started"
    job = batch.wait(job_id, timeout=120)
    # None of its code had run: it went back in line and ran, once, in a new server.
    assert job["state"] == "succeeded", job
    assert batch.logs(job_id).count("the run ran") == 1
    assert not set(killed) & set(pids_with_env("BATCHHUB_JOB_ID", job_id))
    batch.call("POST", f"jobs/{job_id}/release")
    # Charged once, for what its GPU was held (the hub call was retried: one admission).
    deadline = time.monotonic() + 30
    charged = batch.call("GET", "usage").json()["users"]["fault-start"]
    while charged >= 600 and time.monotonic() < deadline:  # settled once the kernel is let go
        time.sleep(0.5)
        charged = batch.call("GET", "usage").json()["users"]["fault-start"]
    assert 0 < charged < 600, charged


def test_the_run_is_recorded_when_the_service_restarts_during_it(hub: HubProcess) -> None:
    batch = Batch(hub.ready_user("fault-svc"))
    nb = notebook("print('before')", "import time\ntime.sleep(4)\nprint('after')", "done = True")
    job = batch.wait(batch.submit("restart.ipynb", nb).json()["id"], states=("running",))
    os.kill(hub.service_pid(), signal.SIGKILL)
    # The hub restarts its managed service; the runner retried meanwhile and loses nothing.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if batch.call("GET", f"jobs/{job['id']}").status_code == 200:
                break
        except OSError:
            pass
        time.sleep(1)
    job = batch.wait(job["id"], timeout=120)
    assert job["state"] == "succeeded", job
    assert {"before", "after"} <= set(batch.logs(job["id"]))
    output = batch.call("GET", f"jobs/{job['id']}/output")
    assert output.status_code == 200 and "after" in output.text
    batch.call("POST", f"jobs/{job['id']}/release")


def kernel_pids(kernel_id: str) -> list[int]:
    """Processes of a kernel (its connection file carries its id)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"kernel-{kernel_id}".encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_live_kernel_that_dies_ends_its_window_and_its_server(hub: HubProcess) -> None:
    user = hub.ready_user("fault-live")
    batch = Batch(user)
    job = batch.wait(batch.submit("kept.ipynb", notebook("kept = 1")).json()["id"])
    assert job["live"] is True and job["kernel_id"]
    pids = kernel_pids(job["kernel_id"])
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    # The kernel restarter would put an empty kernel there: the run's state is gone, so the
    # live window ends and the server (and anything it holds) goes at once.
    deadline = time.monotonic() + 30
    seen = batch.job(job["id"])
    while time.monotonic() < deadline and (seen["live"] or user.server_model(job["server_name"])):
        time.sleep(0.5)
        seen = batch.job(job["id"])
    assert seen["live"] is False and seen["state"] == "succeeded"
    assert user.server_model(job["server_name"]) is None
