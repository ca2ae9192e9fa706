"""The fair order of the line: who goes next, by decayed usage per unit of weight.

Two levels: groups first, then users within a group; a user without a group is a group of
their own, so groups and lone users take turns on one level. Priority overrides both.

A user's score for their next request is (usage + the request's weighted size) / weight: the
usage they would have once it ran (virtual finish, as in weighted fair queueing), so among
equals the smaller request goes first and short runs are not stuck behind long ones. A
request's size counts less the longer it has waited and not at all after `max_wait`: then
only usage decides (virtual start), so a big request is not held back for its size for ever.
A group's score is the same sum for the group, with the group's weight. A user's own
requests go smallest first (GPUs, then time limit), so nobody's short run waits behind their
own long one.

`FairOrder.pop` hands out requests one at a time and `put_back` takes the admission charge
(a heap per level: a decision that starts k requests costs O(k log users)). `FairOrder.line`
orders everyone left by the score each request will have when its turn comes, if those
before it are admitted: one sort, the order the heaps would give.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from operator import attrgetter, itemgetter

from batch_service.policy.model import Request

GroupKey = tuple[str, str]  # ("g", group) or ("u", user): a user without a group
Entry = tuple[int, float, float, str, str]  # -priority, score, submitted_at, id, user
# A user's own requests: highest priority first, then the smallest (GPUs, then time limit),
# then the oldest. A C-level key when the whole line has one priority.
_SMALLEST = attrgetter("gpus", "expected_duration", "submitted_at", "id")
_FIRST = itemgetter(0)
_BOUND = -math.inf  # in place of submitted_at: an entry whose score is only a lower bound


def ranked(request: Request) -> tuple[int, int, float, float, str]:
    """A user's own order: highest priority, then smallest, then oldest (first is least)."""
    return (
        -request.priority,
        request.gpus,
        request.expected_duration,
        request.submitted_at,
        request.id,
    )


def cost(request: Request) -> float:
    """GPU-seconds charged when a request is admitted."""
    return request.gpus * request.expected_duration


