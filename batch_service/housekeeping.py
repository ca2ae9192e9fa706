"""Housekeeping with the hub: batch servers that stopped but are still listed go.

The hub keeps a named server after it stops unless it is removed; after a hub restart (or a
stop that did not remove it) a `batch-<job id>` server would stay on the user's lists for good.
Every so often the service removes stopped batch servers; running ones are the scheduler's.
"""

from __future__ import annotations

import logging

from tornado.ioloop import IOLoop, PeriodicCallback

from batch_service.hub_client import HubClient, HubError, HubUnreachable
from spawner.profiles import BATCH_SERVER_PREFIX

log = logging.getLogger("batchhub.housekeeping")


async def remove_stopped_batch_servers(hub: HubClient) -> list[str]:
    """Remove every stopped batch server the hub still lists; return "user/server" of each."""
    removed: list[str] = []
    offset, limit = 0, 200
    while True:
        _, users = await hub.call(
            "GET", f"users?include_stopped_servers=1&offset={offset}&limit={limit}"
        )
        users = users.get("items", users) if isinstance(users, dict) else users
        for user in users or []:
            for name, server in (user.get("servers") or {}).items():
                stopped = server.get("stopped") or not (
                    server.get("ready") or server.get("pending")
                )
                if name.startswith(BATCH_SERVER_PREFIX) and stopped:
                    await hub.stop_server(user["name"], name)
                    removed.append(f"{user['name']}/{name}")
        if not users or len(users) < limit:
            return removed
        offset += limit


class Housekeeping:
    """Runs the removal at start and then every `interval` seconds."""

    def __init__(self, hub: HubClient, interval: float = 600) -> None:
        self.hub = hub
        self._callback = PeriodicCallback(self.run, interval * 1000)

    async def run(self) -> None:
        """One round; the hub being away is fine (the next round tries again)."""
        try:
            removed = await remove_stopped_batch_servers(self.hub)
        except (HubError, HubUnreachable) as e:
            log.warning("could not tidy stopped batch servers: %s", e)
            return
        if removed:
            log.info("removed %d stopped batch servers: %s", len(removed), ", ".join(removed))

    def start(self) -> None:
        """First round soon, then periodically."""
        self._callback.start()
        IOLoop.current().add_callback(self.run)

    def stop(self) -> None:
        """No more rounds."""
        self._callback.stop()
