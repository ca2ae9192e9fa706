"""What the admission policy reads and decides: requests, allocations, usage, settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple


@dataclass(frozen=True)
class Request:
    """A batch job or an interactive GPU server waiting for its turn."""

    id: str
    user: str
    gpus: int
    gpu_type: str | None = None
    group: str | None = None
    kind: str = "batch"
    priority: int = 0
    submitted_at: float = 0.0
    expected_duration: float = 3600.0
    # Needs a whole machine to itself while it runs (policy/machine.py).
    exclusive: bool = False


@dataclass(frozen=True)
class Allocation:
    """Something holding GPUs now: a running job, an interactive server, a live kernel."""

    id: str
    user: str
    gpus: int
    gpu_type: str | None = None
    group: str | None = None
    started_at: float = 0.0
    expected_end: float | None = None
    live: bool = False
    live_until: float | None = None
    # "batch" (a run, or its live kernel), "interactive" (a GPU server: no set end) or
    # "stopping" (a server whose job no longer needs it, until the hub has let it go).
    kind: str = "batch"
    exclusive: bool = False  # a run that holds its machine whole (not once it is live)


class Holder(NamedTuple):
    """Who holds GPUs of a type now (for the words of those who wait for them)."""

    kind: str  # "run", "exclusive", "live_kernel", "server" or "stopping"
    user: str
    gpus: int
    end: float | None  # expected end; None: no set end (an interactive server)


class Wait(NamedTuple):
    """Why one request waits (a reason code, policy/reasons.py), and when it may start."""

    request: Request
    position: int
    code: str
    estimated_start: float | None
    why: str = ""  # words for a cap, a refusal or a reservation


@dataclass(frozen=True)
class Usage:
    """Decayed GPU-seconds charged to users and groups, as of a time."""

    by_user: Mapping[str, float] = field(default_factory=dict)
    by_group: Mapping[str, float] = field(default_factory=dict)
    as_of: float = 0.0


@dataclass(frozen=True)
class PolicyConfig:
    """Fair-share settings (the values file's `policy` section)."""

    half_life_seconds: float = 7 * 86400
    grace_period_seconds: float = 600
    max_wait_seconds: float = 4 * 3600
    user_gpu_cap: int | None = None
    group_gpu_caps: Mapping[str, int] = field(default_factory=dict)
    user_weights: Mapping[str, float] = field(default_factory=dict)
    group_weights: Mapping[str, float] = field(default_factory=dict)
    backfill: bool = True
    # Requests that cannot start looked at per decision, at most (the rest keep their places).
    backfill_depth: int = 1000
    machines: int = 1  # machines sharing the capacity; an exclusive run takes one whole
    # The machines run exclusive runs only (a Kubernetes pool): other work neither holds nor
    # waits for them.
    exclusive_pool: bool = False

    @cached_property  # read for every queued request in a decision
    def named_groups(self) -> frozenset[str]:
        """Groups with a weight or a cap: the hub groups whose members take turns as one."""
        return frozenset(self.group_weights) | frozenset(self.group_gpu_caps)


@dataclass(frozen=True)
class Decision:
    """What to start now, which live windows to cut, and where everyone else stands."""

    start: tuple[str, ...]
    cut_live: tuple[tuple[str, float], ...]
    positions: Mapping[str, int]
    reasons: Mapping[str, str]
    usage: Usage
    # Why each cut live window is cut: GPU (others wait for its GPUs) or LIVE_CAP.
    cut_reasons: Mapping[str, str] = field(default_factory=dict)
    # Request id -> Wait of everyone left waiting (worked out with the positions).
    waits: Mapping[str, Wait] = field(default_factory=dict)
    # GPU type -> what holds GPUs of that type after this decision, soonest end first.
    holders: Mapping[str, tuple[Holder, ...]] = field(default_factory=dict)
    now: float = 0.0
    # GPU type ("" for CPU) -> how many wait in its line.
    waiting: Mapping[str, int] = field(default_factory=dict)


# The key of the line of requests that need no GPU (and of GPUs of no named type).
CPU = ""


def gpu_line(item: Request | Allocation) -> str:
    """The key of the line a request waits in (or an allocation holds): its GPU type, or CPU."""
    return CPU if item.gpus == 0 else (item.gpu_type or CPU)