class FairOrder:
    """The line, handed out by priority, then group-fair, then user-fair."""

    def __init__(
        self,
        own: Mapping[tuple[str | None, str], Collection[Request]],
        usage_user: dict[str, float],
        usage_group: dict[str, float],
        user_weights: Mapping[str, float],
        group_weights: Mapping[str, float],
        now: float,
        max_wait: float,
        one_priority: bool = False,
        known_head: Callable[[str], Request | None] | None = None,
    ) -> None:
        self.usage_user = usage_user
        self.usage_group = usage_group
        self._user_weights = user_weights
        self._group_weights = group_weights
        self._now = now
        self._max_wait = max(max_wait, 1e-9)
        self._rank = _SMALLEST if one_priority else ranked
        self._known_head = known_head
        # A user's requests stay as given (the line's own, not copied) until the user's turn
        # comes up, then they are copied in order: most users' turns never come.
        self.lists: dict[GroupKey, dict[str, Collection[Request]]] = {}
        self._heads: dict[tuple[GroupKey, str], Request] = {}
        self._sorted: set[tuple[GroupKey, str]] = set()
        self.skipped: dict[tuple[GroupKey, str], list[Request]] = {}
        self._user_heaps: dict[GroupKey, list[Entry]] = {}
        self._group_heap: list[tuple[int, float, float, str, GroupKey]] = []
        # Each user's collection is non-empty (decide leaves out users with nothing left).
        for (group, user), requests in own.items():
            key: GroupKey = ("g", group) if group is not None else ("u", user)
            self.lists.setdefault(key, {})[user] = requests
        if one_priority and self.lists:
            # Usage alone bounds a user's score from below: find their smallest request only
            # when that bound reaches the top of the heap (few users ever do). Inlined: this
            # runs once per user waiting, the largest part of a decision with many users.
            users = next(iter(self.lists.values()))
            priority = -next(iter(next(iter(users.values())))).priority
            weights, used = self._user_weights, self.usage_user
            for key, users in self.lists.items():
                heap = [
                    (
                        priority,
                        used.get(user, 0.0) / max(weights.get(user, 1.0), 1e-9),
                        _BOUND,
                        "",
                        user,
                    )
                    for user in users
                ]
                if len(heap) > 1:
                    heapq.heapify(heap)
                self._user_heaps[key] = heap
                top = heap[0]
                if key[0] == "u":
                    self._group_heap.append((top[0], top[1], top[2], top[3], key))
                else:
                    self._group_heap.append(self._group_entry(key, top))
        else:
            for key, users in self.lists.items():
                heap = [self._user_entry(user, self._head(key, user)) for user in users]
                heapq.heapify(heap)
                self._user_heaps[key] = heap
                self._group_heap.append(self._group_entry(key, heap[0]))
        heapq.heapify(self._group_heap)
        self._current: tuple[GroupKey, str] = (("u", ""), "")

    def size(self, request: Request) -> float:
        """The part of a request's cost its score counts: all when new, none after max_wait."""
        fresh = 1.0 - (self._now - request.submitted_at) / self._max_wait
        return cost(request) * min(1.0, fresh) if fresh > 0 else 0.0

    def _weight(self, user: str) -> float:
        return max(self._user_weights.get(user, 1.0), 1e-9)

    def _group_weight(self, group: str) -> float:
        return max(self._group_weights.get(group, 1.0), 1e-9)

    def _own(self, key: GroupKey, user: str) -> list[Request]:
        requests = self.lists[key][user]
        if (key, user) not in self._sorted:
            # Next one at the end: pop() is O(1).
            requests = self.lists[key][user] = sorted(requests, key=self._rank, reverse=True)
            self._sorted.add((key, user))
        assert isinstance(requests, list)
        return requests

    def _head(self, key: GroupKey, user: str) -> Request:
        head = self._heads.get((key, user))
        if head is None:
            known = self._known_head(user) if self._known_head is not None else None
            head = known if known is not None else min(self.lists[key][user], key=self._rank)
            self._heads[key, user] = head
        return head

    def _bound(self, priority: int, user: str) -> Entry:
        return (priority, self.usage_user.get(user, 0.0) / self._weight(user), _BOUND, "", user)

    def _top_user(self, key: GroupKey) -> Entry:
        """The first user of a group, with their score worked out exactly."""
        heap = self._user_heaps[key]
        while heap[0][2] == _BOUND:
            user = heap[0][4]
            heapq.heapreplace(heap, self._user_entry(user, self._head(key, user)))
        return heap[0]

    def _user_entry(self, user: str, head: Request) -> Entry:
        score = (self.usage_user.get(user, 0.0) + self.size(head)) / self._weight(user)
        return (-head.priority, score, head.submitted_at, head.id, user)

    def _group_entry(self, key: GroupKey, top: Entry) -> tuple[int, float, float, str, GroupKey]:
        if key[0] == "u":
            return (top[0], top[1], top[2], top[3], key)
        if top[2] == _BOUND:
            return (
                top[0],
                self.usage_group.get(key[1], 0.0) / self._group_weight(key[1]),
                _BOUND,
                "",
                key,
            )
        head = self._heads[key, top[4]]
        score = (self.usage_group.get(key[1], 0.0) + self.size(head)) / self._group_weight(key[1])
        return (top[0], score, top[2], top[3], key)

    def __bool__(self) -> bool:
        return bool(self._group_heap)

    def pop(self) -> Request:
        """The next request in line; call `put_back` after deciding on it."""
        while self._group_heap[0][2] == _BOUND:
            key = self._group_heap[0][4]
            heapq.heapreplace(self._group_heap, self._group_entry(key, self._top_user(key)))
        key = heapq.heappop(self._group_heap)[4]
        user = heapq.heappop(self._user_heaps[key])[4]
        self._current = (key, user)
        return self._own(key, user).pop()

    def put_back(self, request: Request, admitted: bool) -> None:
        """Charge the last request if admitted (else keep it in line) and re-rank its owner."""
        key, user = self._current
        if admitted:
            charged = cost(request)
            self.usage_user[user] = self.usage_user.get(user, 0.0) + charged
            if request.group is not None:
                group = request.group
                self.usage_group[group] = self.usage_group.get(group, 0.0) + charged
        else:
            self.skipped.setdefault(self._current, []).append(request)
        requests = self._own(key, user)
        heap = self._user_heaps[key]
        if requests:
            self._heads[key, user] = requests[-1]
            heapq.heappush(heap, self._user_entry(user, requests[-1]))
        else:
            del self._heads[key, user]
        if heap:
            heapq.heappush(self._group_heap, self._group_entry(key, heap[0]))

    def line(self, ahead: Sequence[Request] = ()) -> list[Request]:
        """Everyone not admitted, in the order their turns would come after `ahead` ran."""
        usage_user, usage_group = dict(self.usage_user), dict(self.usage_group)
        for r in ahead:
            usage_user[r.user] = usage_user.get(r.user, 0.0) + cost(r)
            if r.group is not None:
                usage_group[r.group] = usage_group.get(r.group, 0.0) + cost(r)
        now, per_second = self._now, 1.0 / self._max_wait
        # Keys are (-priority, score, submitted_at, id, step). A request whose key would come
        # before its predecessor's (it has waited longer, so its size counts less) takes the
        # predecessor's key and the next step: the heaps would hand it out right after.
        Key = tuple[int, float, float, str, int]
        ordered: list[tuple[Key, Request]] = []
        for key, users in self.lists.items():
            items: list[tuple[Key, float, float, Request]] = []
            add = items.append
            for user in users:
                sequence = self.skipped.get((key, user), []) + self._own(key, user)[::-1]
                used, weight = usage_user.get(user, 0.0), self._weight(user)
                last: Key | None = None
                for r in sequence:
                    charged = r.gpus * r.expected_duration
                    fresh = 1.0 - (now - r.submitted_at) * per_second
                    size = charged if fresh >= 1.0 else (charged * fresh if fresh > 0 else 0.0)
                    turn = (-r.priority, (used + size) / weight, r.submitted_at, r.id, 0)
                    if last is not None and turn < last:
                        turn = (*last[:4], last[4] + 1)
                    add((turn, charged, size, r))
                    last = turn
                    used += charged
            if key[0] == "u":
                ordered += [(turn, r) for turn, _, _, r in items]
                continue
            items.sort(key=_FIRST)
            used, weight = usage_group.get(key[1], 0.0), self._group_weight(key[1])
            last = None
            for (priority, _, submitted, request_id, _), charged, size, r in items:
                turn = (priority, (used + size) / weight, submitted, request_id, 0)
                if last is not None and turn < last:
                    turn = (*last[:4], last[4] + 1)
                ordered.append((turn, r))
                last = turn
                used += charged
        ordered.sort(key=_FIRST)
        return [r for _, r in ordered]
