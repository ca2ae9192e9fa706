"""API: turns in the one GPU line, for interactive GPU servers (called by the spawner)."""

from __future__ import annotations

from tornado import web

from batch_service.handlers import BaseHandler
from batch_service.identity import Identity
from batch_service.turns import TurnService


class TurnBase(BaseHandler):
    """The caller is a server's own token (checked per turn)."""

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


class TurnsHandler(TurnBase):
    """POST: join the line."""

    def post(self) -> None:
        """Create a waiting turn and run a scheduler pass soon."""
        body = self.body_json()
        body = body if isinstance(body, dict) else {}
        turn = self.turns.ask(self.server_identity, body.get("server"), body.get("profile"))
        self.settings["batch_kick"]()
        self.write_json(turn, 201)


class TurnHandler(TurnBase):
    """GET a turn; DELETE it."""

    def get(self, turn_id: str) -> None:
        """State and position."""
        self.write_json(self.turns.get(self.server_identity, turn_id))

    def delete(self, turn_id: str) -> None:
        """Leave the line or give admitted GPUs back."""
        self.turns.leave(self.server_identity, turn_id)
        self.settings["batch_kick"]()
        self.set_status(204)
        self.finish()


routes = [
    (r"turns", TurnsHandler),
    (r"turns/(?P<turn_id>[^/]+)", TurnHandler),
]
