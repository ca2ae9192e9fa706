"""The policy over whole workloads: the simulator's fairness measure, and the deadline rush.

The rush is the case the line exists for (hundreds of people before a deadline, few GPUs):
replayed on a virtual clock through the real decide(), batchhub must treat those who wait
more evenly than first come, first served, and keep short runs moving.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from policy_baselines import Batchhub, Fifo  # noqa: E402
from policy_metrics import figures, fluid_fairness, fluid_level  # noqa: E402
from policy_workloads import Job, rush  # noqa: E402
from simulate_policies import CONFIG, simulate  # noqa: E402

HOUR = 3600.0


def ran(job_id: str, user: str, start: float, end: float, arrival: float = 0.0) -> Job:
    return Job(job_id, user, 1, end - start, arrival, start=start, end=end)


def test_the_fluid_level_gives_small_demands_all_they_ask() -> None:
    assert fluid_level([1, 4, 4], 7) == 3.0  # 1 + 3 + 3
    assert fluid_level([1, 1], 8) == float("inf")


def one_after_another(order: list[tuple[str, str, float]]) -> list[Job]:
    """Jobs (id, user, seconds), all submitted at time 0, run back to back on one GPU."""
    jobs, t = [], 0.0
    for job_id, user, seconds in order:
        jobs.append(ran(job_id, user, t, t + seconds))
        t += seconds
    return jobs


def test_light_users_kept_behind_a_heavy_one_score_low() -> None:
    heavy = [("h1", "heavy", HOUR), ("h2", "heavy", HOUR), ("h3", "heavy", HOUR)]
    light = [("l1", "ann", 600.0), ("l2", "ben", 600.0)]
    # Light first: ben waits 10 minutes, heavy 20; both got about what a fair split gives.
    assert fluid_fairness(one_after_another(light + heavy), 1) > 0.99
    # Heavy first: ann and ben deserved a third of the GPU for three hours and got nothing.
    assert fluid_fairness(one_after_another(heavy + light), 1) < 0.6


@pytest.fixture(scope="module")
def deadline_rush() -> dict[str, dict[str, float]]:
    jobs, capacity = rush()
    rows = {}
    for policy in (Batchhub(CONFIG), Fifo()):
        replayed, busy = simulate(jobs, capacity, policy)
        assert all(j.start is not None and j.end is not None for j in replayed)
        rows[policy.name] = figures(replayed, capacity, busy)
    return rows


def test_the_rush_is_fairer_than_first_come_first_served(
    deadline_rush: dict[str, dict[str, float]],
) -> None:
    ours, fifo = deadline_rush["batchhub"], deadline_rush["FIFO"]
    key = "Jain (backlogged, fluid share)"
    assert ours[key] >= 0.95 > fifo[key]
    # Finish-time fairness: nobody's work takes much longer than on their share alone.
    assert ours["max rho (Themis)"] < fifo["max rho (Themis)"] / 2


def test_short_runs_keep_moving_in_the_rush(deadline_rush: dict[str, dict[str, float]]) -> None:
    ours, fifo = deadline_rush["batchhub"], deadline_rush["FIFO"]
    short = "p95 wait 1 GPU <=10 min (min)"
    assert ours[short] <= fifo[short] / 5
    assert ours["idle GPU-h while a job fit"] == 0.0


def test_on_a_virtual_clock_live_kernels_give_way_within_the_grace_period() -> None:
    """Runs end, keep their kernels for hours, and a stream of newcomers waits for GPUs: each
    newcomer starts at most a grace period (plus one decision step) after it could have."""
    from batch_service.policy import Allocation, PolicyConfig, Request, Usage, decide

    config = PolicyConfig(grace_period_seconds=300, half_life_seconds=3600)
    step, clock = 60.0, 0.0
    live = {
        f"k{i}": Allocation(f"k{i}", "ann", 1, "a100", live=True, live_until=4 * HOUR)
        for i in range(2)
    }
    waits = []
    for n in range(6):
        arrival = clock
        request = Request(f"r{n}", f"user{n}", 1, "a100", submitted_at=arrival)
        while True:
            decision = decide([request], live.values(), {"a100": 2}, Usage(), config, clock)
            for job, until in decision.cut_live:
                old = live[job]
                live[job] = Allocation(job, old.user, 1, "a100", live=True, live_until=until)
            if request.id in decision.start:
                break
            clock += step
            live = {k: a for k, a in live.items() if a.live_until > clock}
        waits.append(clock - arrival)
        # The run ends at once and keeps its kernel for hours, holding its GPU.
        live[request.id] = Allocation(
            request.id, request.user, 1, "a100", live=True, live_until=clock + 4 * HOUR
        )
        clock += step
    assert max(waits) <= config.grace_period_seconds + step, waits
