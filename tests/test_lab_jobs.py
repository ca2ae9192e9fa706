"""JupyterLab's Jobs in a real interactive server, sent to batchhub's queue; what the server's
own token may do; job definitions over the service's API (the 400s store nothing)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from tests.batch import Batch, notebook
from tests.hub import HubProcess, HubUser

NB = notebook("y = x * 2\nprint('y is', y)", parameters="x = 1")


def server_token(hub: HubProcess, user: str, server: str = "") -> str:
    """The API token the hub gave a user's running server (read from its process, as root)."""
    api_url = f"JUPYTERHUB_API_URL=http://127.0.0.1:{hub.values['hub']['hub_port']}/".encode()
    wanted = {f"JUPYTERHUB_USER={user}".encode(), f"JUPYTERHUB_SERVER_NAME={server}".encode()}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted <= set(environ) and any(v.startswith(api_url) for v in environ):
            for item in environ:
                if item.startswith(b"JUPYTERHUB_API_TOKEN="):
                    return item.split(b"=", 1)[1].decode()
    raise AssertionError(f"no running server {server!r} of {user}")


def with_token(token: str, method: str, url: str, **kwargs) -> requests.Response:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"token {token}", **kwargs.pop("headers", {})}
    return requests.request(method, url, headers=headers, timeout=60, **kwargs)


def definition_form(**fields: str) -> dict:
    return {"schedule": "*/5 * * * *", "timezone": "Europe/Berlin", "profile": "cpu", **fields}


@pytest.fixture(scope="module")
def lab_user(hub: HubProcess):  # type: ignore[no-untyped-def]
    """A user with a running interactive server (JupyterLab with the Jobs extension)."""
    user = hub.ready_user("lab-jo")
    r = user.start_server(timeout=120)
    assert r.status_code in (201, 202), r.text
    yield user
    user.stop_server()


def put_notebook(user: HubUser, path: str, content: bytes) -> None:
    r = user.api(
        "PUT",
        f"/user/{user.name}/api/contents/{path}",
        json={"type": "notebook", "format": "json", "content": json.loads(content)},
    )
    assert r.status_code in (200, 201), r.text


def test_definitions_api_saves_pauses_resumes_and_refuses_bad_input(hub: HubProcess) -> None:
    alice, bob = Batch(hub.ready_user("def-alice")), Batch(hub.ready_user("def-bob"))
    files = {"file": ("daily.ipynb", NB)}
    refused = {
        "61 * * * *": ("schedule", "not a valid cron expression"),
        "Mars/Base": ("timezone", "unknown time zone"),
        "staff-gpu": ("profile", "not available to you"),
    }
    for value, (field, words) in refused.items():
        r = alice.call("POST", "definitions", files=files, data=definition_form(**{field: value}))
        assert r.status_code == 400 and words in r.json()["message"], r.text
    assert alice.call("GET", "definitions").json()["total"] == 0
    r = alice.call("POST", "definitions", files=files, data=definition_form(parameters='{"x": 3}'))
    assert r.status_code == 201, r.text
    d = r.json()
    assert (d["schedule"], d["timezone"], d["parameters"]) == (
        "*/5 * * * *",
        "Europe/Berlin",
        {"x": 3},
    )
    assert d["next_fire_at"] > time.time()
    # Another user's definition is unknown to them, whatever they try.
    for method, path in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/jobs")):
        kwargs = {"json": {"paused": True}} if method == "PATCH" else {}
        assert bob.call(method, f"definitions/{d['id']}{path}", **kwargs).status_code == 404
    paused = alice.call("POST", f"definitions/{d['id']}/pause").json()
    assert paused["paused"] is True and paused["next_fire_at"] is None
    r = alice.call("PATCH", f"definitions/{d['id']}", json={"schedule": "every day"})
    assert r.status_code == 400 and "five" in r.json()["message"]
    resumed = alice.call("POST", f"definitions/{d['id']}/resume").json()
    assert resumed["paused"] is False and resumed["next_fire_at"] > time.time()
    assert alice.call("GET", f"definitions/{d['id']}/jobs").json() == {
        "jobs": [],
        "total": 0,
        "limit": 50,
        "offset": 0,
    }
    assert alice.call("DELETE", f"definitions/{d['id']}").status_code == 204
    assert alice.call("GET", f"definitions/{d['id']}").status_code == 404


