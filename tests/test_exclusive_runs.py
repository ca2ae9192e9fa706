"""Exclusive runs on one machine, with a real hub: the machine to oneself, pinned CPUs, and the
record of what else ran. (The starvation bound under a stream of short runs is a policy
property on a virtual clock: tests/test_policy_properties.py.)"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.batch import Batch, notebook
from tests.conftest import SESSION_VALUES, exclusive_profile, running_hub, state_folder
from tests.hub import HubProcess
from tests.test_faults import pids_with_env

PINNED = "1"  # the CPU the exclusive profile pins its runs to (the machine offers 0 and up)


@pytest.fixture(scope="module")
def exclusive_hub() -> Iterator[HubProcess]:
    """A hub of this module's own with an exclusive profile pinned to one CPU."""
    values = copy.deepcopy(SESSION_VALUES)
    values["profiles"].append(
        exclusive_profile(description="An exclusive run pinned to one CPU.", cpus=PINNED)
    )
    with running_hub(values) as process:
        yield process


def wait_for(batch: Batch, job_id: str, what: str, check: Any, timeout: float = 90) -> dict:
    """Poll the job until check(job) holds."""
    deadline = time.monotonic() + timeout
    job = batch.job(job_id)
    while time.monotonic() < deadline:
        job = batch.job(job_id)
        if check(job):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} never {what}: {job}")


def release(batch: Batch, *job_ids: str) -> None:
    """Let the live kernels go, so the next test's runs find the machine empty."""
    for job_id in job_ids:
        r = batch.call("POST", f"jobs/{job_id}/release")
        assert r.status_code in (200, 204, 409), r.text


