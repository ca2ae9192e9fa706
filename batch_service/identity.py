"""Who is asking, and what the hub's RBAC scopes let them do with batch jobs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SUBMIT = "custom:batch:submit"
READ_ALL = "custom:batch:read-all"
ADMIN = "custom:batch:admin"


@dataclass(frozen=True)
class Identity:
    """A hub user as the service sees them: name, groups and scopes."""

    name: str
    scopes: frozenset[str]
    groups: tuple[str, ...] = ()

    @classmethod
    def from_model(cls, model: dict) -> Identity:
        """Build from the hub's user model (HubAuth)."""
        return cls(
            name=str(model["name"]),
            scopes=frozenset(model.get("scopes") or ()),
            groups=tuple(model.get("groups") or ()),
        )

    @property
    def can_submit(self) -> bool:
        """May queue jobs of their own."""
        # A server's token holds the scope filtered to its own user (the hub's server role).
        return SUBMIT in self.scopes or f"{SUBMIT}!user={self.name}" in self.scopes or self.is_admin

    @property
    def is_admin(self) -> bool:
        """May act on anyone's jobs and on the queue."""
        return ADMIN in self.scopes

    @property
    def can_read_all(self) -> bool:
        """May see everyone's jobs, logs and outputs."""
        return READ_ALL in self.scopes or self.is_admin

    @property
    def uses_batch(self) -> bool:
        """May use the batch API at all (a token with only access to the service may not)."""
        return self.can_submit or self.can_read_all

    def may_read(self, owner: str) -> bool:
        """True if this identity may see a job of `owner`."""
        return (owner == self.name and self.can_submit) or self.can_read_all

    def may_change(self, owner: str) -> bool:
        """True if this identity may cancel, delete or release a job of `owner`."""
        return (owner == self.name and self.can_submit) or self.is_admin

    def holds_server(self, owner: str, server: str) -> bool:
        """True if this is that user's named server's own token (not a broader user token)."""
        return self.name == owner and f"access:servers!server={owner}/{server}" in self.scopes


def scope_names(scopes: Iterable[str]) -> list[str]:
    """Batch scopes among a list, for display."""
    return sorted(s for s in scopes if s.startswith("custom:batch:"))
