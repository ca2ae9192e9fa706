"""A crash matrix: SIGKILL each part of batchhub while jobs are queued, starting, running, live.

For each part (the batch service, the hub, the proxy, the jobs' batch servers, their kernels)
one user holds a job in every state when the part is killed. A supervisor brings back what it
would (the hub restarts its service and proxy; the hub itself is started again here, as systemd
would). Afterwards: no job is lost, none stays starting for more than 30 s, every GPU comes back
(a job asking for both GPUs runs), and no server is left without a job.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import requests

from bench._cpu import children
from tests.batch import Batch, notebook
from tests.conftest import SESSION_VALUES, running_hub
from tests.hub import HubProcess, HubUser
from tests.test_faults import pids_with_env
from tests.test_sweeps_adaptive import DISC, EXPLORE, OPTIMISE, QUADRATIC, create

STUCK_LIMIT = 30.0
PARTS = ["service", "hub", "proxy", "batch-servers", "kernels"]


@pytest.fixture(scope="module")
def crash_hub() -> Iterator[HubProcess]:
    """A hub of this module's own (it is killed and started again), with a two-GPU profile."""
    values = copy.deepcopy(SESSION_VALUES)
    # Live windows stay open while the two-GPU job waits: the test ends them itself.
    values["policy"]["grace_period_seconds"] = 600
    values["profiles"].append(
        {"name": "gpu-2", "display_name": "2 GPUs", "gpus": 2, "gpu_type": "fake"}
    )
    with running_hub(values) as process:
        yield process


