"""Properties of the admission policy over generated lines (hypothesis)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from batch_service.policy import CODES, Allocation, PolicyConfig, Request, Usage, decide
from batch_service.policy.queue_index import QueueIndex

TYPES = ["a100", "h100"]
NOW = 100_000.0


@st.composite
def lines(draw):  # type: ignore[no-untyped-def]
    """A capacity, running allocations that fit in it, and a queue."""
    capacity = {t: draw(st.integers(0, 8)) for t in TYPES}
    running = []
    for t in TYPES:
        used = draw(st.integers(0, capacity[t]))
        while used > 0:
            n = draw(st.integers(1, used))
            running.append(
                Allocation(
                    f"r{len(running)}",
                    draw(st.sampled_from("abcde")),
                    n,
                    t,
                    expected_end=NOW + draw(st.integers(1, 5000)),
                    # A server still stopping holds its GPUs like a run until the hub lets it
                    # go: nothing is admitted against them (the hand-off).
                    kind=draw(st.sampled_from(["batch", "interactive", "stopping"])),
                )
            )
            used -= n
    queue = [
        Request(
            id=f"q{i}",
            user=draw(st.sampled_from("abcdefgh")),
            gpus=draw(st.integers(0, 4)),
            gpu_type=draw(st.sampled_from(TYPES)),
            kind=draw(st.sampled_from(["batch", "interactive"])),
            priority=draw(st.integers(0, 2)),
            submitted_at=NOW - draw(st.integers(0, 20_000)),
            expected_duration=draw(st.integers(60, 10_000)),
        )
        for i in range(draw(st.integers(0, 30)))
    ]
    usage = Usage({u: float(draw(st.integers(0, 10**6))) for u in "abcdefgh"}, {}, NOW)
    return capacity, running, queue, usage


CONFIG = PolicyConfig(half_life_seconds=3600, max_wait_seconds=10_000)


@settings(max_examples=300, deadline=None)
@given(lines())
def test_never_more_gpus_of_a_type_than_exist(line) -> None:  # type: ignore[no-untyped-def]
    capacity, running, queue, usage = line
    decision = decide(queue, running, capacity, usage, CONFIG, NOW)
    used: Counter[str] = Counter()
    for a in running:
        used[a.gpu_type] += a.gpus
    by_id = {r.id: r for r in queue}
    for request_id in decision.start:
        used[by_id[request_id].gpu_type] += by_id[request_id].gpus
    assert all(used[t] <= capacity[t] for t in TYPES)


@settings(max_examples=300, deadline=None)
@given(lines())
def test_no_fitting_request_waits_beside_an_idle_gpu_without_a_reservation(line) -> None:  # type: ignore[no-untyped-def]
    capacity, running, queue, usage = line
    decision = decide(queue, running, capacity, usage, CONFIG, NOW)
    free = dict(capacity)
    for a in running:
        free[a.gpu_type] -= a.gpus
    by_id = {r.id: r for r in queue}
    for request_id in decision.start:
        free[by_id[request_id].gpu_type] -= by_id[request_id].gpus
    starving_types = {
        r.gpu_type
        for r in queue
        if NOW - r.submitted_at >= CONFIG.max_wait_seconds and r.id not in decision.start
    }
    for r in queue:
        if r.id in decision.start or r.gpu_type in starving_types:
            continue  # a reservation for a starving request may hold GPUs back on purpose
        assert r.gpus > free[r.gpu_type], (r, free)


@settings(max_examples=200, deadline=None)
@given(lines())
def test_the_same_input_gives_the_same_decision(line) -> None:  # type: ignore[no-untyped-def]
    capacity, running, queue, usage = line
    first = decide(queue, running, capacity, usage, CONFIG, NOW)
    second = decide(list(reversed(queue)), running, capacity, usage, CONFIG, NOW)
    assert first.start == second.start and first.positions == second.positions


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(0.5, 4.0), min_size=2, max_size=4))
def test_under_backlog_each_users_share_converges_to_their_weight(weights) -> None:  # type: ignore[no-untyped-def]
    users = [f"u{i}" for i in range(len(weights))]
    config = PolicyConfig(
        half_life_seconds=1e9,
        max_wait_seconds=1e12,
        user_weights=dict(zip(users, weights, strict=True)),
    )
    usage, got, t = Usage(), defaultdict(float), 0.0
    # Every user always has more queued than the 4 GPUs take; 1-GPU jobs of 100 s.
    for step in range(400):
        queue = [
            Request(f"{u}-{step}-{k}", u, 1, "a100", submitted_at=t, expected_duration=100)
            for u in users
            for k in range(4)
        ]
        decision = decide(queue, [], {"a100": 4}, usage, config, t)
        usage = decision.usage
        for request_id in decision.start:
            got[request_id.split("-")[0]] += 100
        t += 100
    total, weight_total = sum(got.values()), sum(weights)
    for user, weight in zip(users, weights, strict=True):
        assert abs(got[user] / total - weight / weight_total) < 0.05


@st.composite
def one_type_lines(draw):  # type: ignore[no-untyped-def]
    """A queue for one GPU type, from users in groups (or none), with mixed priorities."""
    return [
        Request(
            id=f"q{i}",
            user=(user := draw(st.sampled_from("abcdef"))),
            gpus=draw(st.integers(1, 4)),
            gpu_type="a100",
            group=None if user in "ab" else f"g{ord(user) % 2}",
            priority=draw(st.sampled_from([0, 0, 0, 1])),
            submitted_at=NOW - draw(st.integers(0, 20_000)),
            expected_duration=draw(st.integers(60, 10_000)),
        )
        for i in range(draw(st.integers(1, 25)))
    ]


@settings(max_examples=200, deadline=None)
@given(one_type_lines(), st.dictionaries(st.sampled_from("abcdef"), st.integers(0, 10**5)))
def test_the_positions_shown_are_the_order_turns_come_in(queue, used) -> None:  # type: ignore[no-untyped-def]
    usage = Usage({u: float(v) for u, v in used.items()}, {"g0": 5000.0}, NOW)
    config = PolicyConfig(
        half_life_seconds=3600,
        max_wait_seconds=10_000,
        user_weights={"c": 2.0},
        group_weights={"g1": 3.0},
    )
    waiting = decide(queue, [], {"a100": 0}, usage, config, NOW)
    shown = sorted(waiting.positions, key=waiting.positions.__getitem__)
    # With room for everyone, the order of admission is the order of the line.
    admitted = decide(queue, [], {"a100": 10**6}, usage, config, NOW)
    assert list(admitted.start) == shown


@st.composite
def lines_with_live_kernels(draw):  # type: ignore[no-untyped-def]
    """A line as above, some of whose allocations are live kernels with long windows."""
    capacity, running, queue, usage = draw(lines())
    running = [
        Allocation(
            a.id,
            a.user,
            a.gpus,
            a.gpu_type,
            expected_end=a.expected_end,
            live=draw(st.booleans()),
            live_until=NOW + draw(st.integers(0, 50_000)),
        )
        for a in running
    ]
    return capacity, running, queue, usage, draw(st.integers(0, 10))


@settings(max_examples=300, deadline=None)
@given(lines_with_live_kernels())
def test_no_live_kernel_holds_what_a_waiting_request_needs_past_the_grace_period(
    line,  # type: ignore[no-untyped-def]
) -> None:
    capacity, running, queue, usage, live_cap = line
    decision = decide(queue, running, capacity, usage, CONFIG, NOW, live_slots=live_cap)
    started = set(decision.start)
    cut = dict(decision.cut_live)
    grace_end = NOW + CONFIG.grace_period_seconds
    ends = {a.id: min(a.live_until, cut.get(a.id, a.live_until)) for a in running if a.live}
    for kind in TYPES:
        waiting = [r for r in queue if r.id not in started and r.gpus and r.gpu_type == kind]
        fit = [r.gpus for r in waiting if r.gpus <= capacity[kind]]
        if not fit:
            continue
        # Someone waits for this type: once the grace period is over, live kernels hold none
        # of the GPUs the smallest waiting request needs (runs may still hold theirs).
        runs = sum(a.gpus for a in running if a.gpu_type == kind and not a.live)
        runs += sum(r.gpus for r in queue if r.id in started and r.gpu_type == kind)
        lasting = sum(
            a.gpus for a in running if a.live and a.gpu_type == kind and ends[a.id] > grace_end
        )
        room_without_live = max(capacity[kind] - runs, 0)
        assert room_without_live - lasting >= min(min(fit), room_without_live), (
            kind,
            decision.cut_live,
        )
    # Never more live kernels than the cap past the grace period.
    lasting = [i for i, end in ends.items() if end > grace_end]
    assert len(lasting) <= max(live_cap, 0)
    # Live kernels never take a run's slot: CPU batch runs start whatever is live.
    cpu_batch = [r for r in queue if r.kind == "batch" and r.gpus == 0]
    assert all(r.id in started for r in cpu_batch)


@settings(max_examples=300, deadline=None)
@given(lines_with_live_kernels(), st.integers(0, 4))
def test_an_expected_start_is_never_before_now_nor_before_what_holds_the_gpus_ends(
    line,  # type: ignore[no-untyped-def]
    batch_slots: int,
) -> None:
    capacity, running, queue, usage, live_cap = line
    decision = decide(
        queue, running, capacity, usage, CONFIG, NOW, batch_slots=batch_slots, live_slots=live_cap
    )
    cut = dict(decision.cut_live)
    by_id = {r.id: r for r in queue}
    free = dict(capacity)
    ends: dict[str, list[float]] = {t: [] for t in TYPES}
    for a in running:
        free[a.gpu_type] -= a.gpus
        ends[a.gpu_type].append(cut.get(a.id, a.live_until) if a.live else a.expected_end)
    for request_id in decision.start:
        r = by_id[request_id]
        free[r.gpu_type] -= r.gpus
        if r.gpus:
            # A GPU server admitted now has no set end.
            ends[r.gpu_type].append(NOW + r.expected_duration if r.kind == "batch" else math.inf)
    assert set(decision.waits) == set(by_id) - set(decision.start)
    for request_id, wait in decision.waits.items():
        r = by_id[request_id]
        assert wait.code in CODES
        assert wait.position == decision.positions[request_id]
        if wait.estimated_start is None:
            continue
        assert wait.estimated_start >= NOW
        if r.gpus > free[r.gpu_type]:
            # It needs GPUs held now: none comes back before the first holder's expected end.
            assert wait.estimated_start >= min(ends[r.gpu_type]), (r, wait)


@settings(max_examples=200, deadline=None)
@given(lines(), st.lists(st.tuples(st.booleans(), st.integers(0, 29))), st.integers(0, 30))
def test_a_line_kept_between_passes_decides_as_the_same_line_read_afresh(  # type: ignore[no-untyped-def]
    line, changes, extra
) -> None:
    """The scheduler keeps the line (QueueIndex) and changes it request by request: whatever
    came and went, it decides exactly as the plain list of the requests left."""
    capacity, running, queue, usage = line
    kept = QueueIndex(queue)
    for arrives, i in changes:
        if arrives and i < len(queue):
            # Back in line, possibly with a new priority (as an admin may set one).
            r = queue[i]
            kept.add(replace(r, priority=(r.priority + 1) % 3) if i % 2 else r)
        elif i < len(queue):
            if queue[i].user in kept.by_user:
                user = queue[i].user  # what is kept from now on, leaving must correct
                kept.oldest(user), kept.head(user), kept.groups(user), kept.shapes_of(user)
            kept.remove(queue[i].id, queue[i].user)
    kept = kept.plus(
        Request(f"t{i}", "abcdefgh"[i % 8], 1, TYPES[0], kind="interactive", submitted_at=NOW)
        for i in range(extra % 4)
    )
    plain = list(kept)
    afresh_index = QueueIndex(plain)
    assert len(plain) == len(kept) and len({r.id for r in plain}) == len(plain)
    assert (kept.shapes, kept.priorities, kept.interactive) == (
        afresh_index.shapes,
        afresh_index.priorities,
        afresh_index.interactive,
    )
    for u in afresh_index.by_user:
        assert kept.groups(u) == afresh_index.groups(u)
        assert kept.shapes_of(u) == afresh_index.shapes_of(u)
    assert all(kept.oldest(u) == afresh_index.oldest(u) for u in afresh_index.by_user)
    assert all(kept.head(u) == afresh_index.head(u) for u in afresh_index.by_user)
    ours = decide(kept, running, capacity, usage, CONFIG, NOW, batch_slots=3)
    afresh = decide(plain, running, capacity, usage, CONFIG, NOW, batch_slots=3)
    assert ours.start == afresh.start and ours.cut_live == afresh.cut_live
    assert dict(ours.waits) == dict(afresh.waits)


@st.composite
def lines_with_exclusive(draw):  # type: ignore[no-untyped-def]
    """One machine: what runs (one exclusive run alone, or anything else), and a line with
    exclusive requests among CPU runs, GPU runs and GPU servers."""
    capacity, running, queue, usage = draw(lines())
    if running and draw(st.booleans()):
        only = running[0]
        running = [
            Allocation(
                only.id,
                only.user,
                only.gpus,
                only.gpu_type,
                expected_end=only.expected_end,
                exclusive=True,
            )
        ]
    queue = [
        Request(
            r.id,
            r.user,
            r.gpus,
            r.gpu_type,
            kind=r.kind if not (exclusive := draw(st.booleans())) else "batch",
            priority=r.priority,
            submitted_at=r.submitted_at,
            expected_duration=r.expected_duration,
            exclusive=exclusive,
        )
        for r in queue
    ]
    return capacity, running, queue, usage


@settings(max_examples=300, deadline=None)
@given(lines_with_exclusive())
def test_an_exclusive_allocation_never_shares_its_machine(line) -> None:  # type: ignore[no-untyped-def]
    capacity, running, queue, usage = line
    decision = decide(queue, running, capacity, usage, CONFIG, NOW)
    by_id = {r.id: r for r in queue}
    holding = [a for a in running if not a.live] + [by_id[i] for i in decision.start]
    if any(h.exclusive for h in holding):
        assert len(holding) == 1, holding
    # Nothing starts that the GPUs could not hold either.
    used: Counter[str] = Counter()
    for h in holding:
        used[h.gpu_type] += h.gpus
    assert all(used[t] <= capacity[t] for t in TYPES)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 120), st.integers(60, 1800)), min_size=50, max_size=50),
    st.integers(0, 600),
)
def test_an_exclusive_run_starts_within_max_wait_plus_the_longest_time_limit(
    stream,  # type: ignore[no-untyped-def]
    arrives,
) -> None:
    """Short CPU runs keep arriving (gap, time limit), more than one machine can drain; an
    exclusive request still starts within max_wait plus the longest time limit running."""
    config = PolicyConfig(half_life_seconds=3600, max_wait_seconds=1800)
    step, t, longest = 5.0, 0.0, max(limit for _, limit in stream)
    arrivals, at = [], 0.0
    for i, (gap, limit) in enumerate(stream * 4):
        at += gap / 4  # a dense stream: several runs at once whenever the machine allows
        arrivals.append(
            Request(f"c{i}", f"u{i % 7}", 0, None, submitted_at=at, expected_duration=limit)
        )
    exclusive = Request(
        "ex", "ann", 0, None, submitted_at=float(arrives), expected_duration=600, exclusive=True
    )
    arrivals.append(exclusive)
    queue: list[Request] = []
    running: list[Allocation] = []
    usage = Usage()
    started_at = None
    while t <= arrives + config.max_wait_seconds + longest + 2 * step:
        queue += [
            r
            for r in arrivals
            if t - step < r.submitted_at <= t or (t == 0 and r.submitted_at == 0)
        ]
        running = [a for a in running if a.expected_end is not None and a.expected_end > t]
        decision = decide(queue, running, {}, usage, config, t)
        usage = decision.usage
        started = set(decision.start)
        for r in queue:
            if r.id in started:
                running.append(
                    Allocation(
                        r.id,
                        r.user,
                        0,
                        None,
                        started_at=t,
                        expected_end=t + r.expected_duration,
                        exclusive=r.exclusive,
                    )
                )
        queue = [r for r in queue if r.id not in started]
        if "ex" in started:
            started_at = t
            break
        t += step
    assert started_at is not None, "the exclusive run never started"
    assert started_at <= arrives + config.max_wait_seconds + longest + step
