"""Who holds the GPUs: each GPU, its holder (a run, a live kernel, an interactive server), since
and until when at most, and its utilisation and memory where NVML can tell.

Holdings are what the hub observes, never what a server says: the GPUs of each server are the
ones its spawner allocated (the server's state in the hub), and times come from the service's
own records (admission, time limits, live windows) or the hub's start time of the server.
Everyone sees the counts and which GPUs are busy until when; names (owner, server, job) only
batch readers and admins see, and each person sees their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import or_, select

from batch_service.clock import now
from batch_service.identity import Identity
from batch_service.jobs import ACTIVE_STATES
from batch_service.scheduler import parse_hub_time
from batch_service.store import Job, Store
from batch_service.warm import WarmServers
from spawner.profiles import BATCH_SERVER_PREFIX as BATCH_PREFIX
from spawner.profiles import Profile

RUN, LIVE, INTERACTIVE, STOPPING = "run", "live kernel", "interactive server", "stopping"
# A warm batch server between runs (batch_service/warm.py): kept for its owner's next run.
IDLE = "idle server"

Readings = Callable[[Iterable[str]], Mapping[str, Mapping[str, float]]]


class GpuView:
    """Builds the GPU view from the hub's servers (as of the last scheduler pass)."""

    def __init__(
        self,
        store: Store,
        inventory: list[Mapping[str, Any]],
        capacity: Mapping[str, int],
        profiles: Mapping[str, Profile],
        readings: Readings,
        warm: WarmServers | None = None,
    ) -> None:
        self.warm = warm or WarmServers(0)
        self.store = store
        self.inventory = [dict(g) for g in inventory]
        self.capacity = dict(capacity)
        self.profiles = profiles
        self.readings = readings

    def holders(self, servers: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[dict]:
        """Every server holding GPUs, with what it is and its times (names unfiltered)."""
        holding = []
        for owner, named in servers.items():
            for name, model in named.items():
                profile = self.profiles.get(str((model.get("user_options") or {}).get("profile")))
                uuids = [str(u) for u in ((model.get("state") or {}).get("gpus") or [])]
                count = len(uuids) or (profile.gpus if profile else 0)
                if count:
                    holding.append(
                        {
                            "owner": owner,
                            "server": name,
                            "gpus": uuids,
                            "count": count,
                            "gpu_type": profile.gpu_type if profile else None,
                            "since": parse_hub_time(model.get("started")),
                            "until": None,
                            "kind": INTERACTIVE,
                            "job_id": None,
                        }
                    )
        names = [h["server"] for h in holding if self._is_batch(h)]
        jobs: dict[str, Any] = {}
        if names:
            with self.store.session() as session:
                rows = session.execute(
                    select(
                        Job.id,
                        Job.owner,
                        Job.state,
                        Job.admitted_at,
                        Job.time_limit,
                        Job.live,
                        Job.live_pending,
                        Job.live_until,
                        Job.server,
                    ).where(
                        or_(
                            Job.id.in_([n[len(BATCH_PREFIX) :] for n in names]),
                            Job.server.in_(names),
                        )
                    )
                ).all()
            # A warm server runs later jobs than the one it is named after: the one holding it.
            for row in sorted(rows, key=lambda r: r.admitted_at or 0.0):
                jobs[row.server or f"{BATCH_PREFIX}{row.id}"] = row
        for holder in holding:
            if not self._is_batch(holder):
                continue
            job = jobs.get(holder["server"])
            if job is None or job.owner != holder["owner"]:
                holder["kind"] = STOPPING
                continue
            holder["job_id"] = job.id
            holder["since"] = job.admitted_at or holder["since"]
            if job.state in ACTIVE_STATES:
                holder["kind"] = RUN
                holder["until"] = (holder["since"] or 0.0) + job.time_limit
            elif job.live or job.live_pending:
                holder["kind"] = LIVE
                holder["until"] = job.live_until
            elif until := self.warm.idle_until(holder["owner"], holder["server"], now()):
                holder["kind"] = IDLE
                holder["until"] = until
            else:
                holder["kind"] = STOPPING
        return holding

    @staticmethod
    def _is_batch(holder: Mapping[str, Any]) -> bool:
        return str(holder["server"]).startswith(BATCH_PREFIX)

    async def view(
        self,
        identity: Identity,
        servers: Mapping[str, Mapping[str, Mapping[str, Any]]],
        as_of: float | None,
    ) -> dict[str, Any]:
        """The view for one reader: counts for all, names for readers allowed to see them."""
        holding = [self._shown(identity, h) for h in self.holders(servers)]
        by_uuid = {uuid: h for h in holding for uuid in h["gpus"]}
        readings = await asyncio.to_thread(self.readings, [g["uuid"] for g in self.inventory])
        gpus = []
        for gpu in self.inventory:
            reading = readings.get(gpu["uuid"], {})
            gpus.append(
                {
                    "uuid": gpu["uuid"],
                    "index": gpu.get("index", 0),
                    "type": gpu["type"],
                    "holder": by_uuid.get(gpu["uuid"]),
                    "utilization": reading.get("utilization"),
                    "memory_used": reading.get("memory_used"),
                    "memory_total": reading.get("memory_total"),
                }
            )
        types = []
        for gpu_type, total in sorted(self.capacity.items()):
            held = sum(h["count"] for h in holding if h["gpu_type"] == gpu_type)
            types.append(
                {"type": gpu_type, "total": total, "held": held, "free": max(0, total - held)}
            )
        return {"as_of": as_of, "types": types, "gpus": gpus, "holders": holding}

    @staticmethod
    def _shown(identity: Identity, holder: dict[str, Any]) -> dict[str, Any]:
        named = identity.can_read_all or holder["owner"] == identity.name
        shown = dict(holder, mine=holder["owner"] == identity.name)
        if not named:
            shown.update(owner=None, server=None, job_id=None)
        return shown