def answering(call: Callable[[], requests.Response], timeout: float = 120) -> requests.Response:
    """The answer of call once the hub, proxy and service answer it again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = call()
            if r.status_code < 500 and r.status_code != 404 or time.monotonic() > deadline:
                return r
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.3)


def proxy_pids(hub: HubProcess) -> list[int]:
    """The configurable-http-proxy of this hub (found by its API port)."""
    port = str(hub.values["hub"]["proxy_api_port"]).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(b"configurable-http-proxy" in part for part in cmdline) and port in cmdline:
                found.append(int(entry.name))
    return found


def job_processes(job_id: str, program: bytes) -> list[int]:
    """The batch server (program batch_service.singleuser) or kernel (ipykernel) of a job."""
    found = []
    for pid in pids_with_env("BATCHHUB_JOB_ID", job_id):
        try:
            if program in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return found


def kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def set_the_stage(batch: Batch) -> dict[str, dict[str, Any]]:
    """One job in each state: live (GPU), running (GPU), queued (both GPUs), starting (CPU)."""
    live = batch.submit("live.ipynb", notebook("kept = 1"), profile="gpu-1")
    live = batch.wait(live.json()["id"])
    assert live["live"] is True, live
    running = batch.submit("long.ipynb", notebook("import time\ntime.sleep(600)"), profile="gpu-1")
    running = batch.wait(running.json()["id"], states=("running",))
    queued = batch.submit("both.ipynb", notebook("both = 2"), profile="gpu-2").json()
    starting = batch.submit("cpu.ipynb", notebook("cpu = 3")).json()
    deadline = time.monotonic() + 30
    while batch.job(starting["id"])["state"] == "queued" and time.monotonic() < deadline:
        time.sleep(0.02)
    return {"queued": queued, "starting": starting, "running": running, "live": live}


def kill_part(part: str, hub: HubProcess, jobs: dict[str, dict[str, Any]]) -> None:
    """SIGKILL one part; bring back what a supervisor would."""
    if part == "service":
        service = hub.service_pid()
        workers = children(service)
        assert workers, "the service has no check workers"
        kill([service])
        # Its check workers end with it, instead of running on parented to init.
        deadline = time.monotonic() + 15
        while any(Path(f"/proc/{pid}").exists() for pid in workers):
            assert time.monotonic() < deadline, f"workers left behind: {workers}"
            time.sleep(0.2)
    elif part == "proxy":
        kill(proxy_pids(hub))
    elif part == "hub":
        assert hub.proc is not None
        cullers = children(hub.proc.pid, b"culler")
        assert cullers, "the hub runs no idle culler"
        kill([hub.proc.pid])
        hub.proc.wait(10)
        # Its idle culler ends with it, instead of running on parented to init.
        deadline = time.monotonic() + 15
        while any(Path(f"/proc/{pid}").exists() for pid in cullers):
            assert time.monotonic() < deadline, f"idle culler left behind: {cullers}"
            time.sleep(0.2)
        hub.start(timeout=120)
    else:
        program = b"batch_service.singleuser" if part == "batch-servers" else b"ipykernel"
        pids = [pid for job in jobs.values() for pid in job_processes(job["id"], program)]
        assert pids, f"no {program.decode()} process found"
        kill(pids)


def the_jobs(batch: Batch, jobs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    seen = {}
    for role, job in jobs.items():
        r = answering(lambda job=job: batch.call("GET", f"jobs/{job['id']}"))
        assert r.status_code == 200, f"the {role} job is lost: {r.status_code} {r.text}"
        seen[role] = r.json()
    return seen


def end_everything(batch: Batch, jobs: dict[str, dict[str, Any]]) -> None:
    """Cancel what still runs and release live kernels, until none is left."""
    deadline = time.monotonic() + STUCK_LIMIT
    pending = set(job["id"] for job in jobs.values())
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            job = batch.job(job_id)
            if job["state"] in ("queued", "starting", "running"):
                batch.call("POST", f"jobs/{job_id}/cancel")
            elif job["live"] or job["live_pending"]:
                batch.call("POST", f"jobs/{job_id}/release")
            else:
                pending.discard(job_id)
        time.sleep(0.3)
    assert not pending, f"jobs neither ended nor released: {sorted(pending)}"


@pytest.mark.parametrize("part", PARTS)
def test_a_killed_part_loses_no_job_and_holds_no_gpu(crash_hub: HubProcess, part: str) -> None:
    user: HubUser = crash_hub.ready_user(f"crash-{part}")
    batch = Batch(user)
    stage = set_the_stage(batch)
    try:
        a_killed_part_loses_no_job_and_holds_no_gpu(crash_hub, part, user, batch, stage)
    finally:
        # A failure here must not leave GPUs held for the parts tested after it.
        end_everything(batch, stage)


def a_killed_part_loses_no_job_and_holds_no_gpu(
    hub: HubProcess, part: str, user: HubUser, batch: Batch, stage: dict[str, dict[str, Any]]
) -> None:
    assert stage["starting"] and batch.job(stage["queued"]["id"])["state"] == "queued"
    kill_part(part, hub, stage)

    # No job lost; none left starting for long once the part is back (the hub restarts its
    # service on its next poll of it, up to half a minute after the kill).
    seen = the_jobs(batch, stage)
    back = time.monotonic()
    while seen["starting"]["state"] == "starting" and time.monotonic() - back < STUCK_LIMIT:
        time.sleep(0.5)
        seen = the_jobs(batch, stage)
    assert seen["starting"]["state"] != "starting", seen["starting"]
    assert seen["queued"]["state"] == "queued", seen["queued"]
    for role, job in seen.items():
        if job["state"] == "failed":
            assert job["reason"] or job["error"], f"the {role} job failed without a reason: {job}"
    if part in ("service", "hub", "proxy"):  # the users' servers were not touched
        assert seen["running"]["state"] == "running", seen["running"]
        assert seen["live"]["live"] is True, seen["live"]
    else:  # the hub notices a dead server on its next poll; the service on its next pass
        waited = time.monotonic()
        while (seen["running"]["state"] == "running" or seen["live"]["live"]) and (
            time.monotonic() - waited < STUCK_LIMIT
        ):
            time.sleep(0.5)
            seen = the_jobs(batch, stage)
        assert seen["running"]["state"] == "failed", seen["running"]
        assert seen["running"]["reason"] or seen["running"]["error"], seen["running"]
        assert seen["live"]["live"] is False, seen["live"]

    # Every GPU comes back: with the others ended, the job asking for both runs.
    end_everything(batch, {k: v for k, v in seen.items() if k != "queued"})
    both = batch.wait(stage["queued"]["id"], timeout=120)
    assert both["state"] == "succeeded", both
    batch.call("POST", f"jobs/{both['id']}/release")

    # No server is left without a job.
    deadline = time.monotonic() + STUCK_LIMIT
    servers = user.api("GET", f"/hub/api/users/{user.name}").json().get("servers", {})
    while servers and time.monotonic() < deadline:
        time.sleep(0.5)
        servers = user.api("GET", f"/hub/api/users/{user.name}").json().get("servers", {})
    assert not servers, f"servers left after their jobs ended: {sorted(servers)}"


@pytest.mark.timeout(1200)
def test_a_sweep_whose_service_is_killed_runs_every_point_exactly_once(
    crash_hub: HubProcess,
) -> None:
    """An optimisation and an exploration are under way when the service is SIGKILLed; after
    the restart every trial and every point has run once, none lost, none twice."""
    batch = Batch(crash_hub.ready_user("crash-sweep"))
    optimise = create(batch, {**OPTIMISE, "max_trials": 8}, QUADRATIC, max_parallel=2).json()
    explore = create(batch, EXPLORE, DISC, max_parallel=2).json()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        counts = batch.call("GET", f"sweeps/{optimise['id']}").json()["counts"]
        if counts["succeeded"] >= 2:
            break
        time.sleep(0.3)
    kill([crash_hub.service_pid()])

    sweeps = {}
    deadline = time.monotonic() + 900
    for sweep_id in (optimise["id"], explore["id"]):
        while time.monotonic() < deadline:
            r = answering(lambda sweep_id=sweep_id: batch.call("GET", f"sweeps/{sweep_id}"))
            if r.status_code == 200 and r.json()["state"] != "active":
                break
            time.sleep(0.5)
        sweeps[sweep_id] = r.json()
        assert sweeps[sweep_id]["state"] == "done", sweeps[sweep_id]
    every_job = batch.call("GET", "jobs?limit=500").json()["jobs"]
    rows = {s: batch.call("GET", f"sweeps/{s}/results").json()["rows"] for s in sweeps}
    for sweep_id, sweep_rows in rows.items():
        # One job per point in all (no earlier attempt either), and each succeeded.
        assert len([j for j in every_job if j["sweep_id"] == sweep_id]) == len(sweep_rows)
        assert {row["state"] for row in sweep_rows} == {"succeeded"}
    assert sorted(row["trial"] for row in rows[optimise["id"]]) == list(range(8))
    assert len({json.dumps(r["parameters"]) for r in rows[explore["id"]]}) == 13
    # Optuna's own record in the service's database: 8 trials, each told its run's value.
    database = crash_hub.state_dir / "state" / "batch" / "jobs.sqlite"
    # Optuna's own check would read this service's Alembic revision (sweep_optuna.py).
    storage = optuna.storages.RDBStorage(f"sqlite:///{database}", skip_compatibility_check=True)
    study = optuna.load_study(study_name=f"batchhub-sweep-{optimise['id']}", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 8
    told = {t.number: t.value for t in study.trials}
    assert told == {r["trial"]: r["recorded"]["loss"] for r in rows[optimise["id"]]}
