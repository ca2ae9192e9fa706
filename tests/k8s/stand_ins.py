"""What a spawner reads of the hub when it runs outside one (tests and benchmarks)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from jupyterhub.objects import Hub


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
