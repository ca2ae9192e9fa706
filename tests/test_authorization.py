"""Who may do what: every operation of the OpenAPI document, asked by every kind of caller.

Callers: the job's owner, another user, a batch admin (a member of a batch-admin group, not a
hub admin), a hub admin, nobody (no credentials), a token that holds only access to the
service, a token the owner made for her job's own server, and another hub service's token.
Another user's job answers 404 exactly as a job that does not exist: nothing leaks.
"""

from __future__ import annotations

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
    """One request of the matrix: method, path (with {queued}, {finished}, {fresh}), body."""

    method: str
    path: str
    expected: dict[str, int]
    json: Any = None
    upload: bool = False


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

OPERATIONS = [
    Operation("GET", "", EVERYONE),
    Operation("GET", "openapi.yaml", EVERYONE),
    Operation("GET", "jobs", USE),
    Operation("POST", "jobs", statuses(201, 201, 201, 201), json={"kind": "empty"}),
    Operation("POST", "inspect", USE, upload=True),
    Operation("GET", "jobs/{finished}", READ_OWN),
    Operation("GET", "jobs/nosuchjob1", statuses(404, 404, 404, 404)),
    Operation("PATCH", "jobs/{queued}", statuses(403, 404, 200, 200), json={"priority": 1}),
    Operation("DELETE", "jobs/{queued}", statuses(409, 404, 409, 409)),
    Operation("POST", "jobs/{fresh}/cancel", statuses(200, 404, 200, 200)),
    Operation("POST", "jobs/{finished}/release", statuses(409, 404, 409, 409)),
    Operation("GET", "jobs/{finished}/input", READ_OWN),
    Operation("GET", "jobs/{finished}/output", READ_OWN),
    Operation("GET", "jobs/{finished}/output.html", READ_OWN),
    Operation("GET", "jobs/{finished}/logs", READ_OWN),
    Operation("GET", "jobs/{queued}/runner/spec", RUNNER),
    Operation("GET", "jobs/{queued}/runner/input", RUNNER),
    Operation("POST", "jobs/{queued}/runner/events", RUNNER, json={"events": []}),
    Operation("PUT", "jobs/{queued}/runner/output", RUNNER, json={"cells": []}),
    Operation(
        "POST",
        "turns",
        statuses(403, 403, 403, 403, restricted=403),
        json={"server": "g", "profile": "gpu-1"},
    ),
    Operation("GET", "turns/tnosuchturn0", statuses(404, 404, 404, 404, restricted=404)),
    Operation("DELETE", "turns/tnosuchturn0", statuses(404, 404, 404, 404, restricted=404)),
    Operation("GET", "profiles", USE),
    Operation("GET", "queue", USE),
    Operation("PUT", "queue", ADMIN_ONLY, json={"paused": True}),
    Operation("GET", "weights", USE),
    Operation("PUT", "weights", ADMIN_ONLY, json={"kind": "user", "name": "az-x", "weight": 1}),
    Operation("GET", "usage", USE),
]


@pytest.fixture(scope="module")
def world(hub: HubProcess) -> dict[str, Any]:
    """The callers' tokens and the owner's jobs (a finished one, a queued one)."""
    owner = hub.ready_user("az-owner")
    other, boss, admin = hub.ready_user("az-other"), hub.ready_user("az-boss"), hub.admin()
    mine = Batch(owner)
    finished = mine.wait(mine.submit("done.ipynb", notebook("print('hi')")).json()["id"])
    mine.call("POST", f"jobs/{finished['id']}/release")
    owner.wait_server(finished["server_name"], ready=False)
    Batch(admin).call("PUT", "queue", json={"paused": True})
    queued = mine.submit("wait.ipynb", notebook("x = 1")).json()["id"]
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
    yield {"owner": mine, "tokens": tokens, "finished": finished["id"], "queued": queued}
    for job in mine.call("GET", "jobs?state=queued&limit=500").json()["jobs"]:
        mine.call("POST", f"jobs/{job['id']}/cancel")
    Batch(admin).call("PUT", "queue", json={"paused": False})


def request(
    hub: HubProcess,
    world: dict[str, Any],
    operation: Operation,
    caller: str,
    fresh: Callable[[], str],
) -> requests.Response:
    path = operation.path.format(
        finished=world["finished"],
        queued=world["queued"],
        fresh=fresh() if "{fresh}" in operation.path else "",
    )
    token = world["tokens"][caller]
    headers = {"Authorization": f"token {token}"} if token else {}
    url = f"{hub.url}/services/batch/api/v1/{path}"
    files = {"file": ("t.ipynb", notebook("x = 1"))} if operation.upload else None
    return requests.request(
        operation.method, url, headers=headers, json=operation.json, files=files, timeout=60
    )


def test_the_matrix_covers_every_documented_operation(hub: HubProcess) -> None:
    document = yaml.safe_load(
        requests.get(f"{hub.url}/services/batch/api/v1/openapi.yaml", timeout=30).text
    )
    documented = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    covered = set()
    for op in OPERATIONS:
        path = "/" + op.path
        for name, placeholder in (
            ("finished", "{job_id}"),
            ("queued", "{job_id}"),
            ("fresh", "{job_id}"),
        ):
            path = path.replace("{" + name + "}", placeholder)
        path = path.replace("nosuchjob1", "{job_id}").replace("tnosuchturn0", "{turn_id}")
        covered.add((op.method, path))
    assert covered == documented


@pytest.mark.parametrize("caller", CALLERS)
def test_each_caller_gets_exactly_what_it_may(
    hub: HubProcess, world: dict[str, Any], caller: str
) -> None:
    def fresh() -> str:
        return world["owner"].submit("fresh.ipynb", notebook("x = 1")).json()["id"]

    seen = {}
    for operation in OPERATIONS:
        r = request(hub, world, operation, caller, fresh)
        seen[(operation.method, operation.path)] = r.status_code
        if r.status_code >= 400:
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
