"""Admission: one pure function from the state of the line to what starts now.

Order: starving requests first, oldest first: a request that has waited `max_wait_seconds`,
is larger than the smallest request waiting for its GPU type (so smaller ones can keep
passing it) and whose owner holds fewer GPUs than it asks for; one per owner. Then by
priority, highest first; within a priority, the fair order of order.py. Usage is charged at
admission (GPUs x expected duration), so one decision that admits many requests is already
fair among them.

Admission walks that order: a request starts when GPUs of its type are free and no cap
forbids it. With backfill a request that does not fit is passed over and smaller ones behind
it may start (work conserving). A starving request that does not fit holds a reservation on
its type: later requests may use those GPUs only if they do not delay it (EASY backfill over
the expected ends of what runs). When someone waits for a type that live kernels hold, their
windows are cut to the grace period so those GPUs come back.

Everything comes from the arguments: no clock, no I/O. The walk stops once nothing else can
start; positions, reason codes, words and expected starts of those left waiting are worked out
in one walk of the line when first read (lazy_line.py, waits.py, reasons.py); live windows cut
short are live_cuts.py.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Iterator, Mapping
from operator import attrgetter

from batch_service.policy.lazy_line import CountsView, LazyLine, WaitsView, WaitView
from batch_service.policy.live_cuts import (
    CUT_FOR_GPUS,
    CUT_FOR_LIVE_CAP,
    cut_live_windows,
    cut_over_live_cap,
)
from batch_service.policy.machine import MACHINE_KEY, machines_for
from batch_service.policy.model import (
    CPU,
    Allocation,
    Decision,
    Holder,
    PolicyConfig,
    Request,
    Usage,
    Wait,
    gpu_line,
)
from batch_service.policy.order import FairOrder, cost
from batch_service.policy.queue_index import QueueIndex
from batch_service.policy.reasons import (
    GROUP_CAP,
    MACHINE,
    NOT_ADMISSIBLE,
    RESERVATION,
    SLOTS,
    USER_CAP,
    not_admissible_words,
    wait_words,
)
from batch_service.policy.usage import decay
from batch_service.policy.waits import plan

_SUBMITTED = attrgetter("submitted_at", "id")


def _holder(a: Allocation, end: float | None) -> Holder:
    kind = (
        "live_kernel"
        if a.live
        else {"interactive": "server", "stopping": "stopping"}.get(a.kind, "run")
    )
    return Holder(kind, a.user, a.gpus, None if end is None or math.isinf(end) else end)


def _free_at(
    kind: str, needed: int, free_now: int, ends: Iterable[tuple[str, float, int]], now: float
) -> tuple[float, int]:
    """When `needed` GPUs of a type will be free (by expected ends), and the surplus then."""
    available, when = free_now, now
    if available >= needed:
        return now, available - needed
    for end, gpus in sorted((e, g) for k, e, g in ends if k == kind):
        available += gpus
        when = max(now, end)
        if available >= needed:
            break
    if available < needed:
        return math.inf, 0
    return when, available - needed


class _Without(Collection[Request]):
    """A user's requests in line less one (their starving request, considered apart): a view,
    so setting one apart costs nothing until the user's turn comes."""

    __slots__ = ("_own", "_left_out")

    def __init__(self, own: Mapping[str, Request], left_out: str) -> None:
        self._own, self._left_out = own, left_out

    def __iter__(self) -> Iterator[Request]:
        left_out = self._left_out
        return (r for r in self._own.values() if r.id != left_out)

    def __len__(self) -> int:
        return len(self._own) - (self._left_out in self._own)

    def __contains__(self, request: object) -> bool:
        return (
            isinstance(request, Request)
            and request.id != self._left_out
            and (self._own.get(request.id) is request)
        )


def _known_head(index: QueueIndex, user: str, set_apart: Request | None) -> Request | None:
    """The user's first request in their own order as the index keeps it, when their line in
    this decision is the index's (one group), less a starving request that is not it."""
    if len(index.groups(user)) != 1:
        return None
    head = index.head(user)
    return None if set_apart is not None and head.id == set_apart.id else head


# Why a live window is cut short (Decision.cut_reasons).


