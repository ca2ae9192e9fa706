"""Scheduler passes kicked back to back rest in proportion to their cost: a stream of
submissions over a long line does not spend the service's time re-deciding it."""

from __future__ import annotations

import asyncio
from itertools import pairwise

from batch_service.scheduler import PassReport
from batch_service.scheduler_loop import SchedulerLoop


class PassesCosting:
    """In the scheduler's place: each pass reports `cpu` seconds of deciding, as a pass over a
    line of that length would."""

    def __init__(self, cpu: float) -> None:
        self.cpu = cpu
        self.pass_cpu = 0.0
        self.began: list[float] = []

    async def run_once(self) -> PassReport:
        self.began.append(asyncio.get_running_loop().time())
        self.pass_cpu = self.cpu
        return PassReport()


async def kick_for(loop: SchedulerLoop, seconds: float) -> float:
    """Kick every 5 ms (a stream of stored submissions); the time of the last kick."""
    clock = asyncio.get_running_loop()
    end = clock.time() + seconds
    while clock.time() < end:
        loop.kick()
        await asyncio.sleep(0.005)
    return clock.time()


async def test_costly_passes_under_a_stream_of_kicks_rest_nine_times_their_cost() -> None:
    passes = PassesCosting(cpu=0.05)
    loop = SchedulerLoop(passes, interval=3600)  # type: ignore[arg-type]
    last_kick = await kick_for(loop, 1.2)
    await asyncio.sleep(0.6)
    gaps = [b - a for a, b in pairwise(passes.began)]
    # About 240 kicks, 3 or 4 passes: each after 0.45 s of rest (90% of the time is others').
    assert 2 <= len(passes.began) <= 4, passes.began
    assert min(gaps) >= 0.44, gaps
    # No kick is lost: a pass began after the last one.
    assert passes.began[-1] >= last_kick


async def test_cheap_passes_still_follow_a_kick_at_once() -> None:
    passes = PassesCosting(cpu=0.001)
    loop = SchedulerLoop(passes, interval=3600)  # type: ignore[arg-type]
    clock = asyncio.get_running_loop()
    for _ in range(5):
        kicked = clock.time()
        loop.kick()
        await asyncio.sleep(0.05)
        # A short line: the pass follows the kick at once (its rest is 9 ms).
        assert kicked <= passes.began[-1] <= kicked + 0.04
