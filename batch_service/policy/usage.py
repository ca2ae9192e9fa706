"""Decayed usage: GPU-seconds charged at admission, halving every half-life."""

from __future__ import annotations

from batch_service.policy.model import Usage


def decay(usage: Usage, now: float, half_life: float) -> Usage:
    """Usage as of `now`: halves every `half_life` seconds."""
    if now <= usage.as_of or half_life <= 0:
        return Usage(dict(usage.by_user), dict(usage.by_group), max(now, usage.as_of))
    factor = 0.5 ** ((now - usage.as_of) / half_life)
    return Usage(
        {k: v * factor for k, v in usage.by_user.items()},
        {k: v * factor for k, v in usage.by_group.items()},
        now,
    )


def charge(usage: Usage, user: str, group: str | None, gpu_seconds: float) -> Usage:
    """Add GPU-seconds to a user and their group (never below zero)."""
    by_user = dict(usage.by_user)
    by_user[user] = max(0.0, by_user.get(user, 0.0) + gpu_seconds)
    by_group = dict(usage.by_group)
    if group is not None:
        by_group[group] = max(0.0, by_group.get(group, 0.0) + gpu_seconds)
    return Usage(by_user, by_group, usage.as_of)


def settle(
    usage: Usage,
    user: str,
    group: str | None,
    charged_seconds: float,
    used_seconds: float,
    gpus: int,
) -> Usage:
    """Correct an admission charge once a run ends: refund what it did not use.

    `charged_seconds` and `used_seconds` are wall-clock seconds (the expected duration it was
    charged for, and how long it held its GPUs); the refund is their difference times `gpus`.
    """
    return charge(usage, user, group, gpus * (used_seconds - charged_seconds))
