"""The line kept between decisions (QueueIndex) decides as the same requests in a plain list.

A decision reads what the index keeps per user (each user's earliest request per shape, their
first in their own order, the counts of shapes) and hands each user's requests on without
copying them; the index copies a user's requests before changing them once shared. Here an
index lives through many decisions on seeded random lines (users in several groups,
priorities, GPU types, CPU requests, exclusive runs, live kernels, caps, starving requests,
a small backfill depth) while requests come, go and start, and every decision, read only after
the index has changed again, equals the decision on a plain list; the kept parts equal the
straightforward computation from every request.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from batch_service.policy import (
    Allocation,
    Decision,
    PolicyConfig,
    Request,
    Usage,
    decide,
    queue_index,
)
from batch_service.policy.order import ranked
from batch_service.policy.queue_index import QueueIndex
from batch_service.policy.starving import head_after, ordered_after, starving

NOW = 1_000_000.0
MAX_WAIT = 10_000.0
TYPES = ["a100", "h100", None]
USERS = [f"u{i}" for i in range(9)]


def kind(r: Request | Allocation) -> str:
    return "" if r.gpus == 0 else (r.gpu_type or "")


GROUPS = (None, None, "lab", "lab", "med")


def new_request(rng: random.Random, n: int, now: float, one_priority: bool) -> Request:
    user = rng.randrange(len(USERS))
    # Most users queue in one group (the kept first request applies), a few in several.
    group = GROUPS[user % len(GROUPS)] if rng.random() < 0.9 else rng.choice(GROUPS)
    return Request(
        f"q{n}",
        USERS[user],
        rng.choice((0, 1, 1, 1, 2, 3, 4)),
        rng.choice(TYPES),
        group=group,
        kind=rng.choice(("batch", "batch", "batch", "interactive")),
        priority=0 if one_priority else rng.choice((0, 0, 1, 2)),
        submitted_at=now - rng.uniform(0, 2.5 * MAX_WAIT),
        expected_duration=rng.choice((60, 600, 1800, 3600, 14_400)),
        exclusive=rng.random() < 0.08,
    )


def running_now(rng: random.Random, capacity: dict[str, int], now: float) -> list[Allocation]:
    running = []
    for t in TYPES:
        left = capacity[t or ""] - rng.randint(0, 2)
        while left > 0:
            n = rng.randint(1, min(left, 3))
            live = rng.random() < 0.2
            running.append(
                Allocation(
                    f"r{len(running)}",
                    rng.choice(USERS),
                    n,
                    t,
                    group=rng.choice((None, "lab", "med")),
                    started_at=now - 100,
                    expected_end=now + rng.randint(1, 8000),
                    live=live,
                    live_until=now + rng.randint(1, 3000) if live else None,
                    kind=rng.choice(("batch", "batch", "interactive", "stopping")),
                    exclusive=not live and rng.random() < 0.05,
                )
            )
            left -= n
    return running


def config_for(rng: random.Random) -> PolicyConfig:
    return PolicyConfig(
        half_life_seconds=3600,
        max_wait_seconds=MAX_WAIT,
        user_gpu_cap=rng.choice((None, None, 3)),
        group_gpu_caps=rng.choice(({}, {"lab": 4})),
        user_weights=rng.choice(({}, {"u1": 2.0, "u2": 0.5})),
        group_weights=rng.choice(({}, {"lab": 3.0})),
        backfill=rng.random() < 0.8,
        backfill_depth=rng.choice((2, 5, 1000)),
        machines=rng.choice((1, 1, 2, 3)),
        exclusive_pool=rng.random() < 0.1,
    )


def settled(decision: Decision) -> dict[str, object]:
    """Everything a decision says, its line read now."""
    return {
        "start": decision.start,
        "cut_live": decision.cut_live,
        "cut_reasons": dict(decision.cut_reasons),
        "usage": decision.usage,
        "positions": dict(decision.positions),
        "reasons": dict(decision.reasons),
        "waits": dict(decision.waits),
        "holders": dict(decision.holders),
        "waiting": dict(decision.waiting),
    }


def straightforward_starving(
    requests: list[Request], held: dict[str, int], smallest: dict[str, int], threshold: float
) -> list[Request]:
    """Per owner, their oldest request that starves (as policy/decide.py defines it), oldest
    first: from every request, one at a time."""
    oldest: dict[str, Request] = {}
    for r in requests:
        starves = r.submitted_at <= threshold and (
            r.exclusive or (r.gpus > held.get(r.user, 0) and r.gpus > smallest[kind(r)])
        )
        mine = oldest.get(r.user)
        if starves and (mine is None or (r.submitted_at, r.id) < (mine.submitted_at, mine.id)):
            oldest[r.user] = r
    return sorted(oldest.values(), key=lambda r: (r.submitted_at, r.id))


def change(rng: random.Random, index: QueueIndex, made: list[int], now: float, one: bool) -> None:
    """A few arrive, a few are cancelled, one is submitted again under its id."""
    for _ in range(rng.randint(0, 6)):
        made[0] += 1
        index.add(new_request(rng, made[0], now, one))
    present = list(index)
    for r in rng.sample(present, min(len(present), rng.randint(0, 4))):
        index.remove(r.id, r.user)
    present = list(index)
    if present and rng.random() < 0.3:
        old = rng.choice(present)
        index.add(replace(old, expected_duration=old.expected_duration + 60))


@pytest.mark.parametrize("seed", range(12))
def test_a_kept_line_decides_as_a_plain_line_decision_after_decision(seed: int) -> None:
    decisions_after_decision(seed)


@pytest.mark.parametrize("seed", range(4))
def test_users_with_long_lines_decide_the_same(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Beyond ORDERED_KEPT requests a user's own order is sorted again when read.
    monkeypatch.setattr(queue_index, "ORDERED_KEPT", 3)
    decisions_after_decision(seed)


def decisions_after_decision(seed: int) -> None:
    """Decisions on a line kept through changes equal those on the same line as a list."""
    rng = random.Random(seed)
    one_priority = seed % 3 == 0
    capacity = {"a100": rng.randint(0, 8), "h100": rng.randint(1, 6), "": rng.randint(0, 4)}
    now, made = NOW, [0]
    index = QueueIndex()
    for _ in range(rng.randint(10, 60)):
        made[0] += 1
        index.add(new_request(rng, made[0], now, one_priority))
    running = running_now(rng, capacity, now)
    usage = Usage({u: rng.uniform(0, 1e5) for u in USERS}, {"lab": 5e4}, now)
    starts = 0
    for _ in range(15):
        config = config_for(rng)
        slots = rng.choice((None, None, 2))
        extra = dict(
            batch_slots=slots,
            cpu_slots=rng.choice((None, 1)),
            live_slots=rng.choice((None, 1)),
        )
        # Sometimes a pass's own copy with a few more requests (turns), as the service makes.
        turns = [new_request(rng, 10_000 + made[0] + i, now, one_priority) for i in range(2)]
        line = index.plus(turns) if rng.random() < 0.3 else index
        plain = list(line)
        kept = decide(line, running, capacity, usage, config, now, **extra)
        fresh = decide(plain, running, capacity, usage, config, now, **extra)
        expected = settled(fresh)

        # What starts leaves the line, the line changes: the kept decision is read after.
        started = set(kept.start)
        for r in [r for r in line if r.id in started]:
            index.remove(r.id, r.user)
            running.append(
                Allocation(
                    r.id,
                    r.user,
                    r.gpus,
                    r.gpu_type,
                    group=r.group,
                    started_at=now,
                    expected_end=now + r.expected_duration,
                    kind="batch" if r.kind == "batch" else "interactive",
                    exclusive=r.exclusive,
                )
            )
        change(rng, index, made, now + 1200, one_priority)
        assert settled(kept) == expected
        starts += len(kept.start)

        now += 1200
        usage = kept.usage
        running = [a for a in running if (a.expected_end or 0) > now or rng.random() < 0.3]
    assert starts > 0  # the lines were not all stuck


@pytest.mark.parametrize("seed", range(20))
def test_starving_requests_are_the_straightforward_choice(seed: int) -> None:
    rng = random.Random(1000 + seed)
    index, made, heads = QueueIndex(), [0], 0
    for round_ in range(10):
        change(rng, index, made, NOW, one=False)
        for _ in range(rng.randint(0, 10)):
            made[0] += 1
            index.add(new_request(rng, made[0], NOW, one_priority=False))
        requests = list(index)
        if not requests:
            continue
        held = {u: rng.randint(0, 3) for u in USERS if rng.random() < 0.5}
        smallest: dict[str, int] = {}
        for r in requests:
            smallest[kind(r)] = min(smallest.get(kind(r), r.gpus), r.gpus)
        threshold = NOW - MAX_WAIT * rng.uniform(0.5, 2.0)
        for user in rng.sample(USERS, 3):
            if user in index.by_user:
                index.ordered(user)  # kept from now on, changed with the line
        if round_ % 2:
            index.share()  # as a decision leaves it: later changes copy a user's requests
        chosen = starving(index, held, smallest, threshold)
        reference = straightforward_starving(requests, held, smallest, threshold)
        assert list(chosen.values()) == reference
        assert list(chosen) == [r.user for r in reference]
        # The first in each user's own order among what is left to the fair order, and that
        # order, kept by the index as requests come and go.
        for user in {r.user for r in requests}:
            head = head_after(index, chosen, user)
            rest = [r for r in requests if r.user == user and r is not chosen.get(user)]
            if head is not None:
                assert head == min(rest, key=ranked)
            heads += head is not None and user in chosen
            order = ordered_after(index, chosen, user)
            assert order is None or order == sorted(rest, key=ranked)
            assert index.ordered(user) == sorted(index.by_user[user].values(), key=ranked)
    assert heads > 0


@pytest.mark.parametrize("seed", range(20))
def test_the_smallest_request_left_of_a_type_is_the_straightforward_one(seed: int) -> None:
    rng = random.Random(2000 + seed)
    index, made = QueueIndex(), [0]
    for _ in range(5):
        change(rng, index, made, NOW, one=False)
    requests = list(index)
    taken = rng.sample(requests, rng.randint(0, len(requests)))
    kinds = {kind(r) for r in requests} | {"v100"}
    gone = {r.id for r in taken}
    reference: dict[str, int] = {}
    for r in requests:
        if r.id not in gone:
            reference[kind(r)] = min(reference.get(kind(r), r.gpus), r.gpus)
    assert index.smallest_left(kinds, taken) == reference


def test_requests_handed_to_a_decision_stay_as_they_were_while_the_line_changes() -> None:
    index = QueueIndex([Request("a1", "ann", 1), Request("a2", "ann", 2), Request("b1", "bob", 1)])
    shared = index.share()
    ann, bob = shared["ann"], shared["bob"]
    index.add(Request("a3", "ann", 1))
    index.remove("a1", "ann")
    index.remove("b1", "bob")  # bob's last request: bob leaves the line
    assert sorted(ann) == ["a1", "a2"] and sorted(bob) == ["b1"]
    assert sorted(r.id for r in index) == ["a2", "a3"]
    # Not shared again: later changes need no copy, and stay in the index.
    index.add(Request("a4", "ann", 1))
    assert sorted(index.by_user["ann"]) == ["a2", "a3", "a4"] and sorted(ann) == ["a1", "a2"]
