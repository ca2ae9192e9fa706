"""A batch server is its user's: what she can do with hub tokens and her own kernel changes
nothing the service observes (docs/trust.md). Each test reproduces a way a user once could.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
import requests

from tests.batch import Batch, notebook
from tests.hub import HubProcess, HubUser

# A kernel reads its server's environment (it runs as the same account) and reports for the
# run as if it were the runner: the strongest claim a user can make about her own job.
FORGER = r"""
import json, os, urllib.request
env = dict(
    item.split("=", 1)
    for item in open(f"/proc/{os.getppid()}/environ").read().split("\0")
    if "=" in item
)
def forge(events):
    url = env["BATCHHUB_SERVICE_URL"] + "api/v1/jobs/" + env["BATCHHUB_JOB_ID"] + "/runner/events"
    request = urllib.request.Request(
        url,
        data=json.dumps({"events": events}).encode(),
        method="POST",
        headers={
            "Authorization": "token " + env["JUPYTERHUB_API_TOKEN"],
            "X-Batchhub-Runner-Key": env["BATCHHUB_RUNNER_KEY"],
            "Content-Type": "application/json",
        },
    )
    return urllib.request.urlopen(request).status
print("runner key", env["BATCHHUB_RUNNER_KEY"])
"""
FORGED_EVENTS = """
print("forged", forge([
    {"type": "started", "seq": 10**6, "time": 0, "output_path": "../../../hub/authorize/x",
     "kernel_id": "../../../hub/admin", "total_cells": 1},
    {"type": "finished", "seq": 10**6 + 1, "time": 4102444800, "state": "succeeded",
     "kernel_alive": True},
]))
"""


def mint(person: HubUser, scopes: list[str]) -> str:
    """A token the person makes herself on the hub, with chosen scopes."""
    r = person.api(
        "POST",
        f"/hub/api/users/{person.name}/tokens",
        json={"scopes": scopes, "expires_in": 3600, "note": "made by hand"},
    )
    assert r.status_code == 201, r.text
    return r.json()["token"]


def runner_call(
    hub: HubProcess,
    token: str,
    method: str,
    job_id: str,
    what: str,
    key: str = "",
    body: Any = None,
) -> requests.Response:
    """A call to a job's runner endpoints with a token (and a runner key, if any)."""
    headers = {"Authorization": f"token {token}", "X-Batchhub-Runner-Key": key}
    return requests.request(
        method,
        f"{hub.url}/services/batch/api/v1/jobs/{job_id}/runner/{what}",
        headers=headers,
        json=body,
        timeout=30,
    )


@pytest.fixture
def paused(hub: HubProcess):  # type: ignore[no-untyped-def]
    """The queue paused by the admin for the test."""
    admin = Batch(hub.admin())
    assert admin.call("PUT", "queue", json={"paused": True}).status_code == 200
    yield
    admin.call("PUT", "queue", json={"paused": False})


