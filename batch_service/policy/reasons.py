"""Why a request waits: a reason code (like squeue's REASON column) and words for a person.

The codes, one per waiting request (`none` once it runs):

- `paused`: a batch admin paused the queue; nothing starts until it is resumed.
- `new`: just submitted; the scheduler's next pass (within seconds) places it in line.
- `resources`: the GPUs it needs (or a CPU slot) are held by what runs now; the words say
  what holds them (runs, live kernels, GPU servers), whose they are and when they end.
- `priority`: requests ahead of it in line get the GPUs it needs first (their owners used
  less recently, or they have a higher priority).
- `user_cap` / `group_cap`: its owner, or its fair-share group, holds the most GPUs allowed.
- `reservation`: free GPUs are kept for a request that has waited longest (it would delay it).
- `not_admissible`: it can never start here (more GPUs of its type than exist).
- `slots`: all batch slots are in use (`max_concurrent_jobs`).
- `sweep_limit`: a point of a sweep that already runs its `max_parallel` points, or is paused
  (not offered to the policy: batch_service/sweep_line.py).
- `machine`: it waits for the machine: an exclusive run holds it, or the machine drains for
  an exclusive run that has waited longest; an exclusive request waits for it to be empty.

Owners' names are for readers who may see everyone's jobs; others read "yours" and counts.
"""

from __future__ import annotations

from collections.abc import Sequence

from batch_service.policy.model import Holder, Request, Wait

PAUSED = "paused"
NEW = "new"
RESOURCES = "resources"
PRIORITY = "priority"
USER_CAP = "user_cap"
GROUP_CAP = "group_cap"
RESERVATION = "reservation"
NOT_ADMISSIBLE = "not_admissible"
SLOTS = "slots"
SWEEP_LIMIT = "sweep_limit"
MACHINE = "machine"
NONE = "none"
CODES = (
    PAUSED,
    NEW,
    RESOURCES,
    PRIORITY,
    USER_CAP,
    GROUP_CAP,
    RESERVATION,
    NOT_ADMISSIBLE,
    SLOTS,
    SWEEP_LIMIT,
    MACHINE,
    NONE,
)
# Holder kinds in words: one, several.
HOLDER_WORDS = {
    "run": ("run", "runs"),
    "exclusive": ("exclusive run", "exclusive runs"),
    "live_kernel": ("live kernel", "live kernels"),
    "server": ("GPU server", "GPU servers"),
    "stopping": ("server that is stopping", "servers that are stopping"),
}
MAX_HOLDER_GROUPS = 4  # the words name at most this many groups of holders, then a count


def wanted(request: Request) -> str:
    """What a request waits for, in words."""
    if request.gpus == 0:
        return "a batch slot" if request.kind == "batch" else "a CPU slot"
    what = f"{request.gpus} GPU{'s' if request.gpus != 1 else ''}"
    return what + (f" of type {request.gpu_type}" if request.gpu_type else "")


def describe_wait(request: Request, position: int, why: str = "") -> str:
    """The sentence for the spawn page or the job list: what, where in line, and why."""
    head = f"waiting for {wanted(request)}: position {position} in line"
    return f"{head}; {why}" if why else head


def not_admissible_words(exist: int) -> str:
    """Why a request for more GPUs than exist can never start."""
    verb = "exists" if exist == 1 else "exist"
    return (
        f"only {exist} such GPU{'s' if exist != 1 else ''} {verb} on this machine: it cannot "
        "start here; cancel it and pick another profile"
    )


def within(seconds: float) -> str:
    if seconds < 60:
        return "under a minute"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"~{minutes} min"
    if minutes < 48 * 60:
        hours, rest = divmod(minutes, 60)
        return f"~{hours} h {rest} min" if rest else f"~{hours} h"
    return f"~{round(minutes / 1440)} days"


def _ends(holders: Sequence[Holder], now: float) -> str:
    known = sorted(h.end for h in holders if h.end is not None)
    if not known:
        return "no set end"
    first = known[0]
    when = "due now" if first <= now else f"in {within(first - now)}"
    if len(holders) == 1:
        return "ends now" if first <= now else f"ends {when}"
    return f"the first ends {when}" if first > now else "the first is due now"


def holders_words(holders: Sequence[Holder], now: float, reader: str | None, names: bool) -> str:
    """What holds the GPUs, grouped by kind and owner: names only when `names` is allowed."""
    groups: dict[tuple[str, str], list[Holder]] = {}
    for holder in holders:
        who = "\0you" if holder.user == reader else holder.user if names else "\0others"
        groups.setdefault((holder.kind, who), []).append(holder)
    soonest = sorted(
        groups.items(),
        key=lambda item: min((h.end for h in item[1] if h.end is not None), default=float("inf")),
    )
    parts = []
    for (kind, who), group in soonest[:MAX_HOLDER_GROUPS]:
        one, many = HOLDER_WORDS.get(kind, (kind, kind + "s"))
        n = len(group)
        if who == "\0you":
            text = f"your {one}" if n == 1 else f"{n} of your {many}"
        elif who == "\0others":
            text = f"a {one} of another user" if n == 1 else f"{n} {many} of other users"
        else:
            text = f"a {one} of {who}" if n == 1 else f"{n} {many} of {who}"
        parts.append(f"{text} ({_ends(group, now)})")
    rest = sum(len(group) for _, group in soonest[MAX_HOLDER_GROUPS:])
    if rest:
        parts.append(f"{rest} more")
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def wait_words(
    wait: Wait,
    holders: Sequence[Holder],
    now: float,
    reader: str | None = None,
    names: bool = False,
) -> str:
    """The sentence for a waiting request, as `reader` may read it."""
    code, request = wait.code, wait.request
    if code == MACHINE:
        return machine_words(wait, holders, now, reader, names)
    if code == RESOURCES:
        why = (
            "held by " + holders_words(holders, now, reader, names)
            if holders
            else "all of them are in use"
        )
    elif code == PRIORITY:
        ahead = wait.position - 1
        if ahead == 1:
            count = "1 request ahead of it gets"
        else:
            count = f"{ahead} requests ahead of it get" if ahead > 1 else "requests ahead get"
        why = (
            f"{count} these GPUs first (their owners used less recently, or they have a "
            "higher priority)"
        )
    elif code == PAUSED:
        why = "the queue is paused by a batch admin: nothing starts until it is resumed"
    elif code == NEW:
        why = "just submitted: the scheduler places it in line at its next pass"
    elif code == SLOTS and not wait.why:
        why = "all batch slots are in use"
    else:
        why = wait.why
    return describe_wait(request, wait.position, why)


def machine_words(
    wait: Wait, holders: Sequence[Holder], now: float, reader: str | None, names: bool
) -> str:
    """The sentence for a request that waits for the machine (exclusive runs, machine.py)."""
    place = f"position {wait.position} in line"
    if wait.request.exclusive:
        held = "held by " + holders_words(holders, now, reader, names) if holders else ""
        why = "; ".join(part for part in (held, wait.why) if part)
        return f"waiting for the machine to be empty: {why}; {place}"
    return f"waiting for the machine: {wait.why}; {place}"
