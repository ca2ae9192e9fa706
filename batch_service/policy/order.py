"""The fair order of the line: who goes next, by decayed usage per unit of weight.

Two levels: groups first, then users within a group; a user without a group is a group of
their own, so groups and lone users take turns on one level. A user's score for their next
request is (usage + that request's GPU-seconds) / weight: the usage they would have once it
ran. Among equals the smaller request goes first, so short runs are not stuck behind long
ones. A group's score is the same sum for the group, with the group's weight. A user's own
requests keep their submission order.

`FairOrder.pop` hands out requests one at a time and `put_back` takes the admission charge
(a heap per level: a decision that starts k requests costs O(k log users)). `FairOrder.line`
orders everyone left by virtual finish: the score each request will have when its turn comes
if those before it are admitted. That is one sort, and the order the heaps would give.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from operator import attrgetter

from batch_service.policy.model import Request

GroupKey = tuple[str, str]  # ("g", group) or ("u", user): a user without a group
Entry = tuple[int, float, float, str, str]  # -priority, score, submitted_at, id, name
_SUBMITTED = attrgetter("submitted_at", "id")


def _ranked(request: Request) -> tuple[int, float, str]:
    return (-request.priority, request.submitted_at, request.id)


def cost(request: Request) -> float:
    """GPU-seconds charged when a request is admitted."""
    return request.gpus * request.expected_duration


class FairOrder:
    """The line, handed out by priority, then group-fair, then user-fair."""

    def __init__(
        self,
        own: Mapping[tuple[str | None, str], list[Request]],
        usage_user: dict[str, float],
        usage_group: dict[str, float],
        user_weights: Mapping[str, float],
        group_weights: Mapping[str, float],
        one_priority: bool = False,
    ) -> None:
        self.usage_user = usage_user
        self.usage_group = usage_group
        self._user_weights = user_weights
        self._group_weights = group_weights
        # A user's requests in their own order; sorted only once the user's turn comes up.
        self._rank = _SUBMITTED if one_priority else _ranked
        self.lists: dict[GroupKey, dict[str, list[Request]]] = {}
        self._heads: dict[tuple[GroupKey, str], Request] = {}
        self._sorted: set[tuple[GroupKey, str]] = set()
        self.skipped: dict[tuple[GroupKey, str], list[Request]] = {}
        self._user_heaps: dict[GroupKey, list[Entry]] = {}
        self._group_heap: list[tuple[int, float, float, str, GroupKey]] = []
        rank = self._rank
        for (group, user), requests in own.items():
            if requests:
                key: GroupKey = ("g", group) if group is not None else ("u", user)
                self.lists.setdefault(key, {})[user] = requests
                self._heads[key, user] = min(requests, key=rank)
        for key, users in self.lists.items():
            heap = [self._user_entry(user, self._heads[key, user]) for user in users]
            heapq.heapify(heap)
            self._user_heaps[key] = heap
            self._group_heap.append(self._group_entry(key, heap[0]))
        heapq.heapify(self._group_heap)
        self._current: tuple[GroupKey, str] = (("u", ""), "")

    def _own(self, key: GroupKey, user: str) -> list[Request]:
        requests = self.lists[key][user]
        if (key, user) not in self._sorted:
            requests.sort(key=self._rank, reverse=True)  # next one at the end: pop() is O(1)
            self._sorted.add((key, user))
        return requests

    def _weight(self, user: str) -> float:
        return max(self._user_weights.get(user, 1.0), 1e-9)

    def _user_entry(self, user: str, head: Request) -> Entry:
        score = (self.usage_user.get(user, 0.0) + cost(head)) / self._weight(user)
        return (-head.priority, score, head.submitted_at, head.id, user)

    def _group_entry(self, key: GroupKey, top: Entry) -> tuple[int, float, float, str, GroupKey]:
        if key[0] == "u":
            return (top[0], top[1], top[2], top[3], key)
        head = self._heads[key, top[4]]
        weight = max(self._group_weights.get(key[1], 1.0), 1e-9)
        score = (self.usage_group.get(key[1], 0.0) + cost(head)) / weight
        return (top[0], score, top[2], top[3], key)

    def __bool__(self) -> bool:
        return bool(self._group_heap)

    def pop(self) -> Request:
        """The next request in line; call `put_back` after deciding on it."""
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
        requests = self.lists[key][user]
        heap = self._user_heaps[key]
        if requests:
            self._heads[key, user] = requests[-1]
            heapq.heappush(heap, self._user_entry(user, requests[-1]))
        else:
            del self._heads[key, user]
        if heap:
            heapq.heappush(self._group_heap, self._group_entry(key, heap[0]))

    def line(self) -> list[Request]:
        """Everyone not admitted, in the order their turns would come."""
        ordered: list[tuple[int, float, float, str, Request]] = []
        for key, users in self.lists.items():
            items: list[tuple[int, float, float, str, Request]] = []
            add = items.append
            for user in users:
                sequence = self.skipped.get((key, user), []) + self._own(key, user)[::-1]
                used, weight = self.usage_user.get(user, 0.0), self._weight(user)
                for r in sequence:
                    used += r.gpus * r.expected_duration
                    add((-r.priority, used / weight, r.submitted_at, r.id, r))
            if key[0] == "u":
                ordered.extend(items)
                continue
            items.sort()
            used = self.usage_group.get(key[1], 0.0)
            weight = max(self._group_weights.get(key[1], 1.0), 1e-9)
            for priority, _, submitted, request_id, r in items:
                used += r.gpus * r.expected_duration
                ordered.append((priority, used / weight, submitted, request_id, r))
        ordered.sort()
        return [item[4] for item in ordered]
