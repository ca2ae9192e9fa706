"""Warm batch servers: a server whose run ended waits a while for its owner's next run.

Once its run has ended, a batch server's runner asks the service for its next job
(`POST jobs/<id>/runner/next`, a long poll). While the run's kernel is kept (live) the answer
is "keep it"; once it is not, the runner shuts that kernel down and the server is *warm*: the
next queued run of the same owner and profile that the policy admits starts there, in a fresh
kernel and a folder of its own, instead of in a new server. A warm server is kept for
`warm_idle_seconds` after it became warm, then stopped; it is stopped at once when someone
else's admitted start needs what it holds (its GPUs, or the machine for an exclusive run).

What is kept here is in memory only: after a restart of the service no server is warm until
its runner asks again (a server nobody needs is stopped as before). The runner's word that its
kernel is gone is its owner's claim, and can only affect her own next run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

from spawner.profiles import Profile

# A runner that stopped asking for this long is taken for gone (its long poll lasts less).
POLL_GRACE_SECONDS = 10.0


@dataclass
class WarmServer:
    """One batch server between runs (or still holding its last run's live kernel)."""

    owner: str
    server: str
    profile: str
    start_id: str
    # The service's clock: when the runner last asked, and since when the server is idle
    # (its last run holds nothing and the runner said its kernel is gone); None: not yet.
    seen_at: float
    idle_since: float | None = None
    waiter: asyncio.Future[str | None] | None = field(default=None, repr=False)

    def waiting(self) -> bool:
        """The runner is asking right now and can be handed a job."""
        return self.waiter is not None and not self.waiter.done()


class WarmServers:
    """The batch servers that may take their owner's next run."""

    def __init__(self, idle_seconds: float, poll_seconds: float = 20.0) -> None:
        self.idle_seconds = idle_seconds
        self.poll_seconds = poll_seconds
        self._servers: dict[tuple[str, str], WarmServer] = {}

    @property
    def enabled(self) -> bool:
        """Warm servers are kept at all."""
        return self.idle_seconds > 0

    def __iter__(self) -> Iterator[WarmServer]:
        return iter(list(self._servers.values()))

    def seen(self, owner: str, server: str, profile: str, start_id: str, t: float) -> WarmServer:
        """The runner of this server asked (a new start of the server replaces the old)."""
        entry = self._servers.get((owner, server))
        if entry is None or entry.start_id != start_id:
            entry = WarmServer(owner, server, profile, start_id, seen_at=t)
            self._servers[(owner, server)] = entry
        entry.seen_at = t
        return entry

    def expired(self, entry: WarmServer, t: float) -> bool:
        """Idle for longer than this batchhub keeps a server."""
        return entry.idle_since is not None and t - entry.idle_since >= self.idle_seconds

    def idle_left(self, entry: WarmServer, t: float) -> float:
        """Seconds the server may still wait for a run."""
        since = t if entry.idle_since is None else entry.idle_since
        return max(0.0, since + self.idle_seconds - t)

    def fresh(self, entry: WarmServer, t: float) -> bool:
        """Its runner still asks, and it has not been idle too long."""
        asked = entry.waiting() or t - entry.seen_at < self.poll_seconds + POLL_GRACE_SECONDS
        return asked and not self.expired(entry, t)

    def idle_until(self, owner: str, server: str, t: float) -> float | None:
        """When an idle warm server will be stopped unless a run takes it; None: not one."""
        entry = self._servers.get((owner, server))
        if entry is None or entry.idle_since is None or not self.fresh(entry, t):
            return None
        return entry.idle_since + self.idle_seconds

    def needed(self, t: float) -> set[tuple[str, str]]:
        """(owner, server) of every server to keep although no job holds it."""
        return {key for key, entry in self._servers.items() if self.fresh(entry, t)}

    async def wait(self, entry: WarmServer, seconds: float) -> str | None:
        """Wait up to `seconds` for a job handed to this server; its id, or None."""
        loop = asyncio.get_running_loop()
        if entry.waiter is not None and not entry.waiter.done():
            entry.waiter.set_result(None)  # an earlier ask of the same runner was given up
        waiter = entry.waiter = loop.create_future()
        handle = loop.call_later(seconds, lambda: waiter.done() or waiter.set_result(None))
        try:
            return await waiter
        finally:
            handle.cancel()
            if not waiter.done():
                waiter.set_result(None)  # the caller went away: hand it nothing

    def take(self, owner: str, profile: str, t: float) -> WarmServer | None:
        """An idle server of this owner and profile (removed here). Its runner may be between
        two asks: it finds the job handed to its server when it asks again."""
        for key, entry in self._servers.items():
            if (
                entry.owner == owner
                and entry.profile == profile
                and entry.idle_since is not None
                and self.fresh(entry, t)
            ):
                del self._servers[key]
                return entry
        return None

    @staticmethod
    def hand(entry: WarmServer, job_id: str) -> None:
        """Tell the waiting runner its next job (now, if it is asking)."""
        if entry.waiting():
            assert entry.waiter is not None
            entry.waiter.set_result(job_id)

    def put_back(self, entry: WarmServer) -> None:
        """A server taken for a job that could not be started there after all."""
        self._servers.setdefault((entry.owner, entry.server), entry)

    def forget(self, owner: str, server: str) -> WarmServer | None:
        """The server is gone, held by a run again, or about to be stopped."""
        entry = self._servers.pop((owner, server), None)
        if entry is not None and entry.waiting():
            assert entry.waiter is not None
            entry.waiter.set_result(None)
        return entry

    def keep_only(self, listed: set[tuple[str, str]]) -> None:
        """Forget servers the hub no longer lists."""
        for key in [k for k in self._servers if k not in listed]:
            self.forget(*key)


def in_the_way(held: Profile, starting: Profile) -> bool:
    """A warm server of profile `held` must stop for a start of `starting`: both use GPUs of
    one type, or either has the machine to itself."""
    same_gpus = held.gpus > 0 and starting.gpus > 0 and held.gpu_type == starting.gpu_type
    return same_gpus or held.exclusive or starting.exclusive