def test_a_servers_token_submits_and_reads_its_own_users_jobs_and_nothing_else(
    hub: HubProcess, lab_user: HubUser
) -> None:
    token = server_token(hub, lab_user.name)
    api = f"{hub.url}/services/batch/api/v1/"
    other = Batch(hub.ready_user("lab-other"))
    others_job = other.submit("theirs.ipynb", NB).json()["id"]
    # It may submit and read its own user's jobs...
    r = with_token(
        token, "POST", api + "jobs", files={"file": ("mine.ipynb", NB)}, data={"profile": "cpu"}
    )
    assert r.status_code == 201, r.text
    mine = r.json()["id"]
    assert with_token(token, "GET", api + f"jobs/{mine}").json()["owner"] == lab_user.name
    listed = with_token(token, "GET", api + "jobs").json()["jobs"]
    assert {j["owner"] for j in listed} == {lab_user.name}
    assert with_token(token, "POST", api + f"jobs/{mine}/cancel").status_code == 200
    # ...and nothing of anyone else's, nor anything an admin does.
    assert with_token(token, "GET", api + f"jobs/{others_job}").status_code == 404
    assert with_token(token, "GET", api + "jobs?owner=lab-other").status_code == 403
    assert with_token(token, "PUT", api + "queue", json={"paused": True}).status_code == 403
    weight = {"kind": "user", "name": lab_user.name, "weight": 100}
    assert with_token(token, "PUT", api + "weights", json=weight).status_code == 403
    # On the hub it may not read or change users, nor make itself tokens.
    hub_api = f"{hub.url}/hub/api/"
    assert with_token(token, "GET", hub_api + "users").status_code == 403
    assert with_token(token, "GET", hub_api + "users/lab-other").status_code in (403, 404)
    r = with_token(token, "POST", hub_api + f"users/{lab_user.name}/tokens", json={})
    assert r.status_code == 403
    r = with_token(token, "POST", hub_api + f"users/{lab_user.name}/servers/x", json={})
    assert r.status_code == 403
    other.call("POST", f"jobs/{others_job}/cancel")


def test_create_job_from_jupyterlab_runs_in_the_queue_and_downloads_into_the_folder(
    hub: HubProcess, lab_user: HubUser
) -> None:
    put_notebook(lab_user, "double.ipynb", NB)
    lab = f"/user/{lab_user.name}/scheduler/"
    environments = lab_user.api("GET", lab + "runtime_environments").json()
    assert [e["name"] for e in environments] == ["batchhub"]
    # Profiles this user may use are the compute types (staff-gpu is for staff only).
    assert {"cpu", "gpu-1"} <= set(environments[0]["compute_types"])
    assert "staff-gpu" not in environments[0]["compute_types"]
    r = lab_user.api(
        "POST",
        lab + "jobs",
        json={
            "name": "double",
            "input_uri": "double.ipynb",
            "runtime_environment_name": "batchhub",
            "compute_type": "cpu",
            "parameters": {"x": "21"},
            "output_formats": ["ipynb", "html"],
        },
    )
    assert r.status_code == 200, r.text
    lab_id = r.json()["job_id"]
    assert lab_id.startswith("batch-")
    job = Batch(lab_user).wait(lab_id.removeprefix("batch-"))
    assert (job["state"], job["parameters"], job["profile"]) == ("succeeded", {"x": 21}, "cpu")
    listed = lab_user.api("GET", lab + "jobs").json()["jobs"]
    mine = next(j for j in listed if j["job_id"] == lab_id)
    assert mine["status"] == "COMPLETED" and mine["compute_type"] == "cpu"
    r = lab_user.api("GET", lab + f"jobs/{lab_id}/download_files?redownload=true")
    assert r.status_code == 204, r.text
    described = lab_user.api("GET", lab + f"jobs/{lab_id}").json()
    files = {f["file_format"]: f["file_path"] for f in described["job_files"]}
    assert files["ipynb"] and files["html"], described
    output = lab_user.api("GET", f"/user/{lab_user.name}/api/contents/{files['ipynb']}").json()
    printed = [
        "".join(o.get("text", ""))
        for cell in output["content"]["cells"]
        for o in cell.get("outputs", [])
    ]
    assert any("y is 42" in text for text in printed)


def test_run_job_with_input_folder_runs_the_notebook_among_its_files(
    hub: HubProcess, lab_user: HubUser
) -> None:
    r = lab_user.api("PUT", f"/user/{lab_user.name}/api/contents/proj", json={"type": "directory"})
    assert r.status_code in (200, 201), r.text
    r = lab_user.api(
        "PUT",
        f"/user/{lab_user.name}/api/contents/proj/data.csv",
        json={"type": "file", "format": "text", "content": "a,b\n1,2\n"},
    )
    assert r.status_code in (200, 201), r.text
    reader = notebook(
        "print('read:', open('data.csv').read().splitlines()[1], n)", parameters="n = 0"
    )
    put_notebook(lab_user, "proj/reader.ipynb", reader)
    r = lab_user.api(
        "POST",
        f"/user/{lab_user.name}/scheduler/jobs",
        json={
            "name": "reader",
            "input_uri": "proj/reader.ipynb",
            "runtime_environment_name": "batchhub",
            "compute_type": "cpu",
            "parameters": {"n": "5"},
            "output_formats": ["ipynb"],
            "package_input_folder": True,
        },
    )
    assert r.status_code == 200, r.text
    batch = Batch(lab_user)
    job = batch.wait(r.json()["job_id"].removeprefix("batch-"))
    assert (job["state"], job["kind"], job["entry_point"]) == (
        "succeeded",
        "module",
        "reader.ipynb",
    )
    text = batch.call("GET", f"jobs/{job['id']}/logs?format=text").text
    assert "read: 1,2 5" in text