def allowed_cpus(pid: int) -> str:
    """Cpus_allowed_list of a process, as the kernel reports it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no Cpus_allowed_list for {pid}")


def test_an_exclusive_run_waits_for_an_empty_machine_then_holds_it_pinned(
    exclusive_hub: HubProcess,
) -> None:
    ann = Batch(exclusive_hub.ready_user("ex-ann"))
    ben = Batch(exclusive_hub.ready_user("ex-ben"))
    cat = Batch(exclusive_hub.ready_user("ex-cat"))

    # A CPU run holds the machine; the exclusive request waits for it and says so.
    busy = ann.submit("busy.ipynb", notebook("import time\ntime.sleep(8)")).json()["id"]
    wait_for(ann, busy, "ran", lambda j: j["state"] == "running")
    measure = notebook(
        "import os, time\nprint('cpus', sorted(os.sched_getaffinity(0)))\ntime.sleep(12)"
    )
    exclusive = ben.submit("measure.ipynb", measure, profile="perf").json()["id"]
    queued = wait_for(ben, exclusive, "was placed", lambda j: j["reason_code"] != "new")
    assert queued["state"] == "queued", queued
    assert queued["reason_code"] == "machine", queued
    assert queued["reason"].startswith("waiting for the machine to be empty: held by a run"), (
        queued["reason"]
    )

    # Once the CPU run ends (its live kernel does not count), the exclusive run starts.
    running = wait_for(ben, exclusive, "started", lambda j: j["state"] == "running", 120)
    assert ann.job(busy)["state"] == "succeeded"

    # While it runs, a CPU run waits, and is told until when.
    later = cat.submit("later.ipynb", notebook("print('after')")).json()["id"]
    held = wait_for(cat, later, "was placed", lambda j: j["reason_code"] != "new")
    assert held["state"] == "queued", held
    assert held["reason_code"] == "machine", held
    assert held["reason"].startswith("waiting for the machine: an exclusive run holds it until ~")
    assert held["estimated_start"] is not None

    # The run's server and kernel are pinned to the profile's CPUs.
    pids = pids_with_env("BATCHHUB_JOB_ID", exclusive)
    assert len(pids) >= 2, pids  # the batch server and its kernel
    assert {allowed_cpus(pid) for pid in pids} == {PINNED}

    done = ben.wait(exclusive)
    assert done["state"] == "succeeded", done
    assert f"cpus [{PINNED}]" in "\n".join(ben.logs(exclusive))
    # The CPU run starts only after it.
    after = cat.wait(later)
    assert after["state"] == "succeeded" and after["started_at"] >= done["finished_at"]

    # The job page's record: what the service saw, and what else held the machine (the first
    # run's live kernel, kept after its run; nothing ran).
    machine = done["machine"]
    assert machine["cpus"] == PINNED
    assert machine["governor"]
    assert len(machine["load"]) == 3
    assert running["started_at"] is None or machine["read_at"] >= running["started_at"] - 1
    assert [o["kind"] for o in machine["others"]] == ["live_kernel"], machine
    assert machine["others"][0]["owner"] == "another user"
    assert machine["servers_seen"] == ["a server of another user"], machine
    assert "machine" not in ann.job(busy)
    release(ann, busy)
    release(ben, exclusive)
    release(cat, later)


def test_a_cpu_server_waits_while_an_exclusive_run_holds_the_machine(
    exclusive_hub: HubProcess,
) -> None:
    dan = Batch(exclusive_hub.ready_user("ex-dan"))
    eve = exclusive_hub.ready_user("ex-eve")
    # Long enough that the check below falls inside the run on a loaded machine too.
    job = dan.submit("hold.ipynb", notebook("import time\ntime.sleep(20)"), profile="perf")
    job_id = job.json()["id"]
    wait_for(dan, job_id, "started", lambda j: j["state"] == "running", 120)
    r = eve.api("POST", f"/hub/api/users/{eve.name}/servers/", json={"profile": "cpu"})
    assert r.status_code in (201, 202), r.text
    time.sleep(3)
    model = eve.server_model("")
    assert dan.job(job_id)["state"] == "running"
    assert model is not None and not model.get("ready"), model  # waiting its turn
    eve.wait_server("", ready=True, timeout=120)
    ready_at = time.time()
    done = dan.wait(job_id)
    assert done["state"] == "succeeded"
    assert ready_at >= done["finished_at"], (ready_at, done["finished_at"])
    # The waiting server was no process on the machine: the run's record stays clean.
    assert done["machine"]["servers_seen"] == [] and done["machine"]["others"] == []
    eve.stop_server("")
    release(dan, job_id)


@pytest.mark.browser
def test_the_job_page_shows_the_machine_record(exclusive_hub: HubProcess, browser) -> None:  # type: ignore[no-untyped-def]
    import os

    from tests.test_embedded_browser import log_in

    fay = Batch(exclusive_hub.ready_user("ex-fay"))
    job_id = fay.submit("quick.ipynb", notebook("x = 1"), profile="perf").json()["id"]
    assert fay.wait(job_id)["state"] == "succeeded"
    shots = os.environ.get("BATCHHUB_SCREENSHOTS")
    for width, height, label in ((1280, 900, "desktop"), (390, 844, "phone")):
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        log_in(page, exclusive_hub, fay.user.name)
        page.goto(f"{exclusive_hub.url}/services/batch/jobs/{job_id}")
        page.wait_for_selector("#machine:not([hidden])", timeout=30_000)
        assert page.inner_text("#machine-cpus") == f"pinned to CPU {PINNED}"
        assert "Nothing else ran on the machine during its run" in page.inner_text(
            "#machine-others"
        )
        assert "1, 5 and 15 minute averages" in page.inner_text("#machine-load")
        if shots:
            page.screenshot(path=f"{shots}/job-machine-{label}.png", full_page=True)
        context.close()


def test_a_stream_of_short_runs_does_not_keep_an_exclusive_run_waiting() -> None:
    """Short CPU runs keep arriving from two people, so the machine is never empty by itself;
    the exclusive run still starts within max_wait plus the longest running time limit (the
    machine drains for it once it has waited max_wait)."""
    max_wait, short_limit = 8, 20
    values = copy.deepcopy(SESSION_VALUES)
    values["policy"]["max_wait_seconds"] = max_wait
    values["profiles"].append(
        {"name": "perf", "display_name": "Measurement", "exclusive": True, "live_window": 60}
    )
    with state_folder() as path:
        hub = HubProcess.configure(path, values).start()
        try:
            people = [Batch(hub.ready_user(f"st-{i}")) for i in range(2)]
            measurer = Batch(hub.ready_user("st-measure"))
            short = notebook("import time\ntime.sleep(2)")
            mine: list[tuple[Batch, str]] = []
            every: list[tuple[Batch, str]] = []  # all short runs submitted

            def feed() -> None:
                """Keep two short runs waiting; let the kernels of finished ones go."""
                for batch, job_id in list(mine):
                    job = batch.job(job_id)
                    if job["state"] not in ("queued", "starting", "running"):
                        batch.call("POST", f"jobs/{job_id}/release")
                        mine.remove((batch, job_id))
                waiting = sum(1 for b, j in mine if b.job(j)["state"] == "queued")
                for i in range(max(0, 2 - waiting)):
                    batch = people[(len(mine) + i) % 2]
                    r = batch.submit("short.ipynb", short, time_limit=short_limit)
                    mine.append((batch, r.json()["id"]))
                    every.append(mine[-1])

            # The stream runs first, so the exclusive request finds the machine busy.
            busy_by = time.monotonic() + 60
            while time.monotonic() < busy_by:
                feed()
                if any(b.job(j)["state"] == "running" for b, j in mine):
                    break
                time.sleep(0.5)
            submitted, submitted_at = time.monotonic(), time.time()
            measure = measurer.submit("measure.ipynb", notebook("x = 1"), profile="perf")
            measure_id = measure.json()["id"]
            bound = max_wait + short_limit + 30  # passes and a server's start, on a busy machine
            while time.monotonic() - submitted < bound + 30:
                feed()
                if measurer.job(measure_id)["state"] in ("starting", "running", "succeeded"):
                    break
                time.sleep(0.5)
            waited = time.monotonic() - submitted
            job = measurer.job(measure_id)
            assert job["state"] in ("starting", "running", "succeeded"), job
            assert waited <= bound, f"started after {waited:.0f}s (bound {bound}s)"
            # Short runs kept starting after it arrived: the machine was not empty by chance.
            later = [j for b, j in every if (b.job(j)["started_at"] or 0) > submitted_at]
            assert later, "no short run started after the exclusive request arrived"
            assert measurer.wait(measure_id)["state"] == "succeeded"
            measurer.call("POST", f"jobs/{measure_id}/release")
            for batch, job_id in mine:
                batch.call("POST", f"jobs/{job_id}/cancel")
                batch.call("POST", f"jobs/{job_id}/release")
        finally:
            hub.stop()