def decide(
    queue: Iterable[Request] | QueueIndex,
    running: Iterable[Allocation],
    capacity: Mapping[str, int],
    usage: Usage,
    config: PolicyConfig,
    now: float,
    batch_slots: int | None = None,
    cpu_slots: int | None = None,
    live_slots: int | None = None,
    machines: int | None = None,
) -> Decision:
    """Which requests start now, which live windows to cut, and positions of the rest.

    machines: how many machines share the capacity (exclusive runs take one whole); None:
    config.machines."""
    running = list(running)
    usage = decay(usage, now, config.half_life_seconds)
    free: dict[str, int] = dict(capacity)
    held_user: dict[str, int] = {}
    held_group: dict[str, int] = {}
    ends: list[tuple[str, float, int]] = []  # (type, expected end, GPUs) of what runs
    for a in running:
        kind = gpu_line(a)
        free[kind] = free.get(kind, 0) - a.gpus
        held_user[a.user] = held_user.get(a.user, 0) + a.gpus
        if a.group is not None:
            held_group[a.group] = held_group.get(a.group, 0) + a.gpus
        end = a.live_until if a.live else a.expected_end
        ends.append((kind, math.inf if end is None else end, a.gpus))

    # The line by user, with its counts: kept between passes by the caller, or made here.
    index = queue if isinstance(queue, QueueIndex) else QueueIndex(queue)
    pending: dict[str, int] = {}
    smallest: dict[str, int] = {}
    for (gpu_type, gpus, _), n in index.shapes.items():
        key = CPU if gpus == 0 else (gpu_type or CPU)
        pending[key] = pending.get(key, 0) + n
        smallest[key] = min(smallest.get(key, gpus), gpus)
    one_priority = len(index.priorities) <= 1
    waiting_exclusive = any(exclusive for _, _, exclusive in index.shapes)
    machine = machines_for(
        waiting_exclusive, running, capacity, machines or config.machines, config, now
    )

    # Starving: a request that waited max_wait, larger than the smallest waiting for its type
    # (so smaller ones can pass it), whose owner holds fewer GPUs than it asks; per owner, the
    # one that waited longest. Each user's earliest request of each shape is kept in the index.
    threshold = now - config.max_wait_seconds
    # Shapes that may starve: exclusive, or bigger than the smallest waiting for their type
    # (so smaller ones can pass them); worked out once, not per user.
    big = {
        shape: shape[2] or shape[1] > smallest[CPU if shape[1] == 0 else shape[0] or CPU]
        for shape in index.shapes
    }
    candidates = []
    first_of, oldest = index.first, index.oldest
    for user in index.by_user:
        if oldest(user) > threshold:
            continue
        held = held_user.get(user, 0)
        old = [
            r
            for shape in index.shapes_of(user)
            # Big and more than its owner holds, or exclusive; waiting longer than max_wait.
            if big[shape]
            and (shape[2] or shape[1] > held)
            and (r := first_of(user, shape)).submitted_at <= threshold
        ]
        if old:
            candidates.append(min(old, key=_SUBMITTED) if len(old) > 1 else old[0])
    starving = {r.user: r for r in sorted(candidates, key=_SUBMITTED)}

    # Everyone else by owner (user, and the group they count in), starving requests apart.
    # Each user's requests as the index holds them (a view, not a copy: a decision costs
    # about the number of users, and FairOrder copies a user's only when their turn comes).
    owners: dict[tuple[str | None, str], Collection[Request]] = {}
    for user, own_by_id in index.by_user.items():
        first = starving.get(user)
        if first is None:
            own: Collection[Request] = own_by_id.values()
        elif len(own_by_id) > 1:
            own = _Without(own_by_id, first.id)
        else:
            continue  # their one request is considered apart
        groups = index.groups(user)
        if len(groups) == 1:
            owners[(next(iter(groups)), user)] = own
        else:  # one user queueing for several groups
            split: dict[tuple[str | None, str], list[Request]] = {}
            for r in own:
                split.setdefault((r.group, user), []).append(r)
            owners.update(split)

    started: list[Request] = []
    why: dict[str, tuple[str, str]] = {}  # request id -> (reason code, words)
    first_waiting: dict[str, Request] = {}  # per type: the first in line that waits for GPUs
    reservations: dict[str, tuple[float, int]] = {}
    blocked: set[str] = set()
    slots = math.inf if batch_slots is None else batch_slots
    cpus = math.inf if cpu_slots is None else cpu_slots
    interactive_seen = 0

    def consider(request: Request, is_starving: bool) -> bool:
        if machine is None:
            return admit(request, is_starving)
        if request.exclusive and is_starving:
            machine.reserve(request)  # the machine drains for it until it starts
        held = machine.blocks(request)
        if held is None and admit(request, is_starving):
            machine.take(request)
            return True
        if held is not None:  # passed over: counted as admit() counts those it does not start
            pending[gpu_line(request)] -= 1
            why[request.id] = (MACHINE, held)
        return False

    def admit(request: Request, is_starving: bool) -> bool:
        nonlocal slots, cpus, interactive_seen
        kind = CPU if request.gpus == 0 else (request.gpu_type or CPU)
        pending[kind] -= 1
        batch = request.kind == "batch"
        if not batch:
            interactive_seen += 1
        if batch and slots <= 0:
            why[request.id] = (SLOTS, "all batch slots are in use")
            return False
        if request.gpus == 0:
            if cpus <= 0:
                why[request.id] = (SLOTS, "all CPU slots are in use")
                return False
            cpus -= 1
            slots -= batch
            started.append(request)
            return True
        user_cap = config.user_gpu_cap
        if user_cap is not None and held_user.get(request.user, 0) + request.gpus > user_cap:
            why[request.id] = (
                USER_CAP,
                f"{request.user} holds the most GPUs a user may hold ({user_cap})",
            )
            return False
        group = request.group
        group_cap = config.group_gpu_caps.get(group) if group is not None else None
        if group_cap is not None and held_group.get(group, 0) + request.gpus > group_cap:
            why[request.id] = (
                GROUP_CAP,
                f"group {group} holds the most GPUs it may hold ({group_cap})",
            )
            return False
        fits = free.get(kind, 0) >= request.gpus and kind not in blocked
        reservation = reservations.get(kind)
        if fits and reservation is not None:
            shadow, surplus = reservation
            if now + request.expected_duration > shadow:
                # It would still run when the reserved request may start: only surplus GPUs.
                if request.gpus > surplus:
                    fits = False
                    why[request.id] = (
                        RESERVATION,
                        "free GPUs are kept for a request that has waited longest",
                    )
                else:
                    reservations[kind] = (shadow, surplus - request.gpus)
        if fits:
            free[kind] -= request.gpus
            held_user[request.user] = held_user.get(request.user, 0) + request.gpus
            if group is not None:
                held_group[group] = held_group.get(group, 0) + request.gpus
            slots -= batch
            ends.append((kind, now + request.expected_duration, request.gpus))
            started.append(request)
            return True
        if request.gpus > capacity.get(kind, 0):
            why[request.id] = (NOT_ADMISSIBLE, not_admissible_words(capacity.get(kind, 0)))
            return False
        if kind not in first_waiting:
            first_waiting[kind] = request
        if kind not in reservations and (is_starving or not config.backfill):
            if not config.backfill:
                blocked.add(kind)
            reservations[kind] = _free_at(kind, request.gpus, free.get(kind, 0), ends, now)
        return False

    def more_can_start() -> bool:
        if machine is not None and machine.closed():
            return False
        if slots <= 0:
            # Only interactive requests may still start; count them once, when it matters.
            if index.interactive <= interactive_seen:
                return False
        return any(
            n > 0 and (kind == CPU and cpus > 0 or free.get(kind, 0) >= smallest[kind])
            for kind, n in pending.items()
        )

    # Backfill looks at a bounded number of requests that cannot start (as Slurm's
    # bf_max_job_test): a line of a million costs a bounded walk; the rest keep their places.
    refusals_left = config.backfill_depth
    skipped_starving = []
    for r in starving.values():
        if refusals_left <= 0 or not consider(r, True):
            skipped_starving.append(r)
            refusals_left -= 1
    usage_user = dict(usage.by_user)
    usage_group = dict(usage.by_group)
    for r in started:
        usage_user[r.user] = usage_user.get(r.user, 0.0) + cost(r)
        if r.group is not None:
            usage_group[r.group] = usage_group.get(r.group, 0.0) + cost(r)
    order = FairOrder(
        owners,
        usage_user,
        usage_group,
        config.user_weights,
        config.group_weights,
        now,
        config.max_wait_seconds,
        one_priority=one_priority,
        # A user's first request in their own order, as the index keeps it (when their line
        # is the index's: one group, no starving request taken out).
        known_head=lambda user: _known_head(index, user, starving.get(user)),
    )
    while order and more_can_start() and refusals_left > 0:
        request = order.pop()
        admitted = consider(request, False)
        order.put_back(request, admitted)
        refusals_left -= not admitted

    needed = {kind: r.gpus for kind, r in first_waiting.items()}
    unplaced = [kind for kind, n in pending.items() if n > 0 and kind not in needed]
    if unplaced:
        # The walk stopped before these types' lines: at least their smallest request that is
        # still waiting (not one that started in this pass) waits.
        chosen = {r.id for r in started}
        # A type none of whose requests started: its smallest is known without a walk.
        left = {kind: smallest[kind] for kind in unplaced}
        rescan = {gpu_line(r) for r in started} & set(unplaced)
        if rescan:
            for kind in rescan:
                del left[kind]
            for r in index:
                kind = CPU if r.gpus == 0 else (r.gpu_type or CPU)
                if kind in rescan and r.id not in chosen:
                    left[kind] = min(left.get(kind, r.gpus), r.gpus)
        for kind, size in left.items():
            if free.get(kind, 0) < size:
                needed[kind] = size
    cut_live = cut_live_windows(needed, running, free, config, now)
    cut_reasons = dict.fromkeys((job for job, _ in cut_live), CUT_FOR_GPUS)
    if live_slots is not None:
        for job, until in cut_over_live_cap(running, live_slots, set(cut_reasons), config, now):
            cut_live.append((job, until))
            cut_reasons[job] = CUT_FOR_LIVE_CAP
    holders, slot_ends = _holders(running, started, dict(cut_live), now)
    if machine is not None:
        holders[MACHINE_KEY] = machine.sorted_holders()

    def planned(ordered: list[Request]) -> tuple[dict[str, Wait], dict[str, int]]:
        return plan(ordered, why, capacity, free, holders, slots, slot_ends, now, machine)

    line = LazyLine(lambda: [skipped_starving, order.line(ahead=skipped_starving)], planned)

    def words(wait: Wait) -> str:
        # As the request's owner reads it: other users' names stay out.
        key = MACHINE_KEY if wait.code == MACHINE else gpu_line(wait.request)
        held = holders.get(key, ())
        return wait_words(wait, held, now, reader=wait.request.user)

    return Decision(
        tuple(r.id for r in started),
        tuple(cut_live),
        WaitView(line, attrgetter("position")),
        WaitView(line, words),
        Usage(usage_user, usage_group, usage.as_of),
        cut_reasons,
        WaitsView(line),
        holders,
        now,
        CountsView(line),
    )


def _holders(
    running: list[Allocation], started: list[Request], cut_to: dict[str, float], now: float
) -> tuple[dict[str, tuple[Holder, ...]], list[float]]:
    """What holds GPUs of each type once this decision is carried out (soonest end first),
    and the expected ends of the runs that hold batch slots."""
    by_type: dict[str, list[Holder]] = {}
    slot_ends: list[float] = []
    for a in running:
        end = cut_to.get(a.id, a.live_until) if a.live else a.expected_end
        if a.gpus:
            by_type.setdefault(gpu_line(a), []).append(_holder(a, end))
        if not a.live and a.kind == "batch":
            slot_ends.append(math.inf if end is None else end)
    for r in started:
        batch = r.kind == "batch"
        end = now + r.expected_duration if batch else None
        if r.gpus:
            holder = Holder("run" if batch else "server", r.user, r.gpus, end)
            by_type.setdefault(gpu_line(r), []).append(holder)
        if batch:
            slot_ends.append(now + r.expected_duration)
    holders = {
        kind: tuple(sorted(held, key=lambda h: math.inf if h.end is None else h.end))
        for kind, held in by_type.items()
    }
    return holders, slot_ends
