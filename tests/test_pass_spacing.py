"""Scheduler passes kicked back to back rest in proportion to their cost: a stream of
submissions over a long line does not spend the service's time re-deciding it, and while
everyone waits for room, it spends less still until something frees some."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from itertools import pairwise

from batch_service.scheduler import PassReport
from batch_service.scheduler_loop import SchedulerLoop


class PassesCosting:
    """In the scheduler's place: each pass reports `cpu` seconds of deciding, as a pass over a
    line of that length would."""

    def __init__(self, cpu: float, no_room: bool = False) -> None:
        self.cpu = cpu
        self.pass_cpu = 0.0
        # Each pass started nothing and left people waiting (the queue full or paused).
        self.no_room = no_room
        self.began: list[float] = []

    async def run_once(self) -> PassReport:
        self.began.append(asyncio.get_running_loop().time())
        self.pass_cpu = self.cpu
        return PassReport()


async def kick_for(
    loop: SchedulerLoop, seconds: float, kick: Callable[[], None] | None = None
) -> float:
    """Kick every 5 ms (a stream of stored submissions); the time of the last kick."""
    clock = asyncio.get_running_loop()
    end = clock.time() + seconds
    while clock.time() < end:
        (kick or loop.kick)()
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


async def test_newcomers_to_a_full_line_wait_out_a_longer_rest_but_freed_room_does_not() -> None:
    passes = PassesCosting(cpu=0.01, no_room=True)
    loop = SchedulerLoop(passes, interval=3600)  # type: ignore[arg-type]
    clock = asyncio.get_running_loop()
    loop.kick()
    await asyncio.sleep(0.02)
    assert len(passes.began) == 1
    # A stream of submissions into a full line: no pass for 99 times the last one's cost.
    await kick_for(loop, 0.5, loop.kick_newcomers)
    assert len(passes.began) == 1, passes.began
    # A run ends (room may be free): a pass at once, its busy share's rest (90 ms) being over.
    freed = clock.time()
    loop.kick()
    await asyncio.sleep(0.05)
    assert len(passes.began) == 2 and freed <= passes.began[1] <= freed + 0.04, passes.began
    # Newcomers again: served by one pass when the longer rest ends, none earlier, none lost.
    last_kick = await kick_for(loop, 0.6, loop.kick_newcomers)
    assert len(passes.began) == 2
    await asyncio.sleep(0.6)
    assert len(passes.began) == 3, passes.began
    assert passes.began[2] >= passes.began[1] + 0.98 and passes.began[2] >= last_kick
    # Room freed while a newcomer's pass waits out that rest cuts it short.
    loop.kick_newcomers()
    await asyncio.sleep(0.2)
    assert len(passes.began) == 3
    freed = clock.time()
    loop.kick()
    await asyncio.sleep(0.05)
    assert len(passes.began) == 4 and passes.began[3] <= freed + 0.04, passes.began
