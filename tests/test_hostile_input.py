"""Every hostile input batchhub has met, in one table: each gets a 4xx with a sentence a person
understands, stores nothing, and never makes the service fail (no 5xx, no traceback).
"""

from __future__ import annotations

import http.client
import json
import zipfile
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import pytest
import requests

from tests.batch import Batch, notebook, zip_bytes
from tests.hub import HubProcess

PARAMETRISED = notebook("y = lr * epochs", parameters="lr: float = 0.1\nepochs = 3\nname = 'run'")
DEEP = 100_000  # far past any nesting limit, and past Python's recursion limit


def deep_json(opening: str = "[", closing: str = "]", depth: int = DEEP) -> bytes:
    return (opening * depth + closing * depth).encode()


def deep_notebook() -> bytes:
    body = '{"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {"x": '
    return (body + "[" * 5000 + "]" * 5000 + "}}").encode()


def kernel_as(kernelspec: dict[str, str] | None) -> bytes:
    """A notebook with a parameters cell whose kernelspec is `kernelspec` (None: none at all)."""
    nb = json.loads(PARAMETRISED)
    if kernelspec is None:
        del nb["metadata"]["kernelspec"]
    else:
        nb["metadata"]["kernelspec"] = kernelspec
    return json.dumps(nb).encode()


def symlink_zip() -> bytes:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("link.py")
        info.external_attr = 0o120777 << 16
        archive.writestr(info, "/etc/passwd")
        archive.writestr("main.py", "print(1)")
    return buffer.getvalue()


