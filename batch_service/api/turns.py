"""API: turns in the one GPU line, for interactive GPU servers (called by the hub's spawner).

A call counts only with the server's own token AND the hub's turn key for that server (the
spawner's, never the user's), and a new turn only for a server the hub is starting now.
"""

from __future__ import annotations

from tornado import web

from batch_service.errors import BatchError
from batch_service.handlers import BaseHandler
from batch_service.identity import Identity
from batch_service.turns import TurnService
from spawner.credentials import TURN_KEY_HEADER


class TurnBase(BaseHandler):
    """The caller is the hub's spawner for one server (checked per turn)."""

    allow_all = True

    @property
    def turns(self) -> TurnService:
        """The turn service."""
        return self.settings["batch_turns"]

    @property
    def server_identity(self) -> Identity:
        """The calling server's identity."""
        model = self.current_user
        if not model:
            raise web.HTTPError(401, "send the server's API token")
        return Identity.from_model(model)

    @property
    def turn_key(self) -> str | None:
        """The key the spawner signed this call with."""
        return self.request.headers.get(TURN_KEY_HEADER)


class TurnsHandler(TurnBase):
    """POST: join the line."""

    async def post(self) -> None:
        """Create a waiting turn and run a scheduler pass soon."""
        identity = self.server_identity  # who asks, before the body is looked at
        body = self.body_json()
        body = body if isinstance(body, dict) else {}
        server, profile = body.get("server"), body.get("profile")
        if not isinstance(server, str) or not isinstance(profile, str):
            raise BatchError('send {"server": "<server name>", "profile": "<profile>"}')
        self.turns.check_key(identity, server, self.turn_key)
        await self.turns.check_starting(identity.name, server)
        turn = self.turns.ask(identity, server, profile)
        self.settings["batch_kick"]()
        self.write_json(turn, 201)


class TurnHandler(TurnBase):
    """GET a turn; DELETE it."""

    def get(self, turn_id: str) -> None:
        """State and position."""
        self.write_json(self.turns.get(self.server_identity, turn_id, self.turn_key))

    async def delete(self, turn_id: str) -> None:
        """Leave the line; an admitted turn ends once the hub no longer runs its server."""
        ended = await self.turns.leave(self.server_identity, turn_id, self.turn_key)
        self.settings["batch_kick"]()
        self.set_status(204 if ended else 202)
        self.finish()


routes = [
    (r"turns", TurnsHandler),
    (r"turns/(?P<turn_id>[^/]+)", TurnHandler),
]
