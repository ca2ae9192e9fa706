"""The time limit JupyterLab's Create Job sends as a reserved tag.

jupyter-scheduler's CreateJob has no free field; its "Additional options" (our advanced-options
provider in labextension/) send tags, so the time limit travels as `batchhub-time-limit=<seconds>`.
batchhub jobs have no other tags: any other tag is refused rather than silently dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from jupyter_scheduler.exceptions import SchedulerError

TIME_LIMIT_TAG = "batchhub-time-limit="
# The service's own bound (api/jobs.py MAX_TIME_LIMIT); more digits are no time limit anyone means.
MAX_DIGITS = 9
MAX_TAGS = 20


def time_limit_from_tags(tags: Sequence[str] | None) -> int | None:
    """The seconds the user chose, None for the profile's default; a bad tag is a clear error."""
    if not tags:
        return None
    if len(tags) > MAX_TAGS:
        raise SchedulerError("batchhub jobs take one time limit and no other tags")
    seconds = None
    for tag in tags:
        if not isinstance(tag, str) or not tag.startswith(TIME_LIMIT_TAG):
            shown = str(tag)[:60]
            raise SchedulerError(
                f"batchhub jobs have no tags ({shown!r}): leave the tags empty and set the "
                "time limit in Additional options"
            )
        value = tag[len(TIME_LIMIT_TAG) :]
        if not value.isascii() or not value.isdigit() or len(value) > MAX_DIGITS:
            raise SchedulerError(
                f"the time limit must be a whole number of seconds, not {value[:20]!r}"
            )
        if seconds is not None:
            raise SchedulerError("give one time limit, not several")
        seconds = int(value)
        if seconds < 1:
            raise SchedulerError("the time limit must be at least one second")
    return seconds


def time_limit_tags(seconds: int | None) -> list[str]:
    """The tags the Jobs UI's detail view shows for a job's or definition's time limit."""
    return [] if seconds is None else [f"{TIME_LIMIT_TAG}{int(seconds)}"]
