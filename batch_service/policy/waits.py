"""Positions, reason codes and expected starts of those left waiting, in one walk of the line.

Expected start (like `squeue --start`): the line is played forward in its order on a copy of
each GPU type's devices and of the batch slots. Each device (and slot) is free from a time:
now if free now, else the expected end of what holds it: a run's start plus its time limit, a
live kernel's window end (as cut by this decision), never for an interactive server (it has no
set end). A request takes the GPUs (and, for a batch job, the slot) that free soonest; it
starts when the last of them is free and holds them for its time limit (an interactive server
for good). A request whose start cannot be worked out (behind a server with no set end, or
held by a cap) has none. The estimate does not foresee backfill, new arrivals or runs that end
before their time limit, so a start tends to come earlier than estimated, not later.

Codes come from the same walk: a request that waits for a cap, a reservation or GPUs that do
not exist keeps the policy's code; otherwise `slots` when a batch slot frees after its GPUs,
`priority` when some GPU it would take goes first to a request ahead of it, else `resources`.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping
from typing import Protocol

from batch_service.policy.model import CPU, Holder, Request, Wait
from batch_service.policy.reasons import (
    GROUP_CAP,
    MACHINE,
    NOT_ADMISSIBLE,
    PRIORITY,
    RESERVATION,
    RESOURCES,
    SLOTS,
    USER_CAP,
    not_admissible_words,
)


class Machine(Protocol):
    """What plan() asks the machines (policy/machine.py: Machines)."""

    def blocks(self, request: Request) -> str | None: ...  # noqa: D102

    def wait_start(self, request: Request) -> float | None: ...  # noqa: D102


_HELD = (USER_CAP, GROUP_CAP, NOT_ADMISSIBLE)
# A device (or slot) in the played-forward line: (free from, taken by a request ahead: 0/1).
Slot = tuple[float, int]


def _pool(free_now: int, capacity: int, ends: list[float], now: float) -> list[Slot]:
    """Devices of one type, as times they are free from (a heap)."""
    free_now = min(max(free_now, 0), capacity)
    held = capacity - free_now
    ends = sorted(ends)
    # More held than exists (capacity shrank): only the latest ends give devices back.
    kept = ends[len(ends) - held :] if held > 0 else []
    return [(now, 0)] * free_now + [(end, 0) for end in kept]


def plan(
    line: Iterable[Request],
    why: Mapping[str, tuple[str, str]],
    capacity: Mapping[str, int],
    free: Mapping[str, int],
    holders: Mapping[str, tuple[Holder, ...]],
    slots_free: float,
    slot_ends: list[float],
    now: float,
    machine: Machine | None = None,
) -> tuple[dict[str, Wait], dict[str, int]]:
    """Wait of each request in the line (its order), positions counted per GPU type; and how
    many wait in each type's line. machine: the machines as this decision leaves them, when
    something is exclusive (machine.py): who waits for the machine and till when."""
    pools: dict[str, list[Slot]] = {}
    slots: list[Slot] | None = None
    if not math.isinf(slots_free):
        slots = _pool(int(slots_free), int(slots_free) + len(slot_ends), slot_ends, now)
    seen: dict[str, int] = {}
    waits: dict[str, Wait] = {}
    inf = math.inf
    # Runs once per waiting request (10,000 of them in a long line): local names, and one heap
    # operation per device taken in the common case of one GPU.
    heappop, heappush, heapreplace = heapq.heappop, heapq.heappush, heapq.heapreplace
    why_of, no_why = why.get, ("", "")
    for r in line:
        gpus = r.gpus
        kind = (r.gpu_type or CPU) if gpus else CPU
        position = seen[kind] = seen.get(kind, 0) + 1
        code, words = why_of(r.id, no_why)
        if machine is not None and not code:
            # The walk stopped before it: the machine may be why it waits.
            held = machine.blocks(r)
            if held is not None:
                code, words = MACHINE, held
        if gpus and gpus > capacity.get(kind, 0) and code != NOT_ADMISSIBLE:
            code, words = NOT_ADMISSIBLE, not_admissible_words(capacity.get(kind, 0))
        if code in _HELD:
            waits[r.id] = Wait(r, position, code, None, words)
            continue
        if code == MACHINE and machine is not None:
            waits[r.id] = Wait(r, position, code, machine.wait_start(r), words)
            continue
        batch = r.kind == "batch"
        gpu_time, behind = now, 0
        pool: list[Slot] = []
        taken = 0
        if gpus:
            pool = pools.get(kind) or _type_pool(pools, kind, capacity, free, holders, now)
            if gpus == 1:
                gpu_time, behind = pool[0]
            else:
                devices = [heappop(pool) for _ in range(gpus)]
                gpu_time = devices[-1][0]
                behind = max(origin for _, origin in devices)
                taken = gpus
        slot_time = now
        if batch and slots is not None:
            slot_time = slots[0][0] if slots else inf
        start = gpu_time if gpu_time > slot_time else slot_time
        if start < now:
            start = now  # a run past its expected end: its device is due now
        end = start + r.expected_duration if batch else inf
        if gpus == 1:
            heapreplace(pool, (end, 1))
        for _ in range(taken):
            heappush(pool, (end, 1))
        if batch and slots:
            heapreplace(slots, (end, 1))
        if code != RESERVATION:
            if not gpus or (slot_time > gpu_time and slot_time > now):
                code = SLOTS
            else:
                code = PRIORITY if behind else RESOURCES
        # Nothing the walk can see keeps it from starting now: the policy knows why, not when.
        waits[r.id] = Wait(r, position, code, start if now < start < inf else None, words)
    return waits, seen


def _type_pool(
    pools: dict[str, list[Slot]],
    kind: str,
    capacity: Mapping[str, int],
    free: Mapping[str, int],
    holders: Mapping[str, tuple[Holder, ...]],
    now: float,
) -> list[Slot]:
    """The devices of one GPU type as a heap, made when the walk first meets that type."""
    ends = [
        math.inf if h.end is None else h.end for h in holders.get(kind, ()) for _ in range(h.gpus)
    ]
    pool = pools[kind] = _pool(free.get(kind, 0), capacity.get(kind, 0), ends, now)
    heapq.heapify(pool)
    return pool
