"""Warm batch servers: a server whose run ended takes its owner's next run of the same profile.

The next run must find nothing of the previous one (variables, files in its folder, changes to
the environment), never be another user's or another profile's, and never touch a kept live
kernel. Real hub, real servers, real kernels.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest

from tests.batch import Batch, notebook
from tests.conftest import exclusive_profile, running_hub, warm_values
from tests.hub import HubProcess
from tests.test_live_kernel import evaluate

# Long enough that a server stopped "at once" (its stop and the next pass, several seconds on a
# busy 2-core machine) is gone well before its idle time could have ended.
WARM_IDLE = 20

# What the first run leaves behind: a variable, a file in its folder, an environment change
# (in the kernel, and exported to what it starts), and where it ran.
FIRST = notebook(
    "import os, pathlib\n"
    "secret = 'from the first run'\n"
    "os.environ['LEFT_BY_FIRST'] = '1'\n"
    "pathlib.Path('left.txt').write_text('first')\n"
    "print('server pid', os.getppid(), 'cwd', os.getcwd())"
)
# The next run fails if it finds any of it.
NEXT = notebook(
    "import os, pathlib\n"
    "assert 'secret' not in globals(), 'a variable of the previous run is visible'\n"
    "assert 'LEFT_BY_FIRST' not in os.environ, 'the previous run changed the environment'\n"
    "assert not pathlib.Path('left.txt').exists(), 'a file of the previous run is visible'\n"
    "assert os.listdir('.') == [p for p in os.listdir('.') if p.startswith(('next', '.'))]\n"
    "print('server pid', os.getppid(), 'cwd', os.getcwd())"
)


@pytest.fixture(scope="module")
def warm_hub() -> Iterator[HubProcess]:
    """A hub of this module's own that keeps batch servers warm for WARM_IDLE seconds."""
    values = warm_values(WARM_IDLE)
    # A GPU each: what a run is charged in the fair line is GPUs x its time limit.
    values["profiles"].append(exclusive_profile(gpus=1, gpu_type="fake"))
    with running_hub(values) as process:
        yield process


def ran_in(batch: Batch, job: dict) -> tuple[str, str]:
    """(server pid, working folder) the run printed."""
    line = next(x for x in batch.logs(job["id"]) if x.startswith("server pid"))
    _, _, pid, _, cwd = line.split()
    return pid, cwd


def warm_after_a_run(batch: Batch, profile: str = "cpu") -> dict:
    """Run FIRST and let its kept kernel go: its server stays, warm, for the next run. The job
    comes back with `idle_ends_after`: its server's idle time starts once the kernel is gone,
    after the release, so it cannot end before then."""
    job = batch.wait(batch.submit("first.ipynb", FIRST, profile=profile).json()["id"])
    assert job["state"] == "succeeded" and job["live"], job
    job["idle_ends_after"] = time.time() + WARM_IDLE
    r = batch.call("POST", f"jobs/{job['id']}/release")
    assert r.status_code == 200, r.text
    batch.user.wait_server(job["server_name"], ready=True)
    batch.wait_kernel_gone(job)
    return job


def test_the_next_run_starts_on_the_warm_server_with_nothing_of_the_previous(
    warm_hub: HubProcess,
) -> None:
    alice = warm_hub.ready_user("wm-alice")
    batch = Batch(alice)
    first = warm_after_a_run(batch)
    started = time.monotonic()
    second = batch.wait(batch.submit("next.ipynb", NEXT).json()["id"])
    took = time.monotonic() - started
    assert second["state"] == "succeeded", (second, batch.logs(second["id"]))
    # The same server process, its own folder, a kernel of its own.
    assert second["server_name"] == first["server_name"] == f"batch-{first['id']}"
    (pid1, cwd1), (pid2, cwd2) = ran_in(batch, first), ran_in(batch, second)
    assert pid1 == pid2
    assert cwd1.endswith(f"batch/{first['id']}") and cwd2.endswith(f"batch/{second['id']}")
    assert second["kernel_id"] != first["kernel_id"]
    assert took < 10, took
    # A kernel no code ran in before: the run's execution counts start at 1, as papermill's.
    executed = batch.call("GET", f"jobs/{second['id']}/output").json()
    assert [c["execution_count"] for c in executed["cells"] if c["cell_type"] == "code"] == [1]
    # Its live kernel is the new run's, reached through the same server.
    result = asyncio.run(evaluate(warm_hub, alice, second, "print('secret' in globals())"))
    assert result.stdout.strip() == "False"
    assert f"/user/{alice.name}/{first['server_name']}/lab/" in second["live_kernel_url"]
    batch.call("POST", f"jobs/{second['id']}/release")


