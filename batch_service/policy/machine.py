"""Exclusive runs: a request that needs a whole machine, and the machines decide() sees.

An *exclusive* request (its profile says `exclusive`) starts only on a machine nothing else
holds: no batch run, no server (interactive, starting or stopping); a live kernel does not
count once its run ended. While it runs nothing else starts on its machine. After waiting
`max_wait_seconds` it holds a *reservation*: the machine drains (running work ends, new work
does not start) and only runs whose time limit ends before the machine is expected empty
start there (backfill).

Machines are counted, not placed: `machines` equal machines share the capacity of each GPU
type. Work that is not exclusive is taken as packed onto as few machines as its GPUs need (at
least one while anything runs). On one machine (the embedded default) that is exact.

Nothing here is built unless the line or what runs has something exclusive, so a line
without exclusive profiles costs decide() one look at each request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping

from batch_service.policy.model import Allocation, Holder, PolicyConfig, Request, gpu_line

# Key of the machine's holders in Decision.holders (never a GPU type's name).
MACHINE_KEY = "*machine"


def clock(t: float, now: float) -> str:
    """A time as people read it in a reason: "~14:05 UTC (in ~25 min)"."""
    from batch_service.policy.reasons import within

    stamp = time.strftime("%H:%M UTC", time.gmtime(t))
    return f"~{stamp} ({'due now' if t <= now else 'in ' + within(t - now)})"


class Machines:
    """What holds the machines now and what this decision adds; answers who may start."""

    def __init__(
        self,
        running: Iterable[Allocation],
        capacity: Mapping[str, int],
        count: int,
        now: float,
        pool: bool = False,
    ) -> None:
        self.count = max(1, count)
        self.pool = pool  # machines of their own: other work is elsewhere
        self.now = now
        self.per_machine = {k: v / self.count for k, v in capacity.items() if v > 0}
        self.held: dict[str, int] = {}  # GPUs of work that is not exclusive, by type
        self.others = 0  # things that are not exclusive holding a machine
        self.exclusive_ends: list[float] = []
        self.holders: list[Holder] = []
        # (end, exclusive, type, GPUs) of everything holding a machine: to find when one frees.
        self.ends: list[tuple[float, bool, str, int]] = []
        self.shadow: float | None = None  # a reserved machine is expected empty then
        self.reserved_for = ""
        for a in running:
            if a.live or (pool and not a.exclusive):
                continue  # a live kernel after its run does not keep the machine
            end = math.inf if a.expected_end is None else a.expected_end
            self._add(a.exclusive, gpu_line(a), a.gpus, end)
            if a.kind == "interactive":
                kind = "server"
            elif a.kind == "stopping":
                kind = "stopping"
            else:
                kind = "exclusive" if a.exclusive else "run"
            self.holders.append(Holder(kind, a.user, a.gpus, None if math.isinf(end) else end))

    def _add(self, exclusive: bool, kind: str, gpus: int, end: float) -> None:
        if exclusive:
            self.exclusive_ends.append(end)
        else:
            self.held[kind] = self.held.get(kind, 0) + gpus
            self.others += 1
        self.ends.append((end, exclusive, kind, gpus))

    def _packed(self, extra_kind: str | None = None, extra_gpus: int = 0) -> int:
        """Machines the work that is not exclusive needs (with one more request, if given)."""
        others = self.others + (extra_kind is not None)
        if not others:
            return 0
        need = 1
        for kind, gpus in self.held.items():
            per = self.per_machine.get(kind)
            total = gpus + (extra_gpus if kind == extra_kind else 0)
            if per:
                need = max(need, math.ceil(total / per - 1e-9))
        if extra_kind is not None and extra_kind not in self.held:
            per = self.per_machine.get(extra_kind)
            if per:
                need = max(need, math.ceil(extra_gpus / per - 1e-9))
        return need

    def free(self) -> int:
        """Machines nothing holds."""
        return self.count - len(self.exclusive_ends) - self._packed()

    def closed(self) -> bool:
        """Nothing at all can start: every machine is held by an exclusive run."""
        return not self.pool and len(self.exclusive_ends) >= self.count

    def blocks(self, request: Request) -> str | None:
        """Why the machine keeps `request` from starting now (words), or None."""
        now = self.now
        if request.exclusive:
            if self.free() >= 1:
                return None
            if self.shadow is not None:
                return "it drains for this run: nothing new starts there from now on"
            return "it starts once nothing else runs there"
        if self.pool:
            return None
        kind = gpu_line(request)
        room = self.count - len(self.exclusive_ends) - self._packed(kind, request.gpus)
        if room < 0:
            until = min(self.exclusive_ends, default=math.inf)
            when = clock(until, now) if not math.isinf(until) else "its run ends"
            return f"an exclusive run holds it until {when}"
        if self.shadow is not None and room < 1:
            end = now + request.expected_duration if request.kind == "batch" else math.inf
            if end > self.shadow:
                return (
                    "it is kept for an exclusive run that has waited longest (expected empty "
                    f"{clock(self.shadow, now)}); only runs that end before then start"
                )
        return None

    def take(self, request: Request) -> None:
        """`request` starts now."""
        if self.pool and not request.exclusive:
            return
        end = self.now + request.expected_duration if request.kind == "batch" else math.inf
        if request.id == self.reserved_for:
            self.shadow, self.reserved_for = None, ""
        self._add(request.exclusive, gpu_line(request), request.gpus, end)
        kind = "exclusive" if request.exclusive else "run" if request.kind == "batch" else "server"
        self.holders.append(
            Holder(kind, request.user, request.gpus, None if math.isinf(end) else end)
        )

    def reserve(self, request: Request) -> None:
        """The first exclusive request that waited `max_wait_seconds`: the machine that frees
        first drains for it (until it starts)."""
        if self.shadow is None:
            self.shadow, self.reserved_for = self.free_at(), request.id

    def free_at(self) -> float:
        """When a machine is expected empty: play the expected ends of what holds them."""
        if self.free() >= 1:
            return self.now
        exclusive = len(self.exclusive_ends)
        held = dict(self.held)
        others = self.others
        for end, is_exclusive, kind, gpus in sorted(self.ends):
            if math.isinf(end):
                return math.inf
            if is_exclusive:
                exclusive -= 1
            else:
                held[kind] -= gpus
                others -= 1
            packed = 0
            if others:
                packed = max(
                    [1]
                    + [
                        math.ceil(n / self.per_machine[k] - 1e-9)
                        for k, n in held.items()
                        if self.per_machine.get(k)
                    ]
                )
            if self.count - exclusive - packed >= 1:
                return max(end, self.now)
        return math.inf

    def wait_start(self, request: Request) -> float | None:
        """When a request the machine keeps waiting may start (an estimate), or None."""
        if request.exclusive:
            t = self.shadow if self.shadow is not None else self.free_at()
        elif (
            self.exclusive_ends
            and self.count
            - len(self.exclusive_ends)
            - self._packed(gpu_line(request), request.gpus)
            < 0
        ):
            t = min(self.exclusive_ends)
        else:
            t = self.shadow if self.shadow is not None else self.now
        return None if math.isinf(t) or t <= self.now else t

    def sorted_holders(self) -> tuple[Holder, ...]:
        """What holds the machine, soonest end first (for the words of those who wait)."""
        return tuple(sorted(self.holders, key=lambda h: math.inf if h.end is None else h.end))


def machines_for(
    waiting_exclusive: bool,
    running: list[Allocation],
    capacity: Mapping[str, int],
    count: int,
    config: PolicyConfig,
    now: float,
) -> Machines | None:
    """The machines of a decision, or None when nothing in it is exclusive (nothing to do).
    waiting_exclusive: whether an exclusive request is in line."""
    if waiting_exclusive or any(a.exclusive and not a.live for a in running):
        return Machines(running, capacity, count, now, config.exclusive_pool)
    return None