def test_a_job_definition_from_jupyterlab_is_batchhubs_and_pauses_there(
    hub: HubProcess, lab_user: HubUser
) -> None:
    put_notebook(lab_user, "nightly.ipynb", NB)
    lab = f"/user/{lab_user.name}/scheduler/"
    r = lab_user.api(
        "POST",
        lab + "job_definitions",
        json={
            "name": "nightly",
            "input_uri": "nightly.ipynb",
            "runtime_environment_name": "batchhub",
            "compute_type": "cpu",
            "parameters": {"x": "2"},
            "output_formats": ["ipynb"],
            "schedule": "30 2 * * *",
            "timezone": "America/New_York",
        },
    )
    assert r.status_code == 200, r.text
    lab_id = r.json()["job_definition_id"]
    batch = Batch(lab_user)
    d = batch.call("GET", f"definitions/{lab_id.removeprefix('definition-')}").json()
    assert (d["schedule"], d["timezone"], d["parameters"], d["paused"]) == (
        "30 2 * * *",
        "America/New_York",
        {"x": 2},
        False,
    )
    r = lab_user.api("PATCH", lab + f"job_definitions/{lab_id}", json={"active": False})
    assert r.status_code == 204, r.text
    assert batch.call("GET", f"definitions/{d['id']}").json()["paused"] is True
    listed = lab_user.api("GET", lab + "job_definitions").json()["job_definitions"]
    assert [(x["job_definition_id"], x["active"]) for x in listed] == [(lab_id, False)]
    # A bad schedule is refused with batchhub's words, and nothing is stored.
    r = lab_user.api(
        "POST",
        lab + "job_definitions",
        json={
            "name": "bad",
            "input_uri": "nightly.ipynb",
            "runtime_environment_name": "batchhub",
            "compute_type": "cpu",
            "schedule": "every night",
            "timezone": "UTC",
        },
    )
    assert r.status_code >= 400 and "cron" in r.text
    assert batch.call("GET", "definitions").json()["total"] == 1
    assert lab_user.api("DELETE", lab + f"job_definitions/{lab_id}").status_code == 204
    assert batch.call("GET", "definitions").json()["total"] == 0


def test_stopping_the_lab_server_leaves_its_jobs_running(hub: HubProcess) -> None:
    user = hub.ready_user("lab-leaves")
    assert user.start_server(timeout=120).status_code in (201, 202)
    put_notebook(user, "slow.ipynb", notebook("import time\ntime.sleep(8)\nprint('done')"))
    r = user.api(
        "POST",
        f"/user/{user.name}/scheduler/jobs",
        json={
            "name": "slow",
            "input_uri": "slow.ipynb",
            "runtime_environment_name": "batchhub",
            "compute_type": "cpu",
            "output_formats": ["ipynb"],
        },
    )
    assert r.status_code == 200, r.text
    job_id = r.json()["job_id"].removeprefix("batch-")
    user.stop_server()
    assert Batch(user).wait(job_id)["state"] == "succeeded"


def test_the_service_fires_an_every_minute_definition_as_its_owner(hub: HubProcess) -> None:
    batch = Batch(hub.ready_user("def-minute"))
    r = batch.call(
        "POST",
        "definitions",
        files={"file": ("tick.ipynb", NB)},
        data={"schedule": "* * * * *", "profile": "cpu", "parameters": '{"x": 4}'},
    )
    assert r.status_code == 201, r.text
    d = r.json()
    # Its first moment is the next whole minute; the service looks every few seconds.
    deadline = d["next_fire_at"] + 30
    fired: list = []
    while time.time() < deadline and not fired:
        fired = batch.call("GET", f"definitions/{d['id']}/jobs").json()["jobs"]
        time.sleep(1)
    batch.call("POST", f"definitions/{d['id']}/pause")
    assert fired, "the definition did not fire at its first moment"
    job = batch.wait(fired[0]["id"])
    assert (job["state"], job["parameters"], job["owner"]) == ("succeeded", {"x": 4}, "def-minute")
    assert batch.call("GET", f"definitions/{d['id']}").json()["last_job_id"] == job["id"]
    batch.call("DELETE", f"definitions/{d['id']}")


