"""The admission policy, example by example: each behaviour a user of the line would notice."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

import batch_service
from batch_service.policy import (
    CODES,
    Allocation,
    PolicyConfig,
    Request,
    Usage,
    Wait,
    decay,
    decide,
    settle,
    wait_words,
)

CONFIG = PolicyConfig(half_life_seconds=3600, grace_period_seconds=300, max_wait_seconds=7200)
NOW = 10_000.0


def req(id: str, user: str, gpus: int = 1, t: float = 0.0, **kw) -> Request:  # type: ignore[no-untyped-def]
    return Request(
        id=id,
        user=user,
        gpus=gpus,
        gpu_type=kw.pop("gpu_type", "a100"),
        submitted_at=NOW - 1000 + t,
        **kw,
    )


def test_the_person_who_used_less_recently_goes_first() -> None:
    usage = Usage({"heavy": 100_000.0, "light": 0.0}, {}, NOW)
    queue = [req("h1", "heavy", t=1), req("l1", "light", t=2)]
    decision = decide(queue, [], {"a100": 1}, usage, CONFIG, NOW)
    assert decision.start == ("l1",)
    assert decision.positions == {"h1": 1}
    assert decision.waits["h1"].code == "resources"
    # The run just admitted holds the one GPU for its time limit (an hour from now).
    assert decision.reasons["h1"] == (
        "waiting for 1 GPU of type a100: position 1 in line; "
        "held by a run of another user (ends in ~60 min)"
    )


def test_admissions_in_one_decision_alternate_between_users() -> None:
    queue = [req(f"a{i}", "ann", t=i) for i in range(4)] + [
        req(f"b{i}", "ben", t=10 + i) for i in range(4)
    ]
    decision = decide(queue, [], {"a100": 4}, Usage(), CONFIG, NOW)
    assert sorted(decision.start) == ["a0", "a1", "b0", "b1"]


def test_no_gpu_idles_while_a_smaller_request_fits_behind_a_big_one() -> None:
    queue = [req("big", "ann", gpus=4, t=1), req("small", "ben", gpus=1, t=2)]
    decision = decide(queue, [], {"a100": 2}, Usage(), CONFIG, NOW)
    assert decision.start == ("small",)
    assert "only 2 such GPUs exist" in decision.reasons["big"]


def test_backfill_looks_only_so_deep_into_a_long_line_and_the_rest_keep_their_places() -> None:
    # Two GPUs, one free; five who used little each ask for both, then a heavy user asks for
    # one. Looking three deep, the one-GPU request is not reached this time.
    usage = Usage({"heavy": 10**7}, {}, NOW)
    queue = [req(f"two{i}", f"u{i}", gpus=2, t=i) for i in range(5)]
    queue.append(req("one", "heavy", gpus=1, t=10))
    held = [Allocation("r", "x", 1, "a100", expected_end=NOW + 600)]
    shallow = replace(CONFIG, backfill_depth=3)
    decision = decide(queue, held, {"a100": 2}, usage, shallow, NOW)
    assert decision.start == ()
    assert decision.positions["one"] == 6
    deep = decide(queue, held, {"a100": 2}, usage, CONFIG, NOW)
    assert deep.start == ("one",)


def test_a_starving_big_request_gets_a_reservation_that_backfill_respects() -> None:
    running = [
        Allocation("r1", "cat", gpus=1, gpu_type="a100", started_at=0, expected_end=NOW + 600)
    ]
    big = req("big", "ann", gpus=2, t=-7000)  # waited beyond max_wait
    long_small = req("long", "ben", gpus=1, t=990, expected_duration=7200)
    short_small = req("short", "dan", gpus=1, t=995, expected_duration=300)
    decision = decide([big, long_small, short_small], running, {"a100": 2}, Usage(), CONFIG, NOW)
    # The long job would delay the big one; the short one ends before the big one can start.
    assert decision.start == ("short",)
    assert decision.positions["big"] == 1


def test_priorities_go_first_and_caps_hold() -> None:
    config = PolicyConfig(user_gpu_cap=1, max_wait_seconds=1e9)
    queue = [req("low", "ann", t=1), req("high", "ben", t=5, priority=5), req("ann2", "ann", t=2)]
    decision = decide(queue, [], {"a100": 3}, Usage(), config, NOW)
    assert decision.start[0] == "high" and set(decision.start) == {"high", "low"}
    assert "holds the most GPUs" in decision.reasons["ann2"]


def test_group_weights_share_between_groups() -> None:
    config = PolicyConfig(group_weights={"vision": 3.0, "nlp": 1.0}, max_wait_seconds=1e9)
    queue = [req(f"v{i}", f"v{i}", group="vision", t=i) for i in range(8)]
    queue += [req(f"n{i}", f"n{i}", group="nlp", t=i) for i in range(8)]
    decision = decide(queue, [], {"a100": 8}, Usage(), config, NOW)
    started_vision = sum(1 for s in decision.start if s.startswith("v"))
    assert started_vision == 6  # 3:1 weights -> 6 of 8 GPUs


def test_interactive_and_batch_requests_share_one_line() -> None:
    queue = [req("job", "ann", t=1, kind="batch"), req("lab", "ben", t=2, kind="interactive")]
    decision = decide(queue, [], {"a100": 1}, Usage({"ann": 5000.0}, {}, NOW), CONFIG, NOW)
    assert decision.start == ("lab",)
    assert decision.positions == {"job": 1}


def test_live_kernels_are_cut_to_the_grace_period_only_when_someone_waits() -> None:
    live = Allocation("done", "ann", gpus=1, gpu_type="a100", live=True, live_until=NOW + 3600)
    nobody = decide([], [live], {"a100": 1}, Usage(), CONFIG, NOW)
    assert nobody.cut_live == ()
    waiting = decide([req("next", "ben", t=1)], [live], {"a100": 1}, Usage(), CONFIG, NOW)
    assert waiting.start == () and waiting.cut_live == (("done", NOW + 300),)


def test_live_kernels_beyond_the_cap_end_soonest_first_and_others_keep_their_windows() -> None:
    kept = [
        Allocation(f"k{i}", "ann", gpus=0, gpu_type=None, live=True, live_until=NOW + 600 * i)
        for i in range(1, 5)
    ]
    under = decide([], kept, {}, Usage(), CONFIG, NOW, live_slots=4)
    assert under.cut_live == ()
    over = decide([], kept, {}, Usage(), CONFIG, NOW, live_slots=2)
    # The two whose windows end soonest go after the grace period, and say why.
    assert over.cut_live == (("k1", NOW + 300), ("k2", NOW + 300))
    assert set(over.cut_reasons.values()) == {"live_cap"}
    # A window already ending within the grace period counts as going: nothing more is cut.
    soon = [Allocation("k0", "ben", 0, None, live=True, live_until=NOW + 60), *kept]
    assert decide([], soon, {}, Usage(), CONFIG, NOW, live_slots=4).cut_live == ()


def test_usage_decays_with_the_half_life() -> None:
    usage = decay(Usage({"ann": 800.0}, {"g": 400.0}, 0.0), 7200.0, 3600)
    assert usage.by_user["ann"] == 200.0 and usage.by_group["g"] == 100.0


def test_batch_slots_bound_batch_jobs_but_not_interactive_servers() -> None:
    queue = [
        req("j1", "ann", t=1),
        req("j2", "ben", t=2),
        req("i1", "cat", t=3, kind="interactive"),
    ]
    decision = decide(queue, [], {"a100": 3}, Usage(), CONFIG, NOW, batch_slots=1)
    assert set(decision.start) == {"j1", "i1"}
    assert "batch slots" in decision.reasons["j2"]


def test_old_one_gpu_jobs_of_a_heavy_user_do_not_jump_the_line() -> None:
    running = [Allocation("h0", "heavy", gpus=1, gpu_type="a100", expected_end=NOW + 600)]
    old = [req(f"h{i}", "heavy", t=-9000 + i) for i in range(1, 4)]  # waited beyond max_wait
    usage = Usage({"heavy": 50_000.0}, {}, NOW)
    decision = decide([*old, req("l1", "light", t=5)], running, {"a100": 2}, usage, CONFIG, NOW)
    assert decision.start == ("l1",)


def test_a_big_request_that_waited_max_wait_goes_first_whatever_its_owner_used() -> None:
    running = [Allocation("h0", "heavy", gpus=1, gpu_type="a100", expected_end=NOW + 600)]
    big = req("big", "heavy", gpus=2, t=-9000)
    small = [req(f"l{i}", f"light{i}", t=i) for i in range(2)]
    usage = Usage({"heavy": 50_000.0}, {}, NOW)
    decision = decide([big, *small], running, {"a100": 3}, usage, CONFIG, NOW)
    assert decision.start == ("big",)


def test_positions_interleave_users_by_the_usage_their_turns_would_bring() -> None:
    queue = [req(f"a{i}", "ann", t=i) for i in range(3)] + [req("b0", "ben", t=10)]
    running = [Allocation("r", "cat", gpus=1, gpu_type="a100", expected_end=NOW + 60)]
    decision = decide(queue, running, {"a100": 1}, Usage(), CONFIG, NOW)
    assert decision.start == ()
    order = sorted(decision.positions, key=decision.positions.__getitem__)
    assert order == ["a0", "b0", "a1", "a2"]
    assert decision.reasons["b0"] == (
        "waiting for 1 GPU of type a100: position 2 in line; 1 request ahead of it gets these "
        "GPUs first (their owners used less recently, or they have a higher priority)"
    )


def test_settle_refunds_what_an_early_end_did_not_use() -> None:
    usage = Usage({"ann": 7200.0}, {"lab": 7200.0}, NOW)
    settled = settle(usage, "ann", "lab", charged_seconds=3600, used_seconds=600, gpus=2)
    assert settled.by_user["ann"] == 1200.0 and settled.by_group["lab"] == 1200.0


def test_cpu_requests_need_no_gpu_but_respect_cpu_slots() -> None:
    queue = [req("c1", "ann", gpus=0, t=1), req("c2", "ben", gpus=0, t=2)]
    decision = decide(queue, [], {"a100": 0}, Usage(), CONFIG, NOW, cpu_slots=1)
    assert len(decision.start) == 1
    waiting = next(iter(decision.positions))
    assert "CPU slots" in decision.reasons[waiting]


def test_only_as_many_live_windows_are_cut_as_the_waiting_request_needs() -> None:
    live = [
        Allocation(f"k{i}", f"u{i}", gpus=1, gpu_type="a100", live=True, live_until=NOW + 900 * i)
        for i in range(1, 4)
    ]
    decision = decide([req("two", "ben", gpus=2)], live, {"a100": 3}, Usage(), CONFIG, NOW)
    # The two windows that end soonest come back; the third keeps its full window.
    assert decision.cut_live == (("k1", NOW + 300), ("k2", NOW + 300))


# --- why each request waits (reason codes, words) and when it may start ------------------


def test_the_expected_start_follows_time_limits_and_cut_live_windows() -> None:
    running = [
        Allocation("r1", "cat", gpus=1, gpu_type="a100", expected_end=NOW + 3000),
        Allocation("k1", "dan", gpus=1, gpu_type="a100", live=True, live_until=NOW + 7200),
    ]
    queue = [
        req("a", "ann", t=1, expected_duration=1800),
        req("b", "ben", t=2, expected_duration=1800),
    ]
    decision = decide(queue, running, {"a100": 2}, Usage(), CONFIG, NOW)
    assert decision.start == () and decision.cut_live == (("k1", NOW + 300),)
    first, second = decision.waits["a"], decision.waits["b"]
    # The live kernel's window, cut to the grace period, frees the first GPU.
    assert (first.code, first.estimated_start) == ("resources", NOW + 300)
    # The second GPU to free is the one `a` gets back after its time limit, not the run's.
    assert (second.code, second.estimated_start) == ("priority", NOW + 300 + 1800)
    assert decision.reasons["a"] == (
        "waiting for 1 GPU of type a100: position 1 in line; held by a live kernel of another "
        "user (ends in ~5 min) and a run of another user (ends in ~50 min)"
    )


def test_owners_are_named_only_to_readers_who_may_see_everyone() -> None:
    running = [
        Allocation("r1", "cat", gpus=1, gpu_type="a100", expected_end=NOW + 600),
        Allocation("r2", "cat", gpus=1, gpu_type="a100", expected_end=NOW + 1200),
        Allocation("r3", "ann", gpus=1, gpu_type="a100", expected_end=NOW + 1800),
    ]
    decision = decide([req("a", "ann")], running, {"a100": 3}, Usage(), CONFIG, NOW)
    wait = decision.waits["a"]
    held = decision.holders["a100"]
    assert wait.estimated_start == NOW + 600
    assert wait_words(wait, held, NOW, reader="ann").endswith(
        "held by 2 runs of other users (the first ends in ~10 min) and your run (ends in ~30 min)"
    )
    assert wait_words(wait, held, NOW, reader="root", names=True).endswith(
        "held by 2 runs of cat (the first ends in ~10 min) and a run of ann (ends in ~30 min)"
    )


def test_a_gpu_server_has_no_set_end_so_those_behind_it_get_no_expected_start() -> None:
    server = Allocation("t1", "cat", gpus=1, gpu_type="a100", kind="interactive")
    decision = decide([req("a", "ann")], [server], {"a100": 1}, Usage(), CONFIG, NOW)
    wait = decision.waits["a"]
    assert (wait.code, wait.estimated_start) == ("resources", None)
    assert decision.reasons["a"].endswith("held by a GPU server of another user (no set end)")


def test_all_batch_slots_in_use_says_slots_and_the_first_run_end() -> None:
    running = [
        Allocation("r1", "cat", gpus=0, gpu_type=None, expected_end=NOW + 900),
        Allocation("r2", "dan", gpus=0, gpu_type=None, expected_end=NOW + 400),
    ]
    queue = [req("c", "ann", gpus=0, t=1), req("g", "ben", t=2)]
    decision = decide(queue, running, {"a100": 1}, Usage(), CONFIG, NOW, batch_slots=0)
    assert decision.start == ()
    assert {i: (w.code, w.estimated_start) for i, w in decision.waits.items()} == {
        "c": ("slots", NOW + 400),
        "g": ("slots", NOW + 900),
    }
    assert decision.reasons["c"] == (
        "waiting for a batch slot: position 1 in line; all batch slots are in use"
    )


def test_caps_say_which_cap_and_give_no_expected_start() -> None:
    config = PolicyConfig(user_gpu_cap=1, group_gpu_caps={"lab": 1}, max_wait_seconds=1e9)
    running = [
        Allocation("r1", "ann", gpus=1, gpu_type="a100", expected_end=NOW + 60),
        Allocation("r2", "cat", gpus=1, gpu_type="a100", group="lab", expected_end=NOW + 60),
    ]
    queue = [req("mine", "ann", t=1), req("ours", "ben", t=2, group="lab")]
    decision = decide(queue, running, {"a100": 4}, Usage(), config, NOW)
    assert decision.start == ()
    assert decision.waits["mine"][2:4] == ("user_cap", None)
    assert decision.waits["ours"][2:4] == ("group_cap", None)
    assert decision.reasons["mine"].endswith("ann holds the most GPUs a user may hold (1)")
    assert decision.reasons["ours"].endswith("group lab holds the most GPUs it may hold (1)")


def test_a_reservation_and_a_request_that_can_never_start_say_so() -> None:
    running = [
        Allocation("r1", "cat", gpus=1, gpu_type="a100", started_at=0, expected_end=NOW + 600)
    ]
    big = req("big", "ann", gpus=2, t=-7000)  # waited beyond max_wait: GPUs are kept for it
    long_small = req("long", "ben", gpus=1, t=990, expected_duration=7200)
    huge = req("huge", "dan", gpus=3, t=5)
    decision = decide([big, long_small, huge], running, {"a100": 2}, Usage(), CONFIG, NOW)
    assert decision.start == ()
    assert (decision.waits["big"].code, decision.waits["big"].estimated_start) == (
        "resources",
        NOW + 600,
    )
    assert decision.waits["long"].code == "reservation"
    assert "kept for a request that has waited longest" in decision.reasons["long"]
    assert decision.waits["huge"][2:4] == ("not_admissible", None)
    assert "only 2 such GPUs exist on this machine" in decision.reasons["huge"]


def test_words_for_a_paused_queue_and_a_job_just_submitted() -> None:
    wait = Wait(req("a", "ann", gpus=2), 3, "paused", None)
    assert wait_words(wait, (), NOW) == (
        "waiting for 2 GPUs of type a100: position 3 in line; the queue is paused by a batch "
        "admin: nothing starts until it is resumed"
    )
    fresh = Wait(req("b", "ann", gpus=0), 1, "new", None)
    assert "the scheduler places it in line at its next pass" in wait_words(fresh, (), NOW)


def test_the_api_documents_every_reason_code() -> None:
    document = yaml.safe_load((Path(batch_service.__file__).parent / "openapi.yaml").read_text())
    assert tuple(document["components"]["schemas"]["ReasonCode"]["enum"]) == CODES
