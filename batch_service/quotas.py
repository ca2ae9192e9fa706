"""Storage quotas in bytes, per user and per group, for datasets and the uploads filling them.

A user's usage is the size of their ready datasets plus what their unfinished uploads hold or
announced (their Upload-Length). A group's usage is the same over datasets whose readers are
that group. Limits come from the values file (`data.*quota*`); an admin's setting (the quotas
table) replaces the values file's for that user or group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from batch_service.errors import BatchError, TooLarge
from batch_service.identity import Identity
from batch_service.store import Dataset, Quota, Store, Upload

MAX_QUOTA = 2**62


def _human(size: int) -> str:
    from batch_service.artifacts import human_size

    return human_size(size)


@dataclass
class QuotaLimits:
    """The values file's quotas: defaults and per-name settings (bytes)."""

    user_default: int = 100 * 2**30
    group_default: int = 1024 * 2**30
    users: dict[str, int] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)


class QuotaService:
    """Usage, limits and the check made before and while bytes arrive."""

    def __init__(self, store: Store, limits: QuotaLimits) -> None:
        self.store = store
        self.limits = limits

    def limit(self, session: Session, kind: str, name: str) -> int:
        """The quota in force for a user or group."""
        override = session.get(Quota, (kind, name))
        if override is not None:
            return override.bytes
        if kind == "user":
            return self.limits.users.get(name, self.limits.user_default)
        return self.limits.groups.get(name, self.limits.group_default)

    @staticmethod
    def _upload_bytes() -> Any:
        # An upload counts what it announced; with a deferred length, what it holds so far.
        return func.coalesce(
            func.sum(case((Upload.length.is_(None), Upload.offset), else_=Upload.length)), 0
        )

    def usage(self, session: Session, kind: str, name: str, skip_upload: str = "") -> int:
        """Bytes charged to a user or group (optionally leaving one upload out)."""
        if kind == "user":
            ready = select(func.coalesce(func.sum(Dataset.size), 0)).where(
                Dataset.owner == name, Dataset.state == "ready"
            )
            uploads = select(self._upload_bytes()).where(
                Upload.owner == name, Upload.id != skip_upload
            )
        else:
            ready = select(func.coalesce(func.sum(Dataset.size), 0)).where(
                Dataset.readers == "group", Dataset.group_name == name, Dataset.state == "ready"
            )
            uploads = (
                select(self._upload_bytes())
                .join(Dataset, Dataset.id == Upload.dataset_id)
                .where(
                    Dataset.readers == "group",
                    Dataset.group_name == name,
                    Upload.id != skip_upload,
                )
            )
        return int(session.scalar(ready) or 0) + int(session.scalar(uploads) or 0)

    def room(self, session: Session, owner: str, group: str | None, skip_upload: str = "") -> int:
        """Bytes the owner (and the dataset's group) may still add."""
        left = []
        for kind, who in [("user", owner)] + ([("group", group)] if group else []):
            used = self.usage(session, kind, who, skip_upload)
            left.append(self.limit(session, kind, who) - used)
        return max(min(left), 0)

    def check(
        self, session: Session, owner: str, group: str | None, more: int, skip_upload: str = ""
    ) -> None:
        """Refuse (413) if `more` bytes would take the owner or the dataset's group over quota."""
        charged = [("user", owner)] + ([("group", group)] if group else [])
        for kind, name in charged:
            limit = self.limit(session, kind, name)
            used = self.usage(session, kind, name, skip_upload)
            if used + more > limit:
                whose = "your" if kind == "user" else f"group {name!r}'s"
                raise TooLarge(
                    f"this would take {whose} storage to {_human(used + more)}, over the quota "
                    f"of {_human(limit)} ({_human(max(limit - used, 0))} left); delete datasets "
                    "or ask an admin for more"
                )

    # --- what people see and admins change ------------------------------------------------
    def view(self, identity: Identity) -> dict[str, Any]:
        """The caller's quota and usage, their groups', and (admins) every setting."""
        with self.store.session() as session:
            mine = {
                "user": {
                    "name": identity.name,
                    "used": self.usage(session, "user", identity.name),
                    "quota": self.limit(session, "user", identity.name),
                },
                "groups": [
                    {
                        "name": group,
                        "used": self.usage(session, "group", group),
                        "quota": self.limit(session, "group", group),
                    }
                    for group in sorted(identity.groups)
                ],
            }
            if identity.is_admin:
                rows = session.scalars(select(Quota).order_by(Quota.kind, Quota.name)).all()
                mine["settings"] = [
                    {"kind": q.kind, "name": q.name, "bytes": q.bytes} for q in rows
                ]
                mine["defaults"] = {
                    "user": self.limits.user_default,
                    "group": self.limits.group_default,
                    "users": self.limits.users,
                    "groups": self.limits.groups,
                }
        return mine

    def set(self, identity: Identity, kind: Any, name: Any, size: Any) -> None:
        """An admin sets a user's or group's quota (null: back to the values file's)."""
        if not identity.is_admin:
            raise BatchError("only batch admins may change quotas", status=403)
        if kind not in ("user", "group"):
            raise BatchError("kind must be 'user' or 'group'")
        if not isinstance(name, str) or not 0 < len(name) <= 255:
            raise BatchError("name must be a user or group name")
        with self.store.session() as session:
            if size is None:
                found = session.get(Quota, (kind, name))
                if found is not None:
                    session.delete(found)
                return
            if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_QUOTA:
                raise BatchError("bytes must be a whole number of bytes, at least 0")
            session.merge(Quota(kind=kind, name=name, bytes=size))