def test_a_warm_server_never_serves_another_user_or_profile(warm_hub: HubProcess) -> None:
    bob, carol = warm_hub.ready_user("wm-bob"), warm_hub.ready_user("wm-carol")
    bobs, carols = Batch(bob), Batch(carol)
    warm_after_a_run(bobs)  # his server waits, warm
    # Another user, the same profile: a server of her own.
    other = carols.wait(carols.submit("next.ipynb", NEXT).json()["id"])
    assert other["state"] == "succeeded", other
    assert other["server_name"] == f"batch-{other['id']}"
    # The same user, another profile: a server of its own too.
    gpu = bobs.wait(bobs.submit("next.ipynb", NEXT, profile="gpu-1").json()["id"])
    assert gpu["state"] == "succeeded", gpu
    assert gpu["server_name"] == f"batch-{gpu['id']}"
    for batch, job in ((carols, other), (bobs, gpu)):
        batch.call("POST", f"jobs/{job['id']}/release")


def test_a_kept_live_kernel_is_never_disturbed(warm_hub: HubProcess) -> None:
    dana = warm_hub.ready_user("wm-dana")
    batch = Batch(dana)
    first = batch.wait(batch.submit("first.ipynb", FIRST).json()["id"])
    assert first["live"], first
    # The first run's kernel is kept: the next run starts in a server of its own.
    second = batch.wait(batch.submit("next.ipynb", NEXT).json()["id"])
    assert second["state"] == "succeeded", second
    assert second["server_name"] == f"batch-{second['id']}" != first["server_name"]
    result = asyncio.run(evaluate(warm_hub, dana, first, "print(secret)"))
    assert result.stdout.strip() == "from the first run"
    for job in (first, second):
        batch.call("POST", f"jobs/{job['id']}/release")


