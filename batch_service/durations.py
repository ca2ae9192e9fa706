"""Durations as people write them: `90m`, `2h`, `1h30m`, `3600s`, `1d`.

One parser for the Batch page, the API and the CLI. A plain number has no unit of its own: the
caller says what it means (minutes on the page and in the CLI, seconds in the API's
`time_limit`, which took seconds before it took units).
"""

from __future__ import annotations

import re

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Bounded before any work: short text, a few digits per part.
MAX_CHARS = 32
_PART = re.compile(r"(\d{1,9}(?:\.\d{1,3})?)\s*([smhd])")
_PLAIN = re.compile(r"\d{1,9}(?:\.\d{1,3})?")


class DurationError(ValueError):
    """Text that is not a duration; the message says what is accepted."""


def parse_duration(text: str, plain_unit: str = "s") -> int:
    """Whole seconds in `text` (`90m`, `2h`, `1h30m`, `3600s`; a plain number is plain_unit)."""
    raw = text.strip().lower() if isinstance(text, str) else ""
    if not raw or len(raw) > MAX_CHARS:
        raise DurationError(_help(text, plain_unit))
    if _PLAIN.fullmatch(raw):
        seconds = float(raw) * UNITS[plain_unit]
    else:
        compact = raw.replace(" ", "")
        parts = _PART.findall(compact)
        if not parts or "".join(n + u for n, u in parts) != compact:
            raise DurationError(_help(text, plain_unit))
        seconds = sum(float(n) * UNITS[u] for n, u in parts)
    if seconds < 1:
        raise DurationError(f"a duration must be at least 1 second, not {text!r}")
    return round(seconds)


def _help(text: object, plain_unit: str) -> str:
    name = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[plain_unit]
    shown = str(text)[:MAX_CHARS]
    return (
        f"{shown!r} is not a duration: write it like 90m, 2h, 1h30m or 3600s "
        f"(a plain number means {name})"
    )


def describe_duration(seconds: float) -> str:
    """Seconds as a short text people read (`1h 30m`)."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    parts.append(f"{secs}s" if secs or not (hours or minutes) else "")
    return " ".join(p for p in parts if p)
