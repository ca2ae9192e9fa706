"""Exclusive runs in the admission policy: a whole machine, a reservation, backfill around it."""

from __future__ import annotations

import math

from batch_service.policy import Allocation, PolicyConfig, Request, Usage, decide

CONFIG = PolicyConfig(half_life_seconds=3600, grace_period_seconds=300, max_wait_seconds=3600)
NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC


def cpu(id: str, user: str, waited: float = 10, duration: float = 600, **kw) -> Request:  # type: ignore[no-untyped-def]
    return Request(id, user, 0, None, submitted_at=NOW - waited, expected_duration=duration, **kw)


def running_cpu(id: str, user: str, ends_in: float, **kw) -> Allocation:  # type: ignore[no-untyped-def]
    return Allocation(id, user, 0, None, started_at=NOW - 60, expected_end=NOW + ends_in, **kw)


def test_while_an_exclusive_run_runs_a_cpu_run_waits_and_says_until_when() -> None:
    holder = running_cpu("ex", "ann", 1500, exclusive=True)
    decision = decide([cpu("c1", "ben")], [holder], {}, Usage(), CONFIG, NOW)
    assert decision.start == ()
    wait = decision.waits["c1"]
    assert wait.code == "machine"
    assert decision.reasons["c1"] == (
        "waiting for the machine: an exclusive run holds it until ~08:25 UTC (in ~25 min); "
        "position 1 in line"
    )
    assert wait.estimated_start == NOW + 1500


def test_a_gpu_server_waits_too_but_a_live_kernel_of_an_exclusive_run_holds_nothing() -> None:
    holder = running_cpu("ex", "ann", 1500, exclusive=True)
    server = Request("t1", "ben", 1, "a100", kind="interactive", submitted_at=NOW - 5)
    assert decide([server], [holder], {"a100": 1}, Usage(), CONFIG, NOW).start == ()
    live = Allocation("ex", "ann", 0, exclusive=True, live=True, live_until=NOW + 900)
    assert decide([server], [live], {"a100": 1}, Usage(), CONFIG, NOW).start == ("t1",)


def test_an_exclusive_request_waits_for_running_work_and_starts_when_the_machine_is_empty() -> None:
    ex = cpu("ex", "ann", exclusive=True)
    busy = [running_cpu("r1", "ben", 300), running_cpu("r2", "cat", 900)]
    decision = decide([ex], busy, {}, Usage(), CONFIG, NOW)
    assert decision.start == ()
    assert decision.waits["ex"].code == "machine"
    assert decision.reasons["ex"] == (
        "waiting for the machine to be empty: held by 2 runs of other users (the first ends in "
        "~5 min); it starts once nothing else runs there; position 1 in line"
    )
    assert decision.waits["ex"].estimated_start == NOW + 900
    # A live kernel left after a run does not keep the machine.
    live = Allocation("r1", "ben", 0, live=True, live_until=NOW + 900)
    assert decide([ex], [live], {}, Usage(), CONFIG, NOW).start == ("ex",)


def test_nothing_starts_beside_an_exclusive_run_started_in_the_same_pass() -> None:
    line = [cpu("ex", "ann", waited=30, exclusive=True), cpu("c1", "ben", waited=20)]
    decision = decide(line, [], {"a100": 2}, Usage(), CONFIG, NOW)
    assert decision.start == ("ex",)
    assert decision.waits["c1"].code == "machine"


def test_a_starving_exclusive_request_drains_the_machine_and_only_short_runs_backfill() -> None:
    ex = cpu("ex", "ann", waited=CONFIG.max_wait_seconds + 1, exclusive=True)
    busy = [running_cpu("r1", "ben", 1200)]
    short = cpu("short", "cat", duration=600)
    long = cpu("long", "dan", duration=3600)
    server = Request("srv", "eve", 0, None, kind="interactive", submitted_at=NOW - 5)
    decision = decide([ex, short, long, server], busy, {}, Usage(), CONFIG, NOW)
    assert decision.start == ("short",)
    assert decision.waits["long"].code == "machine"
    assert "kept for an exclusive run that has waited longest" in decision.reasons["long"]
    assert decision.waits["srv"].code == "machine"
    assert "it drains for this run" in decision.reasons["ex"]
    # Without the reservation (not yet waited max_wait) the long run would start.
    young = cpu("ex", "ann", waited=60, exclusive=True)
    assert set(decide([young, long], busy, {}, Usage(), CONFIG, NOW).start) == {"long"}


def test_two_exclusive_runs_share_no_machine_and_take_one_each_of_several() -> None:
    line = [cpu(f"ex{i}", f"u{i}", waited=100 - i, exclusive=True) for i in range(3)]
    decision = decide(line, [], {"a100": 8}, Usage(), CONFIG, NOW, machines=2)
    assert decision.start == ("ex0", "ex1")
    assert decision.waits["ex2"].code == "machine"
    # With one machine held, ordinary work still fits on the other.
    held = [running_cpu("ex0", "u0", 900, exclusive=True)]
    small = Request("g", "ben", 4, "a100", submitted_at=NOW - 5)
    too_big = Request("g2", "cat", 5, "a100", submitted_at=NOW - 4)
    decision = decide([small, too_big], held, {"a100": 8}, Usage(), CONFIG, NOW, machines=2)
    assert decision.start == ("g",)
    assert decision.waits["g2"].code == "machine"


def test_without_exclusive_requests_nothing_changes() -> None:
    line = [cpu(f"c{i}", "ben") for i in range(3)]
    decision = decide(line, [running_cpu("r", "x", 100)], {}, Usage(), CONFIG, NOW)
    assert len(decision.start) == 3
    assert not math.isnan(NOW)


def test_with_a_pool_of_their_own_exclusive_runs_take_its_machines_and_others_go_elsewhere() -> (
    None
):
    config = PolicyConfig(max_wait_seconds=3600, machines=2, exclusive_pool=True)
    busy = [running_cpu("r1", "ben", 900), running_cpu("ex0", "u0", 900, exclusive=True)]
    line = [
        cpu("ex1", "ann", waited=30, exclusive=True),
        cpu("ex2", "cat", waited=20, exclusive=True),
    ]
    line.append(cpu("c1", "dan", waited=10))
    decision = decide(line, busy, {}, Usage(), config, NOW)
    assert set(decision.start) == {"ex1", "c1"}
    assert decision.waits["ex2"].code == "machine"