def test_a_sweeps_points_run_one_after_another_in_one_server(warm_hub: HubProcess) -> None:
    erin = warm_hub.ready_user("wm-erin")
    batch = Batch(erin)
    nb = notebook(
        "import os\nprint('server pid', os.getppid(), 'cwd', os.getcwd())", parameters="x = 0"
    )
    r = batch.call(
        "POST",
        "sweeps",
        files={"file": ("point.ipynb", nb)},
        data={
            "profile": "cpu",
            "spec": json.dumps({"kind": "grid", "grid": {"x": "1,2,3"}}),
            "max_parallel": "1",
        },
    )
    assert r.status_code == 201, r.text
    sweep_id = r.json()["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        rows = batch.call("GET", f"sweeps/{sweep_id}/results").json()["rows"]
        if all(row["state"] == "succeeded" for row in rows):
            break
        time.sleep(0.5)
    jobs = [batch.job(row["job_id"]) for row in rows]
    assert all(job["state"] == "succeeded" for job in jobs), jobs
    # Succeeded points keep no kernel: each next point took the server the first one started.
    assert len({job["server_name"] for job in jobs}) == 1, [j["server_name"] for j in jobs]
    assert len({ran_in(batch, job)[0] for job in jobs}) == 1


def test_a_warm_server_stops_after_its_idle_time_and_for_others_gpus(
    warm_hub: HubProcess,
) -> None:
    fay, gus = warm_hub.ready_user("wm-fay"), warm_hub.ready_user("wm-gus")
    fays, guss = Batch(fay), Batch(gus)
    # A CPU server: stopped once idle for WARM_IDLE seconds.
    cpu = warm_after_a_run(fays)
    fay.wait_server(cpu["server_name"], ready=False, timeout=WARM_IDLE + 30)
    assert time.time() >= cpu["idle_ends_after"]
    # A GPU server: stopped at once when another user's run of that GPU type starts.
    gpu = warm_after_a_run(fays, profile="gpu-1")
    # The GPU view says what holds the GPU: an idle server, kept until when.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        holder = next(h for h in fays.call("GET", "gpus").json()["holders"] if h["mine"])
        if holder["kind"] == "idle server":
            break
        time.sleep(0.2)
    assert holder["kind"] == "idle server" and holder["server"] == gpu["server_name"], holder
    assert 0 < holder["until"] - time.time() <= WARM_IDLE
    other = guss.submit("next.ipynb", NEXT, profile="gpu-1").json()["id"]
    fay.wait_server(gpu["server_name"], ready=False, timeout=WARM_IDLE + 30)
    assert time.time() < gpu["idle_ends_after"], "stopped by its idle time, not for the run"
    done = guss.wait(other)
    assert done["state"] == "succeeded" and done["server_name"] == f"batch-{other}", done
    guss.call("POST", f"jobs/{other}/release")


def test_an_exclusive_run_stops_idle_servers_and_runs_on_an_empty_machine(
    warm_hub: HubProcess,
) -> None:
    hal, ivy = warm_hub.ready_user("wm-hal"), warm_hub.ready_user("wm-ivy")
    hals, ivys = Batch(hal), Batch(ivy)
    first = warm_after_a_run(hals)
    # Another user's run that needs the machine to itself: the idle server is no reason to
    # wait (it is stopped at once, not when its idle time ends), yet the run starts only once
    # it is gone.
    measure = notebook("import time\ntime.sleep(3)\nprint('alone')")
    r = ivys.submit("measure.ipynb", measure, profile="perf")
    assert r.status_code == 201, r.text
    exclusive = r.json()["id"]
    deadline = time.monotonic() + 90
    while (job := ivys.job(exclusive))["state"] == "queued" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job["state"] in ("starting", "running"), job
    servers = hal.api("GET", f"/hub/api/users/{hal.name}").json()["servers"]
    assert first["server_name"] not in servers, servers
    assert time.time() < first["idle_ends_after"], "stopped by its idle time, not for the run"
    done = ivys.wait(exclusive)
    assert done["state"] == "succeeded", done
    # No server of anyone else was seen while it ran.
    assert done["machine"]["servers_seen"] == [], done["machine"]
    ivys.call("POST", f"jobs/{exclusive}/release")
    # Admitted twice (once before the idle server was gone), charged once: what it held.
    deadline = time.monotonic() + 30
    while (charged := ivys.call("GET", "usage").json()["users"]["wm-ivy"]) >= 300:
        if time.monotonic() > deadline:  # settled from the admission charge of 300 s
            break
        time.sleep(0.5)
    assert 3 <= charged < 300, charged


def test_without_warm_servers_a_run_leaves_no_warning_in_the_log(hub: HubProcess) -> None:
    # The session hub keeps no server warm: its runners are told so and never ask for a
    # next run (each ask would be refused, a warning in the operator's log per run).
    batch = Batch(hub.ready_user("wm-off"))
    job = batch.wait(batch.submit("once.ipynb", notebook("x = 1")).json()["id"])
    assert job["state"] == "succeeded" and job["live"], job
    assert batch.call("POST", f"jobs/{job['id']}/release").status_code == 200
    batch.user.wait_server(job["server_name"], ready=False)
    assert job["id"] in hub.log_path.read_text(errors="replace")  # the log is this hub's
    assert f"jobs/{job['id']}/runner/next" not in hub.warnings_tail(10_000)
