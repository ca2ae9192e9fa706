"""The admission policy: one pure function from the state of the line to what starts now.

Order: starving requests (waited max_wait or more) first, oldest first; then by priority; then
fair share, two levels: the group with the least decayed usage per unit of weight, and within
it the user with the least. Usage is charged at admission (GPUs x expected duration), so one
decision that admits many requests is already fair among them.

Admission walks that order: a request starts if its GPUs of its type are free and no cap
forbids it. With backfill a request that does not fit is passed over and smaller ones behind it
may start (work conserving); once a request starves, it holds a reservation: later requests of
its type may only use GPUs that do not delay it (EASY backfill over expected end times). When a
request waits for a GPU type held by live kernels, their live windows are cut to the grace
period so those GPUs come back.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping

from batch_service.policy.model import Allocation, Decision, PolicyConfig, Request, Usage

CPU = ""


def decay(usage: Usage, now: float, half_life: float) -> Usage:
    """Usage as of `now`: halves every `half_life` seconds."""
    if now <= usage.as_of or half_life <= 0:
        return Usage(dict(usage.by_user), dict(usage.by_group), max(now, usage.as_of))
    factor = 0.5 ** ((now - usage.as_of) / half_life)
    return Usage(
        {k: v * factor for k, v in usage.by_user.items()},
        {k: v * factor for k, v in usage.by_group.items()},
        now,
    )


def charge(usage: Usage, user: str, group: str | None, gpu_seconds: float) -> Usage:
    """Add GPU-seconds to a user and their group (negative settles an early end)."""
    by_user = dict(usage.by_user)
    by_user[user] = max(0.0, by_user.get(user, 0.0) + gpu_seconds)
    by_group = dict(usage.by_group)
    if group is not None:
        by_group[group] = max(0.0, by_group.get(group, 0.0) + gpu_seconds)
    return Usage(by_user, by_group, usage.as_of)


def _group_key(request: Request) -> str:
    # A user without a group is a group of one, so groups and loners share one level.
    return request.group if request.group is not None else f"user:{request.user}"


class _FairOrder:
    """Yields requests group-fair, then user-fair, charging as admissions happen."""

    def __init__(self, requests: list[Request], usage: Usage, config: PolicyConfig) -> None:
        self.usage_user = defaultdict(float, usage.by_user)
        self.usage_group = defaultdict(float, usage.by_group)
        self.config = config
        users: dict[str, dict[str, list[Request]]] = defaultdict(lambda: defaultdict(list))
        for request in requests:
            users[_group_key(request)][request.user].append(request)
        self.queues: dict[str, dict[str, list[Request]]] = {}
        self.user_heaps: dict[str, list[tuple[float, float, str]]] = {}
        self.group_heap: list[tuple[float, float, str]] = []
        for group, members in users.items():
            heap = []
            for user, own in members.items():
                own.sort(key=lambda r: (-r.priority, r.submitted_at, r.id), reverse=True)
                heap.append((self._user_score(user, own[-1]), own[-1].submitted_at, user))
            heapq.heapify(heap)
            self.queues[group] = members
            self.user_heaps[group] = heap
            self.group_heap.append((self._group_score(group), heap[0][1], group))
        heapq.heapify(self.group_heap)

    def _user_score(self, user: str, head: Request | None = None) -> float:
        # Usage as it would be after running the user's next request: among equals, the
        # smaller request goes first, so short runs are not stuck behind long ones.
        cost = head.gpus * head.expected_duration if head is not None else 0.0
        weight = max(self.config.user_weights.get(user, 1.0), 1e-9)
        return (self.usage_user[user] + cost) / weight

    def _group_score(self, group: str) -> float:
        if group.startswith("user:"):
            heap = self.user_heaps.get(group)
            return heap[0][0] if heap else self._user_score(group[5:])
        return self.usage_group[group] / max(self.config.group_weights.get(group, 1.0), 1e-9)

    def __bool__(self) -> bool:
        return bool(self.group_heap)

    def pop(self) -> Request:
        """The next request in fair order; call `put_back` after deciding on it."""
        _, _, group = heapq.heappop(self.group_heap)
        _, _, user = heapq.heappop(self.user_heaps[group])
        self._current = (group, user)
        return self.queues[group][user].pop()

    def put_back(self) -> None:
        """Re-rank the last user and group with their usage after the decision."""
        group, user = self._current
        heap = self.user_heaps[group]
        own = self.queues[group][user]
        if own:
            heapq.heappush(heap, (self._user_score(user, own[-1]), own[-1].submitted_at, user))
        if heap:
            heapq.heappush(self.group_heap, (self._group_score(group), heap[0][1], group))

    def remaining(self) -> list[Request]:
        """Everything not yet popped, in no particular order."""
        return [r for members in self.queues.values() for own in members.values() for r in own]

    def charged(self, request: Request, gpu_seconds: float) -> None:
        """Charge an admission; later picks see it (scores refresh when next pushed)."""
        self.usage_user[request.user] += gpu_seconds
        if request.group is not None:
            self.usage_group[request.group] += gpu_seconds


def _free_at(
    gpu_type: str, needed: int, free_now: int, running: Iterable[Allocation], now: float
) -> tuple[float, int]:
    """When `needed` GPUs of a type will be free (by expected ends), and the surplus then."""
    ends = sorted(
        (a.live_until if a.live else a.expected_end) or math.inf
        for a in running
        if (a.gpu_type or CPU) == gpu_type
        for _ in range(a.gpus)
    )
    available, when = free_now, now
    for end in ends:
        if available >= needed:
            break
        available += 1
        when = max(now, end)
    return when, available - needed


def describe_wait(request: Request, position: int, why: str) -> str:
    """A sentence for the spawn page or the job list."""
    what = f"{request.gpus} GPU{'s' if request.gpus != 1 else ''}"
    if request.gpu_type:
        what += f" of type {request.gpu_type}"
    return f"waiting for {what} (position {position}){': ' + why if why else ''}"


def decide(
    queue: Iterable[Request],
    running: Iterable[Allocation],
    capacity: Mapping[str, int],
    usage: Usage,
    config: PolicyConfig,
    now: float,
    batch_slots: int | None = None,
) -> Decision:
    """Which requests start now, which live windows to cut, and positions of the rest."""
    running = list(running)
    usage = decay(usage, now, config.half_life_seconds)
    free = {t: n for t, n in capacity.items()}
    held_user: dict[str, int] = defaultdict(int)
    held_group: dict[str, int] = defaultdict(int)
    for allocation in running:
        kind = allocation.gpu_type or CPU
        free[kind] = free.get(kind, 0) - allocation.gpus
        held_user[allocation.user] += allocation.gpus
        if allocation.group is not None:
            held_group[allocation.group] += allocation.gpus
    requests = list(queue)
    starving = sorted(
        (r for r in requests if now - r.submitted_at >= config.max_wait_seconds),
        key=lambda r: (r.submitted_at, r.id),
    )
    starving_ids = {r.id for r in starving}
    by_priority: dict[int, list[Request]] = defaultdict(list)
    for request in requests:
        if request.id not in starving_ids:
            by_priority[request.priority].append(request)
    # Smallest request per type: once free GPUs fall below it, that type is done.
    smallest: dict[str, int] = {}
    for request in requests:
        kind = request.gpu_type or CPU
        if request.gpus and (kind not in smallest or request.gpus < smallest[kind]):
            smallest[kind] = request.gpus
    has_cpu = any(r.gpus == 0 for r in requests)
    started: list[str] = []
    reasons: dict[str, str] = {}
    waiting: list[Request] = []
    reservations: dict[str, tuple[float, int]] = {}
    blocked: set[str] = set()
    slots = math.inf if batch_slots is None else batch_slots
    fair_usage = Usage(dict(usage.by_user), dict(usage.by_group), usage.as_of)

    def consider(request: Request, order: _FairOrder | None) -> None:
        nonlocal slots
        kind = request.gpu_type or CPU
        if request.kind == "batch" and slots <= 0:
            waiting.append(request)
            reasons[request.id] = "all batch slots are in use"
            return
        if request.gpus == 0:
            started.append(request.id)
            slots -= request.kind == "batch"
            return
        if (
            config.user_gpu_cap is not None
            and held_user[request.user] + request.gpus > config.user_gpu_cap
        ):
            waiting.append(request)
            reasons[request.id] = f"{request.user} holds the most GPUs a user may hold"
            return
        group_cap = config.group_gpu_caps.get(request.group or "", None)
        if group_cap is not None and held_group[request.group or ""] + request.gpus > group_cap:
            waiting.append(request)
            reasons[request.id] = f"group {request.group} holds the most GPUs it may hold"
            return
        fits = free.get(kind, 0) >= request.gpus and kind not in blocked
        reservation = reservations.get(kind)
        if fits and reservation is not None:
            shadow, surplus = reservation
            # EASY backfill: only if it ends before the reserved request starts, or uses surplus.
            if now + request.expected_duration > shadow:
                if request.gpus > surplus:
                    fits = False
                else:
                    reservations[kind] = (shadow, surplus - request.gpus)
        if fits:
            started.append(request.id)
            free[kind] -= request.gpus
            held_user[request.user] += request.gpus
            if request.group is not None:
                held_group[request.group] += request.gpus
            slots -= request.kind == "batch"
            cost = request.gpus * request.expected_duration
            if order is not None:
                order.charged(request, cost)
            return
        waiting.append(request)
        reasons[request.id] = ""
        if request.gpus > capacity.get(kind, 0):
            reasons[request.id] = f"only {capacity.get(kind, 0)} such GPUs exist"
            return
        if kind not in reservations and (request.id in starving_ids or not config.backfill):
            if not config.backfill:
                blocked.add(kind)
            reservations[kind] = _free_at(kind, request.gpus, free.get(kind, 0), running, now)

    for request in starving:
        consider(request, None)
    for priority in sorted(by_priority, reverse=True):
        order = _FairOrder(by_priority[priority], fair_usage, config)
        while order:
            request = order.pop()
            consider(request, order)
            order.put_back()
            if (slots <= 0 or not has_cpu) and all(free.get(k, 0) < n for k, n in smallest.items()):
                # Nothing more can start: the rest only needs a position.
                waiting.extend(sorted(order.remaining(), key=lambda r: (r.submitted_at, r.id)))
                break
        fair_usage = Usage(dict(order.usage_user), dict(order.usage_group), usage.as_of)

    cut_live = _cut_live_windows(waiting, running, free, config, now)
    positions: dict[str, int] = {}
    seen: dict[str, int] = defaultdict(int)
    for request in waiting:
        kind = request.gpu_type or CPU
        seen[kind] += 1
        positions[request.id] = seen[kind]
        reasons[request.id] = describe_wait(request, seen[kind], reasons.get(request.id, ""))
    started_set = set(started)
    by_id = {r.id: r for r in requests if r.id in started_set}
    charged_usage = usage
    for request_id in started:
        request = by_id[request_id]
        charged_usage = charge(
            charged_usage, request.user, request.group, request.gpus * request.expected_duration
        )
    return Decision(tuple(started), tuple(cut_live), positions, reasons, charged_usage)


def _cut_live_windows(
    waiting: list[Request],
    running: list[Allocation],
    free: Mapping[str, int],
    config: PolicyConfig,
    now: float,
) -> list[tuple[str, float]]:
    """Shorten live kernels' windows on GPU types that someone waits for and cannot get."""
    short: dict[str, int] = {}
    for request in waiting:
        kind = request.gpu_type or CPU
        if request.gpus and kind not in short:
            short[kind] = max(0, request.gpus - free.get(kind, 0))
    cuts = []
    new_end = now + config.grace_period_seconds
    for allocation in sorted(running, key=lambda a: (a.live_until or math.inf, a.id), reverse=True):
        kind = allocation.gpu_type or CPU
        if not allocation.live or short.get(kind, 0) <= 0:
            continue
        if allocation.live_until is None or allocation.live_until > new_end:
            cuts.append((allocation.id, new_end))
            short[kind] -= allocation.gpus
    return cuts
