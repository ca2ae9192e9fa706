"""What a spawner reads of the hub when it runs outside one (tests and benchmarks)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from jupyterhub.objects import Hub

from spawner.credentials import load_or_create_key, sign_ticket

# One signing key for the stand-in hub and batch service of a test or benchmark process, in a
# folder that goes with the process (one left per run would pile up in /tmp).
_KEY_FOLDER = tempfile.mkdtemp(prefix="batchhub-key-")
atexit.register(shutil.rmtree, _KEY_FOLDER, True)
SIGNING_KEY_FILE = Path(_KEY_FOLDER) / "batch_signing.key"


class HubUser:
    """The hub's user, as far as a spawner looks."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.id = abs(hash(name)) % 10_000
        self.url = f"/user/{name}/"
        self.escaped_name = name
        self.groups: list = []
        self.spawners: dict = {}
        self.settings: dict = {}


def hub_side(user: str, server: str) -> dict[str, Any]:
    """Spawner keyword arguments standing in for the hub: user, hub, server record, token."""
    return {
        "user": HubUser(user),
        "hub": Hub(),
        "orm_spawner": SimpleNamespace(
            name=server,
            display_name=server,
            server=None,
            last_activity=None,
            user_options=None,
            state=None,
        ),
        "api_token": "test-token",
        "oauth_client_id": f"jupyterhub-user-{user}",
    }


def as_batch_service(user: str, server: str, options: dict[str, Any]) -> dict[str, Any]:
    """Spawner keyword arguments of a start the batch service asked for, its ticket signed."""
    batch = options.get("batch")
    if batch is not None:
        key = load_or_create_key(SIGNING_KEY_FILE)
        options["batch"] = sign_ticket(
            key, user, server, options.get("profile", ""), batch, time.time()
        )
    return {
        "signing_key_file": str(SIGNING_KEY_FILE),
        "handler": SimpleNamespace(current_user=SimpleNamespace(kind="service", name="batch")),
    }