def multipart(parts: list[tuple[str, str | None, bytes]]) -> tuple[bytes, str]:
    """A form built by hand (requests would not send repeated or odd parts)."""
    boundary = "hostileboundary7d3f"
    chunks = []
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        chunks.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode())
        chunks.append(content + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


@dataclass
class Case:
    """One hostile request and the refusal it must get."""

    id: str
    method: str
    path: str  # under /services/batch/api/v1/; {job} is a job of the user
    status: int
    message: str
    who: str = "user"  # user, admin or anonymous
    body: bytes | None = None
    content_type: str = "application/json"
    upload: tuple[str, bytes] | None = None  # a file name and content, sent as a job
    fields: dict[str, str] = field(default_factory=dict)


BAD_UPLOADS = [
    ("not-json.ipynb", b"hello", {}, "not a notebook"),
    ("no-cells.ipynb", b'{"a": 1}', {}, "not a notebook"),
    (
        "bad-format.ipynb",
        b'{"cells": "x", "nbformat": 4, "nbformat_minor": 5, "metadata": {}}',
        {},
        "not a valid notebook",
    ),
    ("deep.ipynb", deep_notebook(), {}, "nests deeper than"),
    # papermill can only write parameters in a language it knows.
    ("no-kernel.ipynb", kernel_as(None), {}, "does not name its kernel"),
    (
        "odd-kernel.ipynb",
        kernel_as({"name": "k", "display_name": "K", "language": "cobol"}),
        {},
        "cannot read this notebook's parameters",
    ),
    ("nan.ipynb", b'{"cells": [], "nbformat": 4, "metadata": {"x": NaN}}', {}, "not a JSON"),
    ("script.sh", b"echo hi", {}, "cannot run"),
    ("bad.py", b"def (:\n", {}, "line 1"),
    ("deep.py", b"x = " + b"(" * 5000 + b")" * 5000, {}, "deep.py"),
    ("a\x07b.ipynb", PARAMETRISED, {}, "control character"),
    ("a\u202eb.ipynb", PARAMETRISED, {}, "control character"),
    ("<b>x</b>.ipynb", PARAMETRISED, {}, "'<'"),
    (".hidden.ipynb", PARAMETRISED, {}, "must not start with a dot"),
    ("x" * 300 + ".ipynb", PARAMETRISED, {}, "1 to 255 characters"),
    (
        "up.zip",
        zip_bytes({"../evil.py": "x=1", "main.py": "x=1"}),
        {"entry_point": "main.py"},
        "outside the archive",
    ),
    ("abs.zip", zip_bytes({"/etc/evil.py": "x=1"}), {"entry_point": "main.py"}, "absolute path"),
    ("link.zip", symlink_zip(), {"entry_point": "main.py"}, "symbolic link"),
    (
        "many.zip",
        zip_bytes({f"m{i}.py": "" for i in range(25)}),
        {"entry_point": "m1.py"},
        "at most 20",
    ),
    (
        "bomb.zip",
        zip_bytes({"main.py": "x=1", "zeros.txt": b"\0" * (3 * 2**20)}),
        {"entry_point": "main.py"},
        "more than",
    ),
    ("noentry.zip", zip_bytes({"main.py": "x=1"}), {"entry_point": "train.py"}, "not in"),
    ("train.ipynb", PARAMETRISED, {"profile": "nope"}, "unknown profile"),
    ("train.ipynb", PARAMETRISED, {"time_limit": "999999"}, "maximum"),
    ("train.ipynb", PARAMETRISED, {"time_limit": "²"}, "is not a duration: write it like 90m"),
    ("train.ipynb", PARAMETRISED, {"time_limit": "9" * 5000}, "is not a duration"),
    ("train.ipynb", PARAMETRISED, {"time_limit": "0"}, "at least 1 second"),
    ("train.ipynb", PARAMETRISED, {"time_limit": "-5"}, "is not a duration"),
    ("train.ipynb", PARAMETRISED, {"time_limit": "9" * 20}, "is not a duration"),
    ("train.ipynb", PARAMETRISED, {"priority": str(10**20)}, "priority must be between"),
    ("train.ipynb", PARAMETRISED, {"priority": "5"}, "only batch admins"),
    ("train.ipynb", PARAMETRISED, {"profile": "staff-gpu"}, "not available to you"),
    (
        "train.ipynb",
        PARAMETRISED,
        {"profile": "a100-1"},
        "profile 'a100-1' needs 1 GPU of type a100 but this machine has 0",
    ),
    ("train.ipynb", PARAMETRISED, {"group": "staff"}, "not a member of group 'staff'"),
    ("train.ipynb", PARAMETRISED, {"parameters": "[" * DEEP}, "nests deeper than"),
    ("train.ipynb", PARAMETRISED, {"parameters": '{"lr": 1' + "0" * 5000 + "}"}, "digits"),
    ("train.ipynb", PARAMETRISED, {"parameters": "{lr: 1}"}, "parameters is not valid JSON"),
]

CASES = [
    *(
        Case(
            f"upload-{i}",
            "POST",
            "jobs",
            403 if "only batch admins" in message else 400,
            message,
            upload=(name, content),
            fields=fields,
        )
        for i, (name, content, fields, message) in enumerate(BAD_UPLOADS)
    ),
    Case("deep-body-anonymous", "POST", "jobs", 401, "log in", "anonymous", deep_json()),
    Case("deep-body-user", "POST", "jobs", 400, "nests deeper than", body=deep_json()),
    Case("deep-object", "POST", "jobs", 400, "nests deeper than", body=deep_json("{", "}")),
    Case("deep-queue-admin", "PUT", "queue", 400, "nests deeper than", "admin", deep_json()),
    Case("deep-queue-user", "PUT", "queue", 403, "only batch admins", body=deep_json()),
    Case("deep-weights", "PUT", "weights", 400, "nests deeper than", "admin", deep_json()),
    Case("deep-priority", "PATCH", "jobs/{job}", 400, "nests deeper than", "admin", deep_json()),
    Case(
        "deep-turn-anonymous", "POST", "turns", 401, "server's API token", "anonymous", deep_json()
    ),
    Case(
        "deep-events-anonymous",
        "POST",
        "jobs/{job}/runner/events",
        401,
        "token",
        "anonymous",
        deep_json(),
    ),
    Case(
        "empty-job-parameters-list",
        "POST",
        "jobs",
        400,
        "parameters must be a JSON object",
        body=b'{"kind": "empty", "parameters": [1, 2]}',
    ),
    Case(
        "empty-job-bad-time",
        "POST",
        "jobs",
        400,
        "is not a duration",
        body=b'{"kind": "empty", "time_limit": "\xc2\xb2"}',
    ),
    Case("json-not-for-files", "POST", "jobs", 400, "only for", body=b'{"kind": "notebook"}'),
    Case(
        "empty-job-gpu-type-missing",
        "POST",
        "jobs",
        400,
        "needs 1 GPU of type a100 but this machine has 0",
        body=b'{"kind": "empty", "profile": "a100-1"}',
    ),
    Case(
        "long-number",
        "PUT",
        "weights",
        400,
        "more than 40 digits",
        "admin",
        b'{"kind": "user", "name": "x", "weight": 1' + b"0" * 5000 + b"}",
    ),
    Case(
        "nan",
        "PUT",
        "weights",
        400,
        "not a JSON number",
        "admin",
        b'{"kind": "user", "name": "x", "weight": NaN}',
    ),
    Case(
        "infinity",
        "PUT",
        "weights",
        400,
        "not a JSON number",
        "admin",
        b'{"kind": "user", "name": "x", "weight": Infinity}',
    ),
    Case(
        "priority-huge",
        "PATCH",
        "jobs/{job}",
        400,
        "between -1000 and 1000",
        "admin",
        b'{"priority": 100000000000000000000}',
    ),
    Case("priority-user", "PATCH", "jobs/{job}", 403, "only batch admins", body=b'{"priority": 1}'),
    Case("limit-unicode-digit", "GET", "jobs?limit=\u00b2", 400, "limit must be a whole number"),
    Case("limit-zero", "GET", "jobs?limit=0", 400, "limit must be between 1"),
    Case("offset-huge", "GET", f"jobs?offset={10**20}", 400, "offset must be between"),
    Case("state-unknown", "GET", "jobs?state=exploded", 400, "unknown state"),
    Case("after-huge", "GET", f"jobs/{{job}}/logs?after={10**20}", 400, "after must be between"),
    Case("job-id-long", "GET", "jobs/" + "a" * 5000, 404, "no job"),
    Case("job-id-unicode", "GET", "jobs/%E2%80%AE%00x", 404, "no job"),
    Case("turn-id-long", "GET", "turns/" + "t" * 5000, 404, "no turn"),
    Case("queue-not-object", "PUT", "queue", 400, '"paused"', "admin", b"[true]"),
    Case("body-not-json", "PUT", "queue", 400, "not valid JSON", "admin", b"\xff\xfe"),
    Case("two-files", "POST", "jobs", 400, "send one file per job", content_type="multipart"),
    Case("field-twice", "POST", "jobs", 400, "was sent more than once", content_type="multipart"),
    Case("null-in-filename", "POST", "jobs", 400, "malformed", content_type="multipart"),
]
MULTIPART_BODIES = {
    "two-files": [("file", "a.ipynb", PARAMETRISED), ("file", "b.ipynb", PARAMETRISED)],
    "field-twice": [
        ("file", "a.ipynb", PARAMETRISED),
        ("profile", None, b"cpu"),
        ("profile", None, b"gpu-1"),
    ],
    "null-in-filename": [("file", "a\0b.ipynb", PARAMETRISED)],
}


@pytest.fixture(scope="module")
def cast(hub: HubProcess) -> dict[str, Any]:
    """A user with a queued job (the queue paused meanwhile), the admin, the hub's log size."""
    user, admin = Batch(hub.ready_user("hostile-frank")), Batch(hub.admin())
    admin.call("PUT", "queue", json={"paused": True})
    job = user.submit("ok.ipynb", notebook("x = 1")).json()
    log_size = hub.log_path.stat().st_size if hub.log_path else 0
    yield {"user": user, "admin": admin, "job": job["id"], "log_size": log_size}
    user.call("POST", f"jobs/{job['id']}/cancel")
    admin.call("PUT", "queue", json={"paused": False})


def total_jobs(admin: Batch) -> int:
    return admin.call("GET", "jobs?limit=1").json()["total"]


def stored_files(hub: HubProcess) -> tuple[set[str], set[str]]:
    """The file store's job folders, and the inputs staged for jobs (folders with an input
    folder in staging: what a check worker writes before the job is stored)."""
    files = hub.state_dir / "state" / "batch" / "files"
    staged = {p.name for p in (files / "staging").iterdir() if (p / "input").is_dir()}
    return {p.name for p in (files / "jobs").iterdir()}, staged


def send(hub: HubProcess, cast: dict[str, Any], case: Case) -> requests.Response:
    url = f"{hub.url}/services/batch/api/v1/{case.path.replace('{job}', cast['job'])}"
    headers: dict[str, str] = {}
    if case.who != "anonymous":
        headers["Authorization"] = f"token {cast[case.who].user.token}"
    if case.upload is not None:
        name, content = case.upload
        data = {"profile": "cpu", **case.fields}
        files = {"file": (name, content)}
        return requests.request(
            case.method, url, headers=headers, data=data, files=files, timeout=60
        )
    body = case.body
    content_type = case.content_type
    if content_type == "multipart":
        body, content_type = multipart(MULTIPART_BODIES[case.id])
    if body is not None:
        headers["Content-Type"] = content_type
    return requests.request(case.method, url, headers=headers, data=body, timeout=60)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_refused_with_a_message_and_nothing_stored(
    hub: HubProcess, cast: dict[str, Any], case: Case
) -> None:
    before = total_jobs(cast["admin"])
    files_before = stored_files(hub)
    r = send(hub, cast, case)
    assert r.status_code == case.status, (r.status_code, r.text[:300])
    message = r.json()["message"]
    assert case.message in message, message
    assert len(message) < 1000  # a sentence, not an echo of the input
    assert total_jobs(cast["admin"]) == before
    # No file either: not a job folder, not an input staged by the check and then refused.
    assert stored_files(hub) == files_before
    job = cast["user"].job(cast["job"])
    assert job["state"] == "queued" and job["priority"] == 0


def test_an_upload_over_the_limit_is_refused_unread(cast: dict[str, Any]) -> None:
    user = cast["user"]
    before = total_jobs(cast["admin"])
    big = notebook("x = '" + "a" * (2 * 2**20) + "'")
    r = user.submit("big.ipynb", big)
    assert r.status_code == 413 and "larger than the limit" in r.json()["message"]
    assert total_jobs(cast["admin"]) == before


def test_a_refused_body_is_read_first_so_the_connection_answers_the_next_request(
    hub: HubProcess,
) -> None:
    """Straight to the service, as the proxy talks to it: a body refused before it was read
    (no login) still gets its 401, and the same connection then answers another request; an
    answer that left the body unread would close (and reset) it, which a proxy that is still
    sending turns into a 503."""
    body = deep_json()
    connection = http.client.HTTPConnection("127.0.0.1", hub.values["batch"]["port"], timeout=30)
    try:
        connection.request(
            "POST",
            "/services/batch/api/v1/jobs",
            body=body,
            headers={"Content-Type": "application/json", "Content-Length": str(len(body))},
        )
        refused = connection.getresponse()
        message = json.loads(refused.read())["message"]
        assert refused.status == 401 and "log in" in message
        assert refused.getheader("Connection", "").lower() != "close"
        connection.request("GET", "/services/batch/api/v1/")
        again = connection.getresponse()
        assert again.status == 200 and json.loads(again.read())["version"] == "1"
    finally:
        connection.close()


def test_no_hostile_input_made_the_service_fail(hub: HubProcess, cast: dict[str, Any]) -> None:
    """Run last in this module: the service logged no unexpected exception meanwhile."""
    assert hub.log_path is not None
    with hub.log_path.open("rb") as log:
        log.seek(cast["log_size"])
        added = log.read().decode(errors="replace")
    failures = [
        line for line in added.splitlines() if "Uncaught exception" in line or " 500 " in line
    ]
    assert not failures, "\n".join(failures[:10])
