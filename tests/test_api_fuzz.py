"""schemathesis against the service's own OpenAPI document: generated requests for every
operation, valid and invalid, as a user and as a batch admin. The service never fails (no 5xx)
and answers as it documents (status codes, content types, response schemas).

Examples per operation are bounded to keep the suite inside CI's time budget; the seed is
fixed so a failure repeats.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from schemathesis import checks
from schemathesis.config import SchemathesisConfig

from batch_service.api.queue import OPENAPI
from tests.batch import Batch
from tests.hub import HubProcess

MAX_EXAMPLES = 12
CHECKS = (
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
)


@pytest.fixture(scope="module")
def fuzzed_queue(hub: HubProcess) -> Iterator[dict[str, str]]:
    """The queue paused (generated jobs must not run), and the callers' tokens."""
    admin = Batch(hub.admin())
    user = hub.ready_user("fuzz-user")
    admin.call("PUT", "queue", json={"paused": True})
    yield {"user": user.token or "", "admin": admin.user.token or ""}
    for caller in (Batch(user), admin):
        # Generated job definitions would go on firing for the rest of the session.
        for d in caller.call("GET", "definitions?limit=500").json()["definitions"]:
            caller.call("DELETE", f"definitions/{d['id']}")
        for job in caller.call("GET", "jobs?state=queued&limit=500").json()["jobs"]:
            caller.call("POST", f"jobs/{job['id']}/cancel")
    admin.call("PUT", "queue", json={"paused": False})


def call(case, hub: HubProcess, token: str) -> None:  # type: ignore[no-untyped-def]
    """Send one generated request to the running service and check the answer."""
    case.call_and_validate(
        base_url=f"{hub.url}/services/batch/api/v1",
        headers={"Authorization": f"token {token}"},
        checks=list(CHECKS),
        timeout=60,
    )


# tus PATCH bodies are raw bytes, as octet-stream ones are.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")

# The document in the package is the one the service serves (test_batch_api checks they agree).
schema = schemathesis.openapi.from_path(
    str(OPENAPI),
    config=SchemathesisConfig.from_dict(
        {"seed": 20261129, "generation": {"max-examples": MAX_EXAMPLES}}
    ),
)


@schema.parametrize()
def test_a_user_never_makes_the_service_fail(  # type: ignore[no-untyped-def]
    case, hub: HubProcess, fuzzed_queue: dict[str, str]
) -> None:
    call(case, hub, fuzzed_queue["user"])


@schema.parametrize()
def test_an_admin_never_makes_the_service_fail(  # type: ignore[no-untyped-def]
    case, hub: HubProcess, fuzzed_queue: dict[str, str]
) -> None:
    call(case, hub, fuzzed_queue["admin"])
