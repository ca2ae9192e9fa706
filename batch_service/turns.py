"""The one GPU line, interactive side: turns of GPU servers that wait beside batch jobs.

A turn is created by an interactive GPU server's spawner (with that server's own token and the
hub's turn key) while the hub starts that server, waits with a position, is admitted by the
scheduler when its GPUs are free, and lives exactly as long as its server in the hub: asking to
leave ends an admitted turn only once the hub no longer runs the server. Admitted turns hold
GPUs exactly like running batch jobs; an ended one stays until the scheduler has charged the
GPU time it held, then goes.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from batch_service.clock import now
from batch_service.errors import BatchError, NotFound
from batch_service.events import Events
from batch_service.hub_client import HubError, HubUnreachable
from batch_service.identity import Identity
from batch_service.line import Line, not_waiting
from batch_service.policy import Request
from batch_service.runs import HubServerLookup
from batch_service.store import Store, Turn
from spawner.credentials import same, turn_key
from spawner.profiles import Profile, takes_turn

WAITING, ADMITTED, ENDED = "waiting", "admitted", "ended"


def _end(session: Session, turn: Turn) -> None:
    """A waiting turn just goes; an admitted one is kept, ended, for its GPU time to settle."""
    if turn.state == ADMITTED:
        turn.state = ENDED
        turn.ended_at = now()
    elif turn.state == WAITING:
        session.delete(turn)


def turn_view(turn: Turn, wait: dict[str, Any] | None) -> dict[str, Any]:
    """The API form of a turn (`wait`: where a waiting turn stands and why, line.py)."""
    if turn.state != WAITING or wait is None:
        wait = not_waiting(turn.reason)
    return {
        "id": turn.id,
        "state": turn.state,
        **wait,
        "server": turn.server,
        "profile": turn.profile,
    }


class TurnService:
    """Turns in the store."""

    def __init__(
        self,
        store: Store,
        profiles: dict[str, Profile],
        signing_key: bytes | None = None,
        hub_server: HubServerLookup | None = None,
    ) -> None:
        self.store = store
        self.profiles = profiles
        self.signing_key = signing_key
        self.hub_server = hub_server
        # Where everyone waiting stands and why: written by each scheduler pass (the app
        # shares the job service's, so jobs and GPU servers are one line).
        self.line = Line()
        # Where an admitted turn is told (notifications); set by the app.
        self.events = Events()

    def check_key(self, identity: Identity, server: str, presented: str | None) -> None:
        """Only the hub's spawner of that server, with that server's token, speaks for it."""
        key = self.signing_key
        if (
            key is None
            or not identity.holds_server(identity.name, server)
            or not same(presented, turn_key(key, identity.name, server))
        ):
            raise BatchError("only the hub may ask for a server's turn", status=403)

    async def hub_model(self, owner: str, server: str) -> dict[str, Any] | None:
        """The hub's model of the server now (503 if the hub cannot be asked)."""
        if self.hub_server is None:
            return None
        try:
            return await self.hub_server(owner, server)
        except (HubError, HubUnreachable):
            raise BatchError("cannot reach the hub to check this server; try again", 503) from None

    async def check_starting(self, owner: str, server: str) -> None:
        """A turn is for a server the hub is starting now, not for a name."""
        model = await self.hub_model(owner, server)
        if model is None or model.get("pending") != "spawn":
            raise BatchError(f"the hub is not starting a server {server[:64]!r} for you", 409)

    def ask(self, identity: Identity, server: Any, profile_name: Any) -> dict[str, Any]:
        """Join the line for one of the caller's own servers (its key already checked)."""
        if not isinstance(server, str) or not isinstance(profile_name, str):
            raise BatchError('send {"server": "<server name>", "profile": "<profile>"}')
        profile = self.profiles.get(profile_name)
        if profile is None or not takes_turn(profile, self.profiles.values()):
            raise BatchError(f"profile {profile_name[:64]!r} needs no turn")
        with self.store.session() as session:
            for existing in session.scalars(
                select(Turn).where(Turn.owner == identity.name, Turn.server == server)
            ).all():
                _end(session, existing)
            turn = Turn(
                id=_turn_id(),
                owner=identity.name,
                server=server,
                profile=profile.name,
                state=WAITING,
                owner_groups=sorted(identity.groups),
                submitted_at=now(),
                reason="",
            )
            session.add(turn)
        return turn_view(turn, self.wait(turn, identity))

    def _owned(self, identity: Identity, turn_id: str, presented: str | None) -> Turn:
        with self.store.session() as session:
            turn = session.get(Turn, turn_id) if len(turn_id) <= 16 else None
        key = self.signing_key
        if (
            turn is None
            or key is None
            or not identity.holds_server(turn.owner, turn.server)
            or not same(presented, turn_key(key, turn.owner, turn.server))
        ):
            raise NotFound(f"no turn {turn_id[:40]!r}")
        return turn

    def get(self, identity: Identity, turn_id: str, presented: str | None) -> dict[str, Any]:
        """A turn with its current position."""
        turn = self._owned(identity, turn_id, presented)
        return turn_view(turn, self.wait(turn, identity) if turn.state == WAITING else None)

    def wait(self, turn: Turn, reader: Identity) -> dict[str, Any]:
        """Position, reason code, words and expected start of a waiting turn."""
        profile = self.profiles.get(turn.profile)
        gpus, gpu_type = (profile.gpus, profile.gpu_type) if profile else (0, None)
        request = Request(
            turn.id, turn.owner, gpus, gpu_type, kind="interactive", submitted_at=turn.submitted_at
        )
        return self.line.fields(
            request,
            reader,
            self.line.is_paused(),
            lambda turn_id: self.positions().get(turn_id),
            last_try=turn.reason,
        )

    async def leave(self, identity: Identity, turn_id: str, presented: str | None) -> bool:
        """Leave the line. An admitted turn holds its GPUs while the hub runs the server, so it
        ends now only if the server is gone or stopping; else reconciliation ends it later.
        Returns True if the turn ended now."""
        turn = self._owned(identity, turn_id, presented)
        if turn.state == ADMITTED:
            forget = getattr(self.hub_server, "forget", None)
            if forget is not None:
                forget(turn.owner)  # the spawner asks as the server stops: look afresh
            model = await self.hub_model(turn.owner, turn.server)
            if model is not None and model.get("pending") != "stop":
                return False
        self.forget(turn_id)
        return True

    def positions(self) -> dict[str, int]:
        """1-based positions of waiting turns (written by the scheduler in its order)."""
        with self.store.session() as session:
            rows = session.execute(
                select(Turn.id, Turn.reason)
                .where(Turn.state == WAITING)
                .order_by(Turn.submitted_at, Turn.id)
            ).all()
        return {row.id: i + 1 for i, row in enumerate(rows)}

    def all(self, session: Session | None = None) -> list[Turn]:
        """Every turn that waits or holds GPUs."""
        query = (
            select(Turn)
            .where(Turn.state.in_([WAITING, ADMITTED]))
            .order_by(Turn.submitted_at, Turn.id)
        )
        if session is not None:
            return list(session.scalars(query))
        with self.store.session() as session:
            return list(session.scalars(query))

    def ended(self, session: Session | None = None) -> list[Turn]:
        """Admitted turns whose servers stopped, their GPU time not yet settled."""
        query = select(Turn).where(Turn.state == ENDED)
        if session is not None:
            return list(session.scalars(query))
        with self.store.session() as session:
            return list(session.scalars(query))

    @staticmethod
    def drop(turn_ids: list[str], session: Session) -> None:
        """Remove ended turns once settled (in the session that saves their charge)."""
        if turn_ids:
            session.execute(delete(Turn).where(Turn.id.in_(turn_ids), Turn.state == ENDED))

    def admit(self, turn_id: str) -> str | None:
        """The scheduler admits a waiting turn; returns its profile (None: not admitted)."""
        with self.store.session() as session:
            turn = session.get(Turn, turn_id)
            if turn is not None and turn.state == WAITING:
                turn.state = ADMITTED
                turn.admitted_at = now()
                turn.reason = ""
                self.events.turn_admitted(turn.id)
                return turn.profile
        return None

    def set_reason(self, turn_id: str, reason: str) -> None:
        """Say why a turn still waits."""
        with self.store.session() as session:
            turn = session.get(Turn, turn_id)
            if turn is not None:
                turn.reason = reason

    def forget(self, turn_id: str) -> None:
        """End a turn whose server stopped or no longer exists."""
        with self.store.session() as session:
            turn = session.get(Turn, turn_id)
            if turn is not None:
                _end(session, turn)


def _turn_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "t" + "".join(secrets.choice(alphabet) for _ in range(11))
