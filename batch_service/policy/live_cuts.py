"""Live kernels whose windows end early: their GPUs are wanted, or too many are kept."""

from __future__ import annotations

import math
from collections.abc import Mapping

from batch_service.policy.model import Allocation, PolicyConfig, gpu_line

# Why a live window was cut (the service words it for the kernel's owner).
CUT_FOR_GPUS = "gpus"
CUT_FOR_LIVE_CAP = "live_cap"


def by_window_end(a: Allocation) -> tuple[float, str]:
    return (math.inf if a.live_until is None else a.live_until, a.id)


def cut_over_live_cap(
    running: list[Allocation], cap: int, already: set[str], config: PolicyConfig, now: float
) -> list[tuple[str, float]]:
    """Beyond `cap` live kernels, those whose windows end soonest end after the grace period.

    Live kernels do not take the batch slots runs need (they are counted apart); this bound
    keeps the servers they hold in check. Windows already cut or within the grace count too.
    """
    live = sorted((a for a in running if a.live), key=by_window_end)
    over = len(live) - max(cap, 0)
    if over <= 0:
        return []
    new_end = now + config.grace_period_seconds
    cuts = []
    for a in live[:over]:
        if a.id not in already and (a.live_until is None or a.live_until > new_end):
            cuts.append((a.id, new_end))
    return cuts


def cut_live_windows(
    needed: Mapping[str, int],
    running: list[Allocation],
    free: Mapping[str, int],
    config: PolicyConfig,
    now: float,
) -> list[tuple[str, float]]:
    """Shorten live kernels' windows on types where the first waiting request cannot fit."""
    short = {kind: n - free.get(kind, 0) for kind, n in needed.items() if n > free.get(kind, 0)}
    if not short:
        return []
    new_end = now + config.grace_period_seconds
    cuts = []
    live = [a for a in running if a.live and gpu_line(a) in short]
    # Windows that end soonest come back first; those already within the grace period count.
    for a in sorted(live, key=by_window_end):
        kind = gpu_line(a)
        if short[kind] <= 0:
            continue
        if a.live_until is None or a.live_until > new_end:
            cuts.append((a.id, new_end))
        short[kind] -= a.gpus
    return cuts
