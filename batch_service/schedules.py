"""Schedules of job definitions: a five-field cron expression read in an IANA time zone.

Parsing is bounded before any work (length, five fields, known zone names), and the next firing
is found by croniter in the definition's own zone, so "0 9 * * 1-5" in Europe/Berlin means nine
in the morning there in summer and in winter. cron-descriptor puts an expression in words
("At 06:00, only on Monday") for the pages.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from functools import lru_cache

from cron_descriptor import Options, get_description
from croniter import croniter

from batch_service.errors import BatchError

MAX_SCHEDULE_CHARS = 120
MAX_TIMEZONE_CHARS = 64
# A schedule that matches no date for this long (e.g. "0 0 30 2 *") never fires: refused.
MAX_YEARS_BETWEEN_FIRINGS = 8
# The most firings one preview lists.
MAX_PREVIEW = 10
# Wall-clock times one search may step over (a repeated hour has at most 60 minutes).
MAX_WALL_STEPS = 120


@lru_cache(maxsize=1)
def time_zones() -> frozenset[str]:
    """The IANA zone names this machine knows (read once)."""
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def check_timezone(name: object) -> str:
    """A known IANA time zone name, or a 400 saying what is wrong."""
    if name in (None, ""):
        return "UTC"
    if not isinstance(name, str) or len(name) > MAX_TIMEZONE_CHARS:
        raise BatchError(
            "timezone must be an IANA name such as Europe/Berlin or UTC, "
            f"at most {MAX_TIMEZONE_CHARS} characters",
            field="timezone",
        )
    if name not in time_zones():
        raise BatchError(
            f"unknown time zone {name[:MAX_TIMEZONE_CHARS]!r}: use an IANA name such as "
            "Europe/Berlin, America/New_York or UTC",
            field="timezone",
        )
    return name


def check_schedule(expression: object) -> str:
    """A five-field cron expression (minute hour day-of-month month day-of-week)."""
    if not isinstance(expression, str) or not expression.strip():
        raise BatchError(
            'schedule must be a cron expression such as "0 9 * * 1-5"', field="schedule"
        )
    if len(expression) > MAX_SCHEDULE_CHARS:
        raise BatchError(
            f"schedule is longer than {MAX_SCHEDULE_CHARS} characters", field="schedule"
        )
    fields = expression.split()
    if len(fields) != 5:
        raise BatchError(
            f"schedule {expression!r} has {len(fields)} fields; a cron expression has five: "
            'minute hour day-of-month month day-of-week (e.g. "*/15 * * * *")',
            field="schedule",
        )
    normal = " ".join(fields)
    try:
        valid = croniter.is_valid(normal)
    except (ValueError, TypeError):  # croniter's errors are ValueErrors
        valid = False
    if not valid:
        raise BatchError(
            f"schedule {normal!r} is not a valid cron expression "
            "(minute 0-59, hour 0-23, day 1-31, month 1-12, weekday 0-6)",
            field="schedule",
        )
    return normal


def next_firing(expression: str, timezone: str, after: float) -> float:
    """Epoch seconds of the first firing strictly after `after`, in the schedule's zone.

    croniter steps through wall-clock times and zoneinfo turns each into an instant: croniter's
    own arithmetic on zone-aware times is an hour off across a summer-time change ("0 9 * * *"
    in Europe/Berlin fired at 08:00 on the day summer time began). A wall time the clocks skip
    fires at the same time after the change (02:30 becomes 03:30); one they repeat, once.
    """
    zone = zoneinfo.ZoneInfo(timezone)
    start = datetime.fromtimestamp(after, zone).replace(tzinfo=None)
    try:
        it = croniter(expression, start, max_years_between_matches=MAX_YEARS_BETWEEN_FIRINGS)
        # Within a repeated hour a few wall times may lie before `after`: step past them.
        for _ in range(MAX_WALL_STEPS):
            wall = it.get_next(datetime)
            for fold in (0, 1):
                moment = wall.replace(tzinfo=zone, fold=fold).timestamp()
                if moment > after:
                    return moment
    except (ValueError, TypeError) as e:
        raise BatchError(
            f"schedule {expression!r} never fires within {MAX_YEARS_BETWEEN_FIRINGS} years",
            field="schedule",
        ) from e
    raise BatchError(f"schedule {expression!r} found no next firing", field="schedule")


def firings(expression: str, timezone: str, after: float, count: int) -> list[float]:
    """The next `count` firings after `after` (a checked expression and zone)."""
    times: list[float] = []
    for _ in range(max(1, min(count, MAX_PREVIEW))):
        after = next_firing(expression, timezone, after)
        times.append(after)
    return times


@lru_cache(maxsize=1024)
def describe(expression: str) -> str:
    """A checked expression in words, with 24-hour times ("At 06:00, only on Monday")."""
    options = Options()
    options.use_24hour_time_format = True
    options.verbose = False
    try:
        words = str(get_description(expression, options))
    except Exception:  # noqa: BLE001  (words are a courtesy: the cron text is shown anyway)
        return ""
    # "0 6 * * *" reads "At 06:00": say that it is every day.
    if expression.split()[2:] == ["*", "*", "*"] and words.startswith("At ") and "," not in words:
        words += ", every day"
    return words
