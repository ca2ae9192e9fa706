"""The line bucketed by user and shape, with the counts a decision reads, kept up to date one
request at a time.

A decision needs each user's requests apart, how many wait for each shape (GPU type and
count), whether everyone has one priority, how many are interactive, and each user's oldest
request of each shape (who has waited past max_wait). Worked out from a plain list, that is a
walk over the whole line in Python on every pass; kept here as requests come and go, a
decision costs about the number of users, not of requests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from batch_service.policy.model import Request
from batch_service.policy.order import ranked

Shape = tuple[str | None, int, bool]  # (GPU type, GPUs, exclusive)


def _earliest(request: Request) -> tuple[float, str]:
    return (request.submitted_at, request.id)


class QueueIndex:
    """Requests by user (in the order they were added), and counts over all of them."""

    def __init__(self, requests: Iterable[Request] = ()) -> None:
        self.by_user: dict[str, dict[str, Request]] = {}
        # user -> shape -> that user's requests of that shape, by id.
        self.by_shape: dict[str, dict[Shape, dict[str, Request]]] = {}
        # user -> how many of their requests count in each group (most users: one group).
        self.groups: dict[str, Counter[str | None]] = {}
        # (user, shape) -> their earliest request of that shape (worked out again on leaving).
        self._first: dict[tuple[str, Shape], Request] = {}
        # user -> their first request in their own order (order.ranked), likewise.
        self._head: dict[str, Request] = {}
        self.shapes: Counter[Shape] = Counter()
        self.priorities: Counter[int] = Counter()
        self.interactive = 0
        self._size = 0
        for request in requests:
            self.add(request)

    def add(self, request: Request) -> None:
        """Put a request in line (replacing one with its id)."""
        self.remove(request.id, request.user)
        user, shape = request.user, (request.gpu_type, request.gpus, request.exclusive)
        self.by_user.setdefault(user, {})[request.id] = request
        self.by_shape.setdefault(user, {}).setdefault(shape, {})[request.id] = request
        first = self._first.get((user, shape))
        if first is not None and _earliest(request) < _earliest(first):
            self._first[user, shape] = request
        head = self._head.get(user)
        if head is not None and ranked(request) < ranked(head):
            self._head[user] = request
        self._count(request, 1)

    def remove(self, request_id: str, user: str) -> None:
        """Take a request out of line, if it is there."""
        own = self.by_user.get(user)
        old = None if own is None else own.pop(request_id, None)
        if old is None:
            return
        shape = (old.gpu_type, old.gpus, old.exclusive)
        bucket = self.by_shape[user][shape]
        del bucket[request_id]
        if self._first.get((user, shape)) is old:
            del self._first[user, shape]
        if self._head.get(user) is old:
            del self._head[user]
        if not bucket:
            del self.by_shape[user][shape]
        self._count(old, -1)
        if not own:
            del self.by_user[user], self.by_shape[user], self.groups[user]

    def first(self, user: str, shape: Shape) -> Request:
        """The user's earliest request of a shape (it has waited longest)."""
        first = self._first.get((user, shape))
        if first is None:
            first = self._first[user, shape] = min(
                self.by_shape[user][shape].values(), key=_earliest
            )
        return first

    def head(self, user: str) -> Request:
        """The user's first request in their own order (highest priority, smallest, oldest)."""
        head = self._head.get(user)
        if head is None:
            head = self._head[user] = min(self.by_user[user].values(), key=ranked)
        return head

    def oldest(self, user: str) -> float:
        """When the user's oldest request in line was submitted."""
        return min(self.first(user, shape).submitted_at for shape in self.by_shape[user])

    def _count(self, request: Request, n: int) -> None:
        groups = self.groups.setdefault(request.user, Counter())
        groups[request.group] += n
        if not groups[request.group]:
            del groups[request.group]
        shape = (request.gpu_type, request.gpus, request.exclusive)
        self.shapes[shape] += n
        if not self.shapes[shape]:
            del self.shapes[shape]
        self.priorities[request.priority] += n
        if not self.priorities[request.priority]:
            del self.priorities[request.priority]
        self.interactive += n * (request.kind != "batch")
        self._size += n

    def plus(self, requests: Iterable[Request]) -> QueueIndex:
        """A copy with a few more requests (the turns of a pass), sharing untouched users."""
        copy = QueueIndex()
        copy.by_user, copy.by_shape = dict(self.by_user), dict(self.by_shape)
        copy.groups, copy._first = dict(self.groups), dict(self._first)
        copy._head = dict(self._head)
        copy.shapes = Counter(self.shapes)
        copy.priorities = Counter(self.priorities)
        copy.interactive, copy._size = self.interactive, self._size
        for request in requests:
            user = request.user
            # The users a turn touches get copies of their own; everyone else is shared.
            copy.by_user[user] = dict(copy.by_user.get(user, {}))
            copy.by_shape[user] = {s: dict(b) for s, b in copy.by_shape.get(user, {}).items()}
            copy.groups[user] = Counter(copy.groups.get(user, {}))
            copy.add(request)
        return copy

    def __iter__(self) -> Iterator[Request]:
        for own in self.by_user.values():
            yield from own.values()

    def __len__(self) -> int:
        return self._size