def lab_job(name: str, **fields: object) -> dict:
    """What JupyterLab's Create Job sends (its Additional options add the time limit tag)."""
    return {
        "name": name,
        "input_uri": f"{name}.ipynb",
        "runtime_environment_name": "batchhub",
        "compute_type": "cpu",
        "output_formats": ["ipynb"],
        **fields,
    }


def test_the_time_limit_tag_sets_the_jobs_and_definitions_limit_and_bad_ones_store_nothing(
    hub: HubProcess, lab_user: HubUser
) -> None:
    put_notebook(lab_user, "limited.ipynb", NB)
    lab = f"/user/{lab_user.name}/scheduler/"
    batch = Batch(lab_user)
    admin = Batch(hub.admin())
    # The queue is paused so nothing runs (only what is stored matters here).
    admin.call("PUT", "queue", json={"paused": True})
    try:
        before = batch.count()
        refused = {
            "batchhub-time-limit=7200": "beyond profile 'cpu''s maximum of 3600s",
            "batchhub-time-limit=2h": "whole number of seconds",
            "batchhub-time-limit=0": "at least one second",
            "project-x": "batchhub jobs have no tags",
        }
        for tag, words in refused.items():
            r = lab_user.api("POST", lab + "jobs", json=lab_job("limited", tags=[tag]))
            assert r.status_code >= 400 and words in r.json()["message"], (tag, r.text)
        assert batch.count() == before
        r = lab_user.api(
            "POST", lab + "jobs", json=lab_job("limited", tags=["batchhub-time-limit=1800"])
        )
        assert r.status_code == 200, r.text
        lab_id = r.json()["job_id"]
        assert batch.job(lab_id.removeprefix("batch-"))["time_limit"] == 1800
        # The job detail view shows the limit back in its Additional options.
        assert lab_user.api("GET", lab + f"jobs/{lab_id}").json()["tags"] == [
            "batchhub-time-limit=1800"
        ]
        # No tag: the profile's default.
        r = lab_user.api("POST", lab + "jobs", json=lab_job("limited"))
        assert batch.job(r.json()["job_id"].removeprefix("batch-"))["time_limit"] == 600
        definition = lab_job(
            "limited", schedule="0 3 * * *", timezone="UTC", tags=["batchhub-time-limit=2700"]
        )
        r = lab_user.api("POST", lab + "job_definitions", json=definition)
        assert r.status_code == 200, r.text
        definition_id = r.json()["job_definition_id"]
        stored = batch.call("GET", f"definitions/{definition_id.removeprefix('definition-')}")
        assert stored.json()["time_limit"] == 2700
        before_definitions = batch.call("GET", "definitions").json()["total"]
        r = lab_user.api(
            "POST",
            lab + "job_definitions",
            json={**definition, "tags": ["batchhub-time-limit=99999"]},
        )
        assert r.status_code >= 400 and "maximum of 3600s" in r.json()["message"], r.text
        assert batch.call("GET", "definitions").json()["total"] == before_definitions
        lab_user.api("DELETE", lab + f"job_definitions/{definition_id}")
    finally:
        admin.call("PUT", "queue", json={"paused": False})


def test_the_queue_panels_data_comes_from_the_lab_server_with_its_own_token(
    hub: HubProcess, lab_user: HubUser
) -> None:
    admin = Batch(hub.admin())
    other = Batch(hub.ready_user("lab-other2"))
    admin.call("PUT", "queue", json={"paused": True})
    try:
        mine = Batch(lab_user).submit("waits.ipynb", NB).json()["id"]
        theirs = other.submit("theirs.ipynb", NB).json()["id"]
        r = lab_user.api("GET", f"/user/{lab_user.name}/batchhub/queue")
        assert r.status_code == 200, r.text
        jobs = {j["id"]: j for j in r.json()["jobs"]}
        assert theirs not in jobs
        waiting = jobs[mine]
        assert waiting["state"] == "queued" and waiting["position"] >= 1
        assert "paused" in waiting["reason"] and waiting["progress"]["index"] == 0
        profiles = lab_user.api("GET", f"/user/{lab_user.name}/batchhub/profiles").json()
        cpu = next(p for p in profiles["profiles"] if p["name"] == "cpu")
        assert (cpu["max_time_limit"], cpu["default_time_limit"]) == (3600, 600)
        assert "staff-gpu" not in {p["name"] for p in profiles["profiles"]}
        # Only the server's user gets in (the hub's auth of the lab server).
        r = other.user.api("GET", f"/user/{lab_user.name}/batchhub/queue")
        assert r.status_code in (302, 403), r.status_code
    finally:
        admin.call("PUT", "queue", json={"paused": False})
