"""The line bucketed by user, with the counts a decision reads, kept up to date one request at
a time.

A decision needs each user's requests apart, how many wait for each shape (GPU type, count,
exclusive), whether everyone has one priority, how many are interactive, and, per user, the
groups they count in, their oldest request and their earliest of each shape (who has waited
past max_wait) and their first in their own order. Worked out from a plain list on every pass,
that is several walks over the whole line in Python; kept here as requests come and go (the
per-user parts worked out when first asked, then kept), a decision costs about the number of
users, not of requests. Made from a plain list, the counts are taken in C.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from operator import attrgetter

from batch_service.policy.model import Request
from batch_service.policy.order import ranked

Shape = tuple[str | None, int, bool]  # (GPU type, GPUs, exclusive)
_SHAPE = attrgetter("gpu_type", "gpus", "exclusive")
_GROUP = attrgetter("group")
_PRIORITY = attrgetter("priority")
_SUBMITTED_AT = attrgetter("submitted_at")


def _earliest(request: Request) -> tuple[float, str]:
    return (request.submitted_at, request.id)


def _drop_zero(counter: Counter, key: object) -> None:
    if not counter[key]:
        del counter[key]


class QueueIndex:
    """Requests by user (in the order they were added), and counts over all of them."""

    def __init__(self, requests: Iterable[Request] = ()) -> None:
        every = requests if isinstance(requests, list) else list(requests)
        by_user: dict[str, dict[str, Request]] = {}
        for r in every:
            own = by_user.get(r.user)
            if own is None:
                by_user[r.user] = {r.id: r}
            else:
                own[r.id] = r
        self.by_user = by_user
        self._size = sum(map(len, by_user.values()))
        if self._size != len(every):  # an id given twice: the last one stands
            every = list(self)
        self.shapes: Counter[Shape] = Counter(map(_SHAPE, every))
        self.priorities: Counter[int] = Counter(map(_PRIORITY, every))
        self.interactive = sum(1 for r in every if r.kind != "batch")
        # Per user, worked out when first asked and then kept up to date.
        self._groups: dict[str, Counter[str | None]] = {}
        self._by_shape: dict[str, dict[Shape, dict[str, Request]]] = {}
        self._oldest: dict[str, float] = {}
        self._first: dict[tuple[str, Shape], Request] = {}
        self._head: dict[str, Request] = {}

    # --- changes ----------------------------------------------------------------------
    def add(self, request: Request) -> None:
        """Put a request in line (replacing one with its id)."""
        self.remove(request.id, request.user)
        user, shape = request.user, _SHAPE(request)
        self.by_user.setdefault(user, {})[request.id] = request
        self._size += 1
        self.shapes[shape] += 1
        self.priorities[request.priority] += 1
        self.interactive += request.kind != "batch"
        if user in self._groups:
            self._groups[user][request.group] += 1
        if user in self._by_shape:
            self._by_shape[user].setdefault(shape, {})[request.id] = request
        oldest = self._oldest.get(user)
        if oldest is not None and request.submitted_at < oldest:
            self._oldest[user] = request.submitted_at
        first = self._first.get((user, shape))
        if first is not None and _earliest(request) < _earliest(first):
            self._first[user, shape] = request
        head = self._head.get(user)
        if head is not None and ranked(request) < ranked(head):
            self._head[user] = request

    def remove(self, request_id: str, user: str) -> None:
        """Take a request out of line, if it is there."""
        own = self.by_user.get(user)
        old = None if own is None else own.pop(request_id, None)
        if old is None:
            return
        shape = _SHAPE(old)
        self._size -= 1
        self.shapes[shape] -= 1
        _drop_zero(self.shapes, shape)
        self.priorities[old.priority] -= 1
        _drop_zero(self.priorities, old.priority)
        self.interactive -= old.kind != "batch"
        if user in self._groups:
            self._groups[user][old.group] -= 1
            _drop_zero(self._groups[user], old.group)
        if user in self._by_shape:
            bucket = self._by_shape[user][shape]
            del bucket[request_id]
            if not bucket:
                del self._by_shape[user][shape]
        if self._oldest.get(user) == old.submitted_at:
            del self._oldest[user]
        if self._first.get((user, shape)) is old:
            del self._first[user, shape]
        if self._head.get(user) is old:
            del self._head[user]
        if not own:
            del self.by_user[user]
            for kept in (self._groups, self._by_shape, self._oldest, self._head):
                kept.pop(user, None)

    # --- per user ---------------------------------------------------------------------
    def groups(self, user: str) -> Counter[str | None]:
        """How many of the user's requests count in each group (most users: one group)."""
        groups = self._groups.get(user)
        if groups is None:
            groups = self._groups[user] = Counter(map(_GROUP, self.by_user[user].values()))
        return groups

    def shapes_of(self, user: str) -> dict[Shape, dict[str, Request]]:
        """The user's requests by shape."""
        shapes = self._by_shape.get(user)
        if shapes is None:
            shapes = self._by_shape[user] = {}
            for r in self.by_user[user].values():
                shapes.setdefault(_SHAPE(r), {})[r.id] = r
        return shapes

    def oldest(self, user: str) -> float:
        """When the user's oldest request in line was submitted."""
        oldest = self._oldest.get(user)
        if oldest is None:
            oldest = self._oldest[user] = min(map(_SUBMITTED_AT, self.by_user[user].values()))
        return oldest

    def first(self, user: str, shape: Shape) -> Request:
        """The user's earliest request of a shape (it has waited longest)."""
        first = self._first.get((user, shape))
        if first is None:
            bucket = self.shapes_of(user)[shape]
            first = self._first[user, shape] = min(bucket.values(), key=_earliest)
        return first

    def head(self, user: str) -> Request:
        """The user's first request in their own order (highest priority, smallest, oldest)."""
        head = self._head.get(user)
        if head is None:
            head = self._head[user] = min(self.by_user[user].values(), key=ranked)
        return head

    # --- a pass's own copy ------------------------------------------------------------
    def plus(self, requests: Iterable[Request]) -> QueueIndex:
        """A copy with a few more requests (the turns of a pass), sharing untouched users;
        this index itself when there are none (what a decision works out per user is then kept
        for the next pass)."""
        requests = list(requests)
        if not requests:
            return self
        copy = QueueIndex()
        copy.by_user = dict(self.by_user)
        copy.shapes, copy.priorities = Counter(self.shapes), Counter(self.priorities)
        copy.interactive, copy._size = self.interactive, self._size
        copy._groups, copy._by_shape = dict(self._groups), dict(self._by_shape)
        copy._oldest, copy._first, copy._head = (
            dict(self._oldest),
            dict(self._first),
            dict(self._head),
        )
        for request in requests:
            user = request.user
            # The users a turn touches get copies of their own; everyone else is shared.
            copy.by_user[user] = dict(copy.by_user.get(user, {}))
            if user in copy._groups:
                copy._groups[user] = Counter(copy._groups[user])
            if user in copy._by_shape:
                copy._by_shape[user] = {s: dict(b) for s, b in copy._by_shape[user].items()}
            copy.add(request)
        return copy

    def __iter__(self) -> Iterator[Request]:
        for own in self.by_user.values():
            yield from own.values()

    def __len__(self) -> int:
        return self._size