def test_only_the_batch_service_starts_batch_servers(hub: HubProcess) -> None:
    alice, bob = hub.ready_user("tr-alice"), hub.ready_user("tr-bob")
    batch = Batch(alice)
    job = batch.wait(batch.submit("q.ipynb", notebook("x = 1")).json()["id"])
    assert job["state"] == "succeeded" and job["live"] is True
    server = job["server_name"]
    replay = alice.server_model(server)["user_options"]  # the service's own, read back
    assert "signature" in replay["batch"]
    batch.call("POST", f"jobs/{job['id']}/release")
    alice.wait_server(server, ready=False)

    attempts = [
        # A GPU for a finished CPU job, outside the queue.
        (alice, server, {"profile": "gpu-1", "batch": {"job_id": job["id"]}}),
        # The service's signed options, replayed by their owner.
        (alice, server, replay),
        # Another user's job id on a server of one's own.
        (bob, server, replay),
        (bob, server, {"profile": "cpu", "batch": {"job_id": job["id"], "signature": "0" * 64}}),
    ]
    for person, name, options in attempts:
        r = person.api("POST", f"/hub/api/users/{person.name}/servers/{name}", json=options)
        assert r.status_code == 400, (person.name, options, r.text)
        assert "started by the batch service only" in r.json()["message"]
        assert person.server_model(name) is None
    # Also with a token made for exactly that server.
    token = mint(alice, [f"servers!server=tr-alice/{server}"])
    r = requests.post(
        f"{hub.url}/hub/api/users/tr-alice/servers/{server}",
        json=replay,
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert r.status_code in (400, 403), r.text
    assert alice.server_model(server) is None


def test_a_token_made_for_a_batch_server_cannot_report_for_its_job(
    hub: HubProcess, paused: None
) -> None:
    mallory = hub.ready_user("tr-mallory")
    batch = Batch(mallory)
    job = batch.submit("wait.ipynb", notebook("x = 1")).json()
    token = mint(mallory, [f"access:servers!server=tr-mallory/batch-{job['id']}"])
    forged = {
        "events": [
            {"type": "started", "seq": 1, "time": 0, "total_cells": 1},
            {"type": "finished", "seq": 2, "time": 1, "state": "succeeded", "kernel_alive": True},
        ]
    }
    for key in ("", "0" * 64):
        for method, what, body in [
            ("GET", "spec", None),
            ("GET", "input", None),
            ("POST", "events", forged),
            ("PUT", "output", json.loads(notebook("y = 2"))),
            # Nor can it claim to be a warm server asking for its owner's next run.
            ("POST", "next", {"kernel": "gone"}),
        ]:
            r = runner_call(hub, token, method, job["id"], what, key, body)
            assert r.status_code == 404, (what, r.status_code, r.text)
    seen = batch.job(job["id"])
    assert seen["state"] == "queued" and seen["started_at"] is None and not seen["live"]
    assert batch.call("GET", f"jobs/{job['id']}/output").status_code == 404


def test_a_kernel_that_reports_for_its_run_moves_no_clock_path_or_charge(
    hub: HubProcess,
) -> None:
    eve = hub.ready_user("tr-eve")
    batch = Batch(eve)
    nb = notebook(FORGER, "import time\ntime.sleep(8)", FORGED_EVENTS, "after = 1")
    submitted = time.time()
    job = batch.wait(batch.submit("forge.ipynb", nb, profile="gpu-1").json()["id"], timeout=180)
    # Her kernel ended the run with her claim of success; the clocks are the service's.
    assert job["state"] == "succeeded", job
    assert submitted <= job["started_at"] and job["finished_at"] - job["started_at"] >= 8
    assert job["finished_at"] <= time.time()
    assert job["live"] is True and job["live_until"] <= time.time() + job["live_window"]
    # Paths and links are the service's own choice.
    server = job["server_name"]
    assert job["output_path"] == f"batch/{job['id']}/forge.output.ipynb"
    assert job["live_kernel_url"] == (
        f"/user/tr-eve/{server}/lab/workspaces/{server}/tree/{job['output_path']}?reset"
    )
    assert job["kernel_id"] is None  # "../../../hub/admin" is no kernel id
    # Charged for the GPU time the service saw her hold: at least the 8 s she slept.
    deadline = time.monotonic() + 30
    charged = batch.call("GET", "usage").json()["users"]["tr-eve"]
    while charged >= 600 and time.monotonic() < deadline:  # settled from the admission charge
        time.sleep(0.5)
        charged = batch.call("GET", "usage").json()["users"]["tr-eve"]
    assert 8 <= charged < 600, charged
    # Once the server is gone, the key she read is worth nothing.
    key = next(line for line in batch.logs(job["id"]) if line.startswith("runner key"))
    batch.call("POST", f"jobs/{job['id']}/release")
    eve.wait_server(job["server_name"], ready=False)
    late = {"events": [{"type": "finished", "seq": 10**7, "state": "failed"}]}
    r = runner_call(hub, eve.token, "POST", job["id"], "events", key.split()[-1], late)
    assert r.status_code == 409 and "may no longer report" in r.json()["message"]
    assert batch.job(job["id"])["state"] == "succeeded"


def test_a_user_cannot_end_the_turn_of_a_gpu_server_that_runs(hub: HubProcess) -> None:
    holder, second, waiter = (hub.ready_user(n) for n in ("tr-hol", "tr-sec", "tr-wai"))
    admin = hub.admin()
    assert holder.start_server("g", {"profile": "gpu-1"}).status_code in (201, 202)
    assert second.start_server("g", {"profile": "gpu-1"}).status_code in (201, 202)
    try:
        state = admin.api("GET", "/hub/api/users/tr-hol").json()["servers"]["g"]["state"]
        turn_id = state["turn"]
        token = mint(holder, ["access:servers!server=tr-hol/g"])
        for method in ("GET", "DELETE"):
            r = requests.request(
                method,
                f"{hub.url}/services/batch/api/v1/turns/{turn_id}",
                headers={"Authorization": f"token {token}", "X-Batchhub-Turn-Key": "f" * 64},
                timeout=30,
            )
            assert r.status_code == 404, (method, r.text)
        # Nor join the line for a server name with a token of her own.
        r = requests.post(
            f"{hub.url}/services/batch/api/v1/turns",
            json={"server": "g", "profile": "gpu-1"},
            headers={"Authorization": f"token {token}"},
            timeout=30,
        )
        assert r.status_code == 403 and "only the hub" in r.json()["message"]
        # The line still counts both GPUs as held: a third GPU run waits.
        wait = Batch(waiter)
        job = wait.submit("later.ipynb", notebook("x = 1"), profile="gpu-1").json()
        time.sleep(3)
        assert wait.job(job["id"])["state"] == "queued"
    finally:
        holder.stop_server("g")
        second.stop_server("g")
    done = wait.wait(job["id"], timeout=120)
    assert done["state"] == "succeeded"
    wait.call("POST", f"jobs/{job['id']}/release")


def test_a_cookie_request_needs_the_xsrf_token_whatever_authorization_header_it_carries(
    hub: HubProcess,
) -> None:
    person = hub.ready_user("tr-xsrf")
    batch = Batch(person)
    job = batch.submit("held.ipynb", notebook("x = 1"), profile="gpu-1", time_limit="1m").json()
    page = person.session.get(f"{hub.url}/services/batch/")  # logs in to the service (OAuth)
    assert page.status_code == 200
    token = re.search(r'"?xsrf_token"?:\s*"([^"]+)"', page.text)
    assert token, "the Batch page carries the hub's XSRF token"
    cancel = f"{hub.url}/services/batch/api/v1/jobs/{job['id']}/cancel"
    # A page on another site can make the browser send the cookie and any header it likes,
    # but not the XSRF token: a bogus Authorization header must not stand in for it.
    for headers in ({}, {"Authorization": "token not-a-real-token"}, {"Authorization": "x"}):
        r = person.session.post(cancel, headers=headers)
        assert r.status_code == 403, (headers, r.status_code, r.text)
        assert "xsrf" in r.text.lower()
        assert batch.job(job["id"])["state"] in ("queued", "starting", "running")
    r = person.session.post(cancel, headers={"X-XSRFToken": token.group(1)})
    assert r.status_code == 200, r.text
    assert batch.job(job["id"])["state"] == "cancelled"
