"""Starving requests: those that go first, oldest first, because they have waited too long.

A request starves when it has waited `max_wait_seconds`, is exclusive or larger than the
smallest request waiting for its GPU type (so smaller ones can keep passing it), and its owner
holds fewer GPUs than it asks for. Per owner, the one that waited longest.

Read from each user's earliest request of each shape, kept by the line's index
(QueueIndex.firsts, earliest first): a decision looks at a request or two per user, not at
every request.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping

from batch_service.policy.model import Request
from batch_service.policy.queue_index import QueueIndex


def starving(
    index: QueueIndex, held_user: Mapping[str, int], smallest: Mapping[str, int], threshold: float
) -> dict[str, Request]:
    """Owner -> their starving request, oldest first. threshold: submitted at or before it,
    a request has waited `max_wait_seconds`; smallest: the smallest request per GPU type."""
    candidates = []
    firsts_of, oldest = index.firsts, index.oldest
    for user in index.by_user:
        if oldest(user) > threshold:  # kept, or one min(): cheaper than the user's shapes
            continue
        firsts = firsts_of(user)
        held = held_user.get(user, 0)
        # Earliest first: the first that starves is the user's oldest. Read from the index's
        # tuples, not the requests (a line of a million: fewer cache misses).
        for submitted_at, request_id, gpus, kind, exclusive, r in firsts:
            if submitted_at > threshold:
                break
            if exclusive or (gpus > held and gpus > smallest[kind]):
                candidates.append((submitted_at, request_id, user, r))
                break
    candidates.sort()  # by (submitted_at, id): no two alike
    return {user: r for _, _, user, r in candidates}


def head_after(index: QueueIndex, starving_of: Mapping[str, Request], user: str) -> Request | None:
    """The user's first request in their own order once their starving one is taken out, as
    the index keeps it; None when not known without a look at all their requests (they queue
    in several groups, or their first is the starving one)."""
    if len(index.groups(user)) != 1:
        return None
    head = index.head(user)
    taken = starving_of.get(user)
    return head if taken is None or taken.id != head.id else None


def ordered_after(
    index: QueueIndex, starving_of: Mapping[str, Request], user: str
) -> list[Request] | None:
    """The user's requests in their own order less their starving one, as the index keeps
    that order; None when they queue in several groups (their lines are apart)."""
    if len(index.groups(user)) != 1:
        return None
    ordered = index.ordered(user)
    taken = starving_of.get(user)
    return ordered if taken is None else [r for r in ordered if r is not taken]


class Rest(Collection[Request]):
    """A user's requests but their starving one, read when iterated (not copied)."""

    __slots__ = ("_requests", "_taken")

    def __init__(self, requests: Collection[Request], taken: Request) -> None:
        self._requests = requests
        self._taken = taken.id

    def __iter__(self) -> Iterator[Request]:
        taken = self._taken
        return (r for r in self._requests if r.id != taken)

    def __len__(self) -> int:
        return len(self._requests) - 1

    def __contains__(self, item: object) -> bool:
        return item in self._requests and getattr(item, "id", None) != self._taken
