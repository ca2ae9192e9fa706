"""The batch API over real HTTP through the proxy: submitting, seeing, refusing, administering."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from batch_service.api import api_routes
from tests.batch import Batch, notebook
from tests.hub import HubProcess

PARAMETRISED = notebook("y = lr * epochs", parameters="lr: float = 0.1\nepochs = 3\nname = 'run'")


@pytest.fixture(scope="module")
def people(hub: HubProcess) -> dict[str, Batch]:
    """Two users and the admin (custom:batch:admin through the batch-admin role)."""
    return {
        "erin": Batch(hub.ready_user("api-erin")),
        "frank": Batch(hub.ready_user("api-frank")),
        "admin": Batch(hub.admin()),
    }


def test_a_submitted_job_is_listed_with_its_parameters_and_hidden_from_others(
    people: dict[str, Batch],
) -> None:
    erin, frank, admin = people["erin"], people["frank"], people["admin"]
    admin.call("PUT", "queue", json={"paused": True})
    try:
        r = erin.submit("train.ipynb", PARAMETRISED, parameters={"lr": 0.5, "epochs": 10})
        assert r.status_code == 201, r.text
        job = r.json()
        assert job["state"] == "queued" and job["position"] >= 1
        assert job["parameters"] == {"lr": 0.5, "epochs": 10}
        listed = erin.call("GET", "jobs").json()
        assert job["id"] in [j["id"] for j in listed["jobs"]]
        # Another user gets 404 for everything about it, so ids do not leak.
        for method, path in [
            ("GET", f"jobs/{job['id']}"),
            ("POST", f"jobs/{job['id']}/cancel"),
            ("GET", f"jobs/{job['id']}/input"),
            ("GET", f"jobs/{job['id']}/logs"),
            ("DELETE", f"jobs/{job['id']}"),
        ]:
            assert frank.call(method, path).status_code == 404, (method, path)
        assert job["id"] not in [j["id"] for j in frank.call("GET", "jobs").json()["jobs"]]
        assert frank.call("GET", "jobs?owner=api-erin").status_code == 403
        # The admin sees it with filters, and may reorder the queue.
        mine = admin.call("GET", "jobs?owner=api-erin&state=queued&profile=cpu").json()
        assert [j["id"] for j in mine["jobs"]] == [job["id"]]
        assert erin.call("PATCH", f"jobs/{job['id']}", json={"priority": 5}).status_code == 403
        raised = admin.call("PATCH", f"jobs/{job['id']}", json={"priority": 5})
        assert raised.status_code == 200 and raised.json()["priority"] == 5
        # Its owner cancels it; a cancelled job can be deleted, then it is gone.
        assert erin.call("POST", f"jobs/{job['id']}/cancel").json()["state"] == "cancelled"
        assert erin.call("DELETE", f"jobs/{job['id']}").status_code == 204
        assert erin.call("GET", f"jobs/{job['id']}").status_code == 404
    finally:
        admin.call("PUT", "queue", json={"paused": False})


def test_the_kill_switch_holds_jobs_until_resumed(people: dict[str, Batch]) -> None:
    erin, admin = people["erin"], people["admin"]
    assert erin.call("PUT", "queue", json={"paused": True}).status_code == 403
    assert admin.call("PUT", "queue", json={"paused": True}).json()["paused"] is True
    try:
        job = erin.submit("quick.ipynb", notebook("z = 1")).json()
        import time

        time.sleep(3)
        assert erin.job(job["id"])["state"] == "queued"
    finally:
        admin.call("PUT", "queue", json={"paused": False})
    done = erin.wait(job["id"])
    assert done["state"] == "succeeded"
    erin.call("POST", f"jobs/{job['id']}/release")


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"lr": "fast"}, "parameter 'lr' must be of type float"),
        ({"lr": True}, "parameter 'lr' must be of type float, not bool"),
        ({"lr": None}, "parameter 'lr' must be of type float, not None"),
        ({"not valid": 1}, "not a valid Python identifier"),
        ({"class": 1}, "not a valid Python identifier"),
    ],
)
def test_parameters_are_refused_only_against_an_annotated_type(
    people: dict[str, Batch], parameters: dict, message: str
) -> None:
    frank = people["frank"]
    before = frank.count()
    r = frank.submit("train.ipynb", PARAMETRISED, parameters=parameters)
    assert r.status_code == 400 and message in r.json()["message"], r.text
    assert frank.count() == before


NO_PARAMETERS_CELL = notebook("print(msg)", "msg = 'overwritten'")


@pytest.mark.parametrize(
    ("content", "parameters", "warning"),
    [
        # papermill injects at the top and warns
        (NO_PARAMETERS_CELL, {"msg": "Hello"}, "no cell tagged 'parameters'"),
        # papermill warns: Passed unknown parameter
        (PARAMETRISED, {"batch_size": 64}, "'batch_size' is not in the notebook's parameters"),
        # unannotated: the default's type is a hint, not a rule
        (PARAMETRISED, {"epochs": 0.5}, "parameter 'epochs' is 0.5 (float) where the notebook"),
        (PARAMETRISED, {"epochs": "text"}, "'epochs' is \"text\" (str)"),
        (PARAMETRISED, {"name": None}, "'name' is null (None)"),
        # an int for an annotated float is a widening, fine and silent
        (PARAMETRISED, {"lr": 1}, None),
    ],
)
def test_what_papermill_runs_is_accepted_with_a_warning(
    people: dict[str, Batch], content: bytes, parameters: dict, warning: str | None
) -> None:
    erin, admin = people["erin"], people["admin"]
    admin.call("PUT", "queue", json={"paused": True})
    try:
        r = erin.submit("train.ipynb", content, parameters=parameters)
        assert r.status_code == 201, r.text
        job = r.json()
        assert job["parameters"] == parameters
        if warning is None:
            assert job["warnings"] == []
        else:
            assert len(job["warnings"]) == 1 and warning in job["warnings"][0], job["warnings"]
        assert erin.job(job["id"])["warnings"] == job["warnings"]
        # /inspect tells the same before anything is stored.
        seen = erin.call(
            "POST",
            "inspect",
            files={"file": ("train.ipynb", content)},
            data={"parameters": json.dumps(parameters)},
        )
        assert seen.status_code == 200 and seen.json()["warnings"] == job["warnings"]
        erin.call("POST", f"jobs/{job['id']}/cancel")
    finally:
        admin.call("PUT", "queue", json={"paused": False})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"report_mod": "true"}, "unknown field 'report_mod'"),
        ({"report_mode": "maybe"}, "report_mode must be true or false"),
        ({"args": "--epochs 3"}, "args must be a JSON list of strings"),
        ({"args": json.dumps(["--epochs", 3])}, "args must be a list of strings"),
        ({"args": json.dumps(["-v"])}, "args are for a .py file or a zipped module"),
    ],
)
def test_unknown_or_malformed_fields_are_refused_by_name(
    people: dict[str, Batch], fields: dict, message: str
) -> None:
    frank = people["frank"]
    before = frank.count()
    r = frank.submit("train.ipynb", PARAMETRISED, **fields)
    assert r.status_code == 400 and message in r.json()["message"], r.text
    assert frank.count() == before
    empty = frank.call("POST", "jobs", json={"kind": "empty", "profile": "cpu", "colour": "red"})
    assert empty.status_code == 400 and "unknown field 'colour'" in empty.json()["message"]
    assert frank.count() == before


def test_an_empty_notebook_takes_parameters_into_its_kernel(people: dict[str, Batch]) -> None:
    frank = people["frank"]
    r = frank.call(
        "POST", "jobs", json={"kind": "empty", "profile": "cpu", "parameters": {"seed": 7}}
    )
    assert r.status_code == 201, r.text
    job = frank.wait(r.json()["id"])
    assert job["state"] == "succeeded" and job["parameters"] == {"seed": 7}
    assert "no cell tagged 'parameters'" in job["warnings"][0]
    output = frank.call("GET", f"jobs/{job['id']}/output").json()
    assert any("seed = 7" in "".join(cell["source"]) for cell in output["cells"])
    frank.call("POST", f"jobs/{job['id']}/release")


def test_inspect_shows_typed_parameters_with_defaults(people: dict[str, Batch]) -> None:
    r = people["erin"].call("POST", "inspect", files={"file": ("t.ipynb", PARAMETRISED)})
    assert r.status_code == 200, r.text
    found = {p["name"]: (p["type"], p["default"], p["annotated"]) for p in r.json()["parameters"]}
    assert found == {
        "lr": ("float", 0.1, True),
        "epochs": ("int", 3, False),
        "name": ("str", "run", False),
    }


def test_every_route_is_in_the_openapi_document(hub: HubProcess) -> None:
    import requests

    r = requests.get(f"{hub.url}/services/batch/api/v1/openapi.yaml", timeout=30)
    assert r.status_code == 200
    documented = set(yaml.safe_load(r.text)["paths"])
    routed = set()
    for pattern, _ in api_routes("/"):
        path = pattern.removeprefix("/api/v1/")
        for group in (
            "(?P<job_id>[^/]+)",
            "(?P<sweep_id>[^/]+)",
            "(?P<turn_id>[^/]+)",
            "(?P<definition_id>[^/]+)",
            "(?P<name>[^/]+)",
            "(?P<upload_id>[^/]+)",
            "(?P<path>.+)",
        ):
            path = path.replace(group, "{" + group[4 : group.index(">")] + "}")
        path = path.replace("\\.", ".")
        if "(?P<action>cancel|release)" in path:
            routed |= {path.replace("(?P<action>cancel|release)", a) for a in ("cancel", "release")}
        elif "(?P<action>cancel|pause|resume|retry)" in path:
            actions = ("cancel", "pause", "resume", "retry")
            routed |= {path.replace("(?P<action>cancel|pause|resume|retry)", a) for a in actions}
        elif "(?P<action>pause|resume)" in path:
            routed |= {path.replace("(?P<action>pause|resume)", a) for a in ("pause", "resume")}
        elif "(?P<what>" in path:
            routed |= {
                path.replace("(?P<what>input|output|output.html)", w)
                for w in ("input", "output", "output.html")
            }
        else:
            routed.add(path)
    assert {"/" + p for p in routed} == documented


def test_the_cli_submits_and_follows_a_job(hub: HubProcess, tmp_path: Path) -> None:
    user = hub.ready_user("api-cli")
    path = tmp_path / "nb.ipynb"
    path.write_bytes(notebook("print('lr is', lr)", parameters="lr = 0.1"))
    env = dict(os.environ, JUPYTERHUB_API_TOKEN=user.token or "")

    def cli(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "batch_service.cli", "--url", hub.url, *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=180, env=env)

    result = cli("submit", str(path), "-p", "lr", "0.01", "--profile", "cpu", "--follow")
    assert result.returncode == 0, result.stderr
    assert "lr is 0.01" in result.stdout
    assert "succeeded" in result.stderr and "live kernel:" in result.stderr
    job_id = result.stdout.splitlines()[0]
    assert json.loads(cli("show", job_id).stdout)["parameters"] == {"lr": 0.01}
    Batch(user).call("POST", f"jobs/{job_id}/release")
    # papermill would run it (and warn): so does batchhub, saying why before the run.
    warned = cli("submit", str(path), "-p", "nope", "1", "--report-mode")
    assert warned.returncode == 0, warned.stderr
    assert "warning: parameter 'nope' is not in the notebook's parameters cell" in warned.stderr
    shown = json.loads(cli("show", warned.stdout.split()[0]).stdout)
    assert shown["report_mode"] is True and shown["parameters"] == {"nope": 1}
    Batch(user).call("POST", f"jobs/{shown['id']}/cancel")
    bad = cli("submit", str(path), "-p", "lr", "1", "--", "--epochs", "3")
    assert bad.returncode == 1 and "args are for a .py file or a zipped module" in bad.stderr


def test_concurrent_submissions_are_each_acknowledged_once_stored(
    people: dict[str, Batch],
) -> None:
    erin, admin = people["erin"], people["admin"]
    admin.call("PUT", "queue", json={"paused": True})
    before = erin.call("GET", "jobs").json()["total"]
    try:
        # 30 at once (they share transactions), and one bad one among them.
        with ThreadPoolExecutor(31) as pool:
            answers = list(
                pool.map(
                    lambda i: erin.submit("nb.ipynb", PARAMETRISED, parameters={"epochs": i}),
                    range(30),
                )
            )
            bad = pool.submit(erin.submit, "nb.ipynb", b"{not json").result()
        assert [r.status_code for r in answers] == [201] * 30, [r.text for r in answers][:3]
        assert bad.status_code == 400 and "JSON" in bad.json()["message"]
        jobs = [r.json() for r in answers]
        assert [j["parameters"]["epochs"] for j in jobs] == list(range(30))
        assert len({j["id"] for j in jobs}) == 30
        # Every acknowledged job is stored with its input; the bad one left nothing.
        listed = erin.call("GET", "jobs?state=queued&limit=500").json()
        assert {j["id"] for j in jobs} <= {j["id"] for j in listed["jobs"]}
        assert erin.call("GET", "jobs").json()["total"] == before + 30
        for job in jobs[:3]:
            assert erin.call("GET", f"jobs/{job['id']}/input").content == PARAMETRISED
    finally:
        for job in erin.call("GET", "jobs?state=queued&limit=500").json()["jobs"]:
            erin.call("POST", f"jobs/{job['id']}/cancel")
        admin.call("PUT", "queue", json={"paused": False})
