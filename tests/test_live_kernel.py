"""The heart: a queued run ends and its kernel is still alive, with every variable in it."""

from __future__ import annotations

import asyncio

import pytest

from tests.batch import Batch, notebook
from tests.hub import HubProcess
from tests.kernels import execute


def server_url(hub: HubProcess, user: str, job: dict) -> str:
    """The batch server's base URL through the proxy."""
    return f"{hub.url}/user/{user}/{job['server_name']}/"


async def evaluate(hub: HubProcess, person, job: dict, code: str):  # type: ignore[no-untyped-def]
    """Run code in the job's own kernel (as JupyterLab would after 'Open live kernel')."""
    person.wait_server(job["server_name"], ready=True)
    async with asyncio.timeout(60):
        return await execute(
            server_url(hub, person.name, job), person.token, job["kernel_id"], code
        )


def sessions(hub: HubProcess, person, job: dict) -> list[dict]:  # type: ignore[no-untyped-def]
    """The batch server's Jupyter sessions."""
    person.wait_server(job["server_name"], ready=True)
    r = person.api("GET", server_url(hub, person.name, job) + "api/sessions")
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_finished_run_leaves_its_kernel_live_with_every_variable(hub: HubProcess) -> None:
    alice = hub.ready_user("lk-alice")
    batch = Batch(alice)
    nb = notebook(
        "import os\ny = x * 2\nprint('y is', y)",
        "for i in range(3):\n    print('line', i)",
        parameters="x = 1",
    )
    r = batch.submit("double.ipynb", nb, parameters={"x": 21})
    assert r.status_code == 201, r.text
    job = batch.wait(r.json()["id"])
    assert job["state"] == "succeeded", job
    assert job["live"] is True
    # JupyterLab in a workspace of the job's own, emptied on each open, showing the output.
    server = job["server_name"]
    assert (
        f"/{server}/lab/workspaces/{server}/tree/{job['output_path']}?reset"
        in (job["live_kernel_url"])
    )
    # parameters cell, papermill's injected cell, and the two cells of the notebook
    assert job["progress"]["index"] == job["progress"]["total"] == 4
    assert "y is 42" in batch.logs(job["id"]) and "line 2" in batch.logs(job["id"])
    # JupyterLab opening the output path finds a session on the run's own kernel.
    found = [s for s in sessions(hub, alice, job) if s["path"] == job["output_path"]]
    assert found and found[0]["kernel"]["id"] == job["kernel_id"]
    result = await evaluate(hub, alice, job, "print(y, x)")
    assert result.stdout.strip() == "42 21"
    # The executed notebook is stored by the service, parameters injected by papermill.
    output = batch.call("GET", f"jobs/{job['id']}/output")
    assert output.status_code == 200
    assert "injected-parameters" in output.text and "y is 42" in output.text
    html = batch.call("GET", f"jobs/{job['id']}/output.html")
    assert html.status_code == 200 and "y is 42" in html.text
    # Nobody else can reach the live kernel, and the runner's endpoints answer only the service.
    intruder = hub.ready_user("lk-mallory")
    stolen = intruder.api("GET", server_url(hub, alice.name, job) + "api/sessions")
    assert stolen.status_code in (403, 404), stolen.status_code
    status = alice.api("GET", server_url(hub, alice.name, job) + "batchhub/runner/status")
    assert status.status_code == 403
    # Release ends the kernel and the server.
    released = batch.call("POST", f"jobs/{job['id']}/release")
    assert released.status_code == 200 and released.json()["live"] is False
    alice.wait_server(job["server_name"], ready=False, timeout=60)


async def test_after_a_failure_the_state_at_the_failing_cell_is_there(hub: HubProcess) -> None:
    bob = hub.ready_user("lk-bob")
    batch = Batch(bob)
    nb = notebook("before = 'set before the error'", "1 / 0", "after = 1")
    r = batch.submit("fails.ipynb", nb)
    assert r.status_code == 201, r.text
    job = batch.wait(r.json()["id"])
    assert job["state"] == "failed"
    assert job["error"]["name"] == "ZeroDivisionError" and job["error"]["cell"] == 2
    assert job["live"] is True
    result = await evaluate(hub, bob, job, "print(before); print('after' in globals())")
    assert result.stdout.split() == ["set", "before", "the", "error", "False"]
    batch.call("POST", f"jobs/{job['id']}/release")


async def test_a_script_runs_in_a_kernel_and_its_globals_stay(hub: HubProcess) -> None:
    carol = hub.ready_user("lk-carol")
    batch = Batch(carol)
    script = b"total = 0\n# %%\nfor k in range(n):\n    total += k\nprint('total', total)\n"
    r = batch.submit("sum.py", script, parameters={"n": 5})
    assert r.status_code == 201, r.text
    job = batch.wait(r.json()["id"])
    assert job["state"] == "succeeded", job
    assert "total 10" in batch.logs(job["id"])
    result = await evaluate(hub, carol, job, "print(total * 2)")
    assert result.stdout.strip() == "20"
    batch.call("POST", f"jobs/{job['id']}/release")


@pytest.mark.parametrize("limit", [4])
async def test_a_run_past_its_time_limit_is_interrupted_and_stays_live(
    hub: HubProcess, limit: int
) -> None:
    dave = hub.ready_user("lk-dave")
    batch = Batch(dave)
    nb = notebook("reached = 'first'", "import time\nfor i in range(600):\n    time.sleep(0.1)")
    r = batch.submit("slow.ipynb", nb, time_limit=limit)
    assert r.status_code == 201, r.text
    job = batch.wait(r.json()["id"], timeout=120)
    assert job["state"] == "timed_out", job
    assert job["live"] is True
    result = await evaluate(hub, dave, job, "print(reached, i > 0)")
    assert result.stdout.strip() == "first True"
    batch.call("POST", f"jobs/{job['id']}/release")


def kernel_state(hub: HubProcess, person, job: dict) -> str:  # type: ignore[no-untyped-def]
    """The run's kernel's execution state as JupyterLab reads it from the batch server."""
    url = server_url(hub, person.name, job) + f"api/kernels/{job['kernel_id']}"
    r = person.api("GET", url)
    assert r.status_code == 200, r.text
    return r.json()["execution_state"]


def test_jupyterlab_sees_the_run_s_kernel_busy_while_cells_run_and_idle_after(
    hub: HubProcess,
) -> None:
    person = hub.ready_user("lk-busy")
    batch = Batch(person)
    r = batch.submit("busy.ipynb", notebook("import time\ntime.sleep(8)", "z = 1"))
    assert r.status_code == 201, r.text
    job = batch.wait(r.json()["id"], states=("running",))
    assert kernel_state(hub, person, job) == "busy"
    job = batch.wait(job["id"])
    assert job["state"] == "succeeded" and job["live"] is True, job
    assert kernel_state(hub, person, job) == "idle"
    # Watched again: a cell run in the live kernel shows, and the kernel is idle after it.
    result = asyncio.run(evaluate(hub, person, job, "print(z + 1)"))
    assert result.stdout.strip() == "2"
    assert kernel_state(hub, person, job) == "idle"
