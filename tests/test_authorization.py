"""Who may do what: every operation of the OpenAPI document, asked by every kind of caller.

Callers: the job's owner, another user, a batch admin (a member of a batch-admin group, not a
hub admin), a hub admin, nobody (no credentials), a token that holds only access to the
service, a token the owner made for her job's own server, and another hub service's token.
Another user's job answers 404 exactly as a job that does not exist: nothing leaks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import yaml

from tests.batch import Batch, notebook
from tests.hub import HubProcess, HubUser
from tests.test_trust import mint

CALLERS = (
    "owner",
    "other",
    "batch_admin",
    "hub_admin",
    "anonymous",
    "access_only",
    "server_token",
    "service",
)
RESTRICTED = ("access_only", "server_token", "service")  # may not use the batch API at all


@dataclass(frozen=True)
class Operation:
    """One request of the matrix: method, the documented path, the path sent (with {queued},
    {finished}, {fresh}, {dataset}, {fresh_dataset}, {definition}, {fresh_definition}), a body,
    headers, form fields of an upload."""

    method: str
    doc: str
    path: str
    expected: dict[str, int]
    json: Any = None
    upload: bool = False
    headers: dict[str, str] | None = None
    form: dict[str, str] | None = None


def statuses(
    owner: int,
    other: int,
    batch_admin: int,
    hub_admin: int,
    anonymous: int = 401,
    restricted: int = 403,
) -> dict[str, int]:
    return {
        "owner": owner,
        "other": other,
        "batch_admin": batch_admin,
        "hub_admin": hub_admin,
        "anonymous": anonymous,
        **dict.fromkeys(RESTRICTED, restricted),
    }


EVERYONE = dict.fromkeys(CALLERS, 200)
READ_OWN = statuses(200, 404, 200, 200)
USE = statuses(200, 200, 200, 200)
ADMIN_ONLY = statuses(403, 403, 200, 200)
RUNNER = statuses(404, 404, 404, 404, restricted=404)  # no runner key: unknown job
TUS = {"Tus-Resumable": "1.0.0"}
J = "/jobs/{job_id}"
S = "/sweeps/{sweep_id}"
SWEPT = notebook("y = x", parameters="x = 1")
GRID = '{"kind": "grid", "grid": {"x": "1:2"}}'
D = "/definitions/{definition_id}"
# A definition's first moment is next New Year's: none fires during the tests.
YEARLY = {"schedule": "0 0 1 1 *", "profile": "cpu", "paused": "true"}

OPERATIONS = [
    Operation("GET", "/", "", EVERYONE),
    Operation("GET", "/openapi.yaml", "openapi.yaml", EVERYONE),
    Operation("GET", "/jobs", "jobs", USE),
    Operation("POST", "/jobs", "jobs", statuses(201, 201, 201, 201), json={"kind": "empty"}),
    Operation("POST", "/inspect", "inspect", USE, upload=True),
    Operation("GET", J, "jobs/{finished}", READ_OWN),
    Operation("GET", J, "jobs/nosuchjob1", statuses(404, 404, 404, 404)),
    Operation("PATCH", J, "jobs/{queued}", statuses(403, 404, 200, 200), json={"priority": 1}),
    Operation("DELETE", J, "jobs/{queued}", statuses(409, 404, 409, 409)),
    Operation("POST", J + "/cancel", "jobs/{fresh}/cancel", statuses(200, 404, 200, 200)),
    Operation("POST", J + "/release", "jobs/{finished}/release", statuses(409, 404, 409, 409)),
    Operation("GET", J + "/input", "jobs/{finished}/input", READ_OWN),
    Operation("GET", J + "/output", "jobs/{finished}/output", READ_OWN),
    Operation("GET", J + "/output.html", "jobs/{finished}/output.html", READ_OWN),
    Operation("GET", J + "/logs", "jobs/{finished}/logs", READ_OWN),
    Operation("GET", J + "/failure", "jobs/{finished}/failure", READ_OWN),
    Operation("GET", J + "/artifacts", "jobs/{finished}/artifacts", READ_OWN),
    Operation("GET", J + "/artifacts.zip", "jobs/{finished}/artifacts.zip", READ_OWN),
    Operation("GET", J + "/artifacts/{path}", "jobs/{finished}/artifacts/out.txt", READ_OWN),
    Operation("GET", J + "/runner/spec", "jobs/{queued}/runner/spec", RUNNER),
    Operation("GET", J + "/runner/input", "jobs/{queued}/runner/input", RUNNER),
    Operation(
        "POST", J + "/runner/events", "jobs/{queued}/runner/events", RUNNER, json={"events": []}
    ),
    Operation(
        "PUT", J + "/runner/output", "jobs/{queued}/runner/output", RUNNER, json={"cells": []}
    ),
    Operation(
        "POST", J + "/runner/next", "jobs/{finished}/runner/next", RUNNER, json={"kernel": "gone"}
    ),
    Operation(
        "PUT",
        J + "/runner/artifacts/{path}",
        "jobs/{queued}/runner/artifacts/x.txt",
        RUNNER,
        json={"x": 1},
    ),
    Operation(
        "POST",
        "/turns",
        "turns",
        statuses(403, 403, 403, 403, restricted=403),
        json={"server": "g", "profile": "gpu-1"},
    ),
    Operation(
        "GET",
        "/turns/{turn_id}",
        "turns/tnosuchturn0",
        statuses(404, 404, 404, 404, restricted=404),
    ),
    Operation(
        "DELETE",
        "/turns/{turn_id}",
        "turns/tnosuchturn0",
        statuses(404, 404, 404, 404, restricted=404),
    ),
    Operation("GET", "/sweeps", "sweeps", USE),
    Operation(
        "POST", "/sweeps", "sweeps", statuses(201, 201, 201, 201), upload=True, form={"spec": GRID}
    ),
    Operation("GET", S, "sweeps/{sweep}", READ_OWN),
    Operation("GET", S + "/results", "sweeps/{sweep}/results", READ_OWN),
    Operation("POST", S + "/pause", "sweeps/{sweep}/pause", statuses(200, 404, 200, 200)),
    Operation("POST", S + "/resume", "sweeps/{sweep}/resume", statuses(200, 404, 200, 200)),
    Operation("POST", S + "/retry", "sweeps/{sweep}/retry", statuses(409, 404, 409, 409)),
    Operation("POST", S + "/cancel", "sweeps/{fresh_sweep}/cancel", statuses(200, 404, 200, 200)),
    Operation("GET", "/profiles", "profiles", USE),
    Operation("GET", "/queue", "queue", USE),
    Operation("PUT", "/queue", "queue", ADMIN_ONLY, json={"paused": True}),
    Operation("GET", "/weights", "weights", USE),
    Operation(
        "PUT", "/weights", "weights", ADMIN_ONLY, json={"kind": "user", "name": "az-x", "weight": 1}
    ),
    Operation("GET", "/usage", "usage", USE),
    Operation("GET", "/gpus", "gpus", USE),
    Operation(
        "POST",
        "/gpus/end",
        "gpus/end",
        statuses(403, 403, 404, 404),
        json={"owner": "az-nobody", "server": "lab"},
    ),
    Operation("GET", "/datasets", "datasets", USE),
    Operation(
        "POST",
        "/datasets",
        "datasets",
        statuses(201, 201, 201, 201),
        json={"name": "{caller}", "readers": "owner"},
    ),
    Operation("GET", "/datasets/{name}", "datasets/{dataset}", READ_OWN),
    Operation(
        "DELETE", "/datasets/{name}", "datasets/{fresh_dataset}", statuses(204, 404, 204, 204)
    ),
    Operation(
        "POST",
        "/datasets/{name}/complete",
        "datasets/{dataset}/complete",
        statuses(400, 404, 400, 400),
    ),
    Operation("OPTIONS", "/uploads", "uploads", dict.fromkeys(CALLERS, 204)),
    Operation("POST", "/uploads", "uploads", statuses(412, 412, 412, 412)),
    Operation(
        "HEAD",
        "/uploads/{upload_id}",
        "uploads/unosuchupload",
        statuses(404, 404, 404, 404),
        headers=TUS,
    ),
    Operation(
        "PATCH",
        "/uploads/{upload_id}",
        "uploads/unosuchupload",
        statuses(404, 404, 404, 404),
        headers={**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    ),
    Operation(
        "DELETE",
        "/uploads/{upload_id}",
        "uploads/unosuchupload",
        statuses(404, 404, 404, 404),
        headers=TUS,
    ),
    Operation("GET", "/quotas", "quotas", USE),
    Operation(
        "PUT", "/quotas", "quotas", ADMIN_ONLY, json={"kind": "user", "name": "az-x", "bytes": None}
    ),
    Operation("GET", "/schedule-preview", "schedule-preview?schedule=0+6+*+*+1", USE),
    Operation("GET", "/definitions", "definitions", USE),
    Operation(
        "POST",
        "/definitions",
        "definitions",
        statuses(201, 201, 201, 201),
        upload=True,
        form=YEARLY,
    ),
    Operation("GET", D, "definitions/{definition}", READ_OWN),
    Operation("PATCH", D, "definitions/{definition}", READ_OWN, json={"paused": True}),
    Operation("DELETE", D, "definitions/{fresh_definition}", statuses(204, 404, 204, 204)),
    Operation("POST", D + "/pause", "definitions/{definition}/pause", READ_OWN),
    Operation("POST", D + "/resume", "definitions/{definition}/resume", READ_OWN),
    Operation("GET", D + "/jobs", "definitions/{definition}/jobs", READ_OWN),
    Operation("GET", "/notifications", "notifications", USE),
    Operation("PUT", "/notifications", "notifications", USE, json={"on_end": True}),
    Operation("POST", "/notifications/test", "notifications/test", statuses(400, 400, 400, 400)),
]


@pytest.fixture(scope="module")
def world(hub: HubProcess) -> dict[str, Any]:
    """The callers' tokens and the owner's jobs (a failed one with a file, a queued one) and
    datasets."""
    owner = hub.ready_user("az-owner")
    other, boss, admin = hub.ready_user("az-other"), hub.ready_user("az-boss"), hub.admin()
    mine = Batch(owner)
    failing = notebook("open('out.txt', 'w').write('kept')", "raise ValueError('stop here')")
    finished = mine.wait(mine.submit("done.ipynb", failing).json()["id"])
    assert finished["state"] == "failed", finished
    mine.call("POST", f"jobs/{finished['id']}/release")
    owner.wait_server(finished["server_name"], ready=False)
    Batch(admin).call("PUT", "queue", json={"paused": True})
    queued = mine.submit("wait.ipynb", notebook("x = 1")).json()["id"]
    created = mine.call("POST", "datasets", json={"name": "az-data", "readers": "owner"})
    assert created.status_code == 201, created.text
    sweep = mine.call(
        "POST", "sweeps", files={"file": ("s.ipynb", SWEPT)}, data={"spec": GRID, "profile": "cpu"}
    )
    assert sweep.status_code == 201, sweep.text
    files = {"file": ("d.ipynb", notebook("x = 1"))}
    definition = mine.call("POST", "definitions", files=files, data=YEARLY)
    assert definition.status_code == 201, definition.text
    tokens = {
        "owner": owner.token,
        "other": other.token,
        "batch_admin": boss.token,
        "hub_admin": admin.token,
        "anonymous": None,
        "access_only": mint(owner, ["access:services!service=batch"]),
        "server_token": mint(owner, [f"access:servers!server=az-owner/batch-{queued}"]),
        "service": hub.service_token("idle-culler"),
    }
    yield {
        "owner": mine,
        "tokens": tokens,
        "finished": finished["id"],
        "queued": queued,
        "dataset": "az-data",
        "sweep": sweep.json()["id"],
        "definition": definition.json()["id"],
    }
    for job in mine.call("GET", "jobs?state=queued&limit=500").json()["jobs"]:
        mine.call("POST", f"jobs/{job['id']}/cancel")
    Batch(admin).call("PUT", "queue", json={"paused": False})


def request(
    hub: HubProcess,
    world: dict[str, Any],
    operation: Operation,
    caller: str,
    fresh: Callable[[str], str],
) -> requests.Response:
    path = operation.path.format(
        finished=world["finished"],
        queued=world["queued"],
        dataset=world["dataset"],
        sweep=world["sweep"],
        fresh_sweep=fresh("sweep") if "{fresh_sweep}" in operation.path else "",
        fresh=fresh("job") if "{fresh}" in operation.path else "",
        fresh_dataset=fresh("dataset") if "{fresh_dataset}" in operation.path else "",
        definition=world["definition"],
        fresh_definition=fresh("definition") if "{fresh_definition}" in operation.path else "",
    )
    token = world["tokens"][caller]
    headers = {"Authorization": f"token {token}"} if token else {}
    headers.update(operation.headers or {})
    url = f"{hub.url}/services/batch/api/v1/{path}"
    files = {"file": ("t.ipynb", SWEPT)} if operation.upload else None
    body = operation.json
    if isinstance(body, dict) and body.get("name") == "{caller}":
        body = {**body, "name": "az-" + caller.replace("_", "-")}
    return requests.request(
        operation.method,
        url,
        headers=headers,
        json=body,
        files=files,
        data=operation.form,
        timeout=60,
    )


def test_the_matrix_covers_every_documented_operation(hub: HubProcess) -> None:
    document = yaml.safe_load(
        requests.get(f"{hub.url}/services/batch/api/v1/openapi.yaml", timeout=30).text
    )
    methods = ("get", "post", "put", "patch", "delete", "head", "options")
    documented = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in methods
    }
    assert {(op.method, op.doc) for op in OPERATIONS} == documented


@pytest.mark.parametrize("caller", CALLERS)
def test_each_caller_gets_exactly_what_it_may(
    hub: HubProcess, world: dict[str, Any], caller: str
) -> None:
    def fresh(kind: str) -> str:
        if kind == "job":
            return world["owner"].submit("fresh.ipynb", notebook("x = 1")).json()["id"]
        if kind == "sweep":
            # A grid of its own, so the owner's earlier sweeps are not found again.
            spec = {"kind": "grid", "grid": {"x": [caller]}}
            data = {"spec": json.dumps(spec), "profile": "cpu"}
            files = {"file": ("fresh.ipynb", notebook("y = x", parameters="x = 'a'"))}
            return world["owner"].call("POST", "sweeps", files=files, data=data).json()["id"]
        if kind == "definition":
            files = {"file": ("fresh.ipynb", notebook("x = 1"))}
            made = world["owner"].call("POST", "definitions", files=files, data=YEARLY)
            return made.json()["id"]
        name = "az-gone-" + caller.replace("_", "-")
        world["owner"].call("POST", "datasets", json={"name": name, "readers": "owner"})
        return name

    seen = {}
    for operation in OPERATIONS:
        r = request(hub, world, operation, caller, fresh)
        seen[(operation.method, operation.path)] = r.status_code
        if r.status_code >= 400 and operation.method != "HEAD":
            assert r.headers.get("Content-Type", "").startswith("application/json"), (
                operation,
                r.status_code,
                r.text[:300],
            )
            body = r.json()
            assert body["status"] == r.status_code and body["message"], (operation, body)
    expected = {(op.method, op.path): op.expected[caller] for op in OPERATIONS}
    wrong = {k: (seen[k], expected[k]) for k in expected if seen[k] != expected[k]}
    assert not wrong, f"{caller}: (got, expected) {wrong}"


def test_another_users_job_is_answered_as_no_job_at_all(
    hub: HubProcess, world: dict[str, Any]
) -> None:
    other = HubUser(hub, "az-other", "")
    other.token = world["tokens"]["other"]
    batch = Batch(other)
    theirs = batch.call("GET", f"jobs/{world['finished']}")
    nothing = batch.call("GET", "jobs/zzzzzzzzzz")
    assert theirs.status_code == nothing.status_code == 404
    assert theirs.json()["message"].replace(world["finished"], "X") == nothing.json()[
        "message"
    ].replace("zzzzzzzzzz", "X")
