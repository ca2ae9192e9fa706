"""Profiles: what a server may use (CPU, memory, GPU count and type), one model for both spawners.

A *profile* comes from the values file's `profiles` list. `choose_profile` turns hostile
user_options into a profile the user may use, or a ProfileError with a message they can act on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_GPUS_PER_SERVER = 16
JOB_ID_PATTERN = re.compile(r"^[a-z][a-z0-9]{9}$")
BATCH_SERVER_PREFIX = "batch-"
USER_OPTION_KEYS = frozenset({"profile", "batch"})
# The batch block is a start ticket the batch service signs (spawner/credentials.py).
BATCH_OPTION_KEYS = frozenset(
    {"job_id", "time_limit", "live_window", "start_id", "issued_at", "signature"}
)


class ProfileError(ValueError):
    """user_options that cannot start a server; the message is shown to the user."""


@dataclass(frozen=True)
class Profile:
    """One server profile."""

    name: str
    display_name: str = ""
    description: str = ""
    cpu_limit: float | None = None
    mem_limit: int | None = None
    gpus: int = 0
    gpu_type: str | None = None
    groups: tuple[str, ...] = ()
    max_time_limit: int = 86400
    default_time_limit: int = 3600
    live_window: int = 1800
    kernel_name: str = "python3"
    # Most bytes of files a batch run writes under its job folder that are kept with the job.
    artifacts_max_bytes: int = 2**30
    interactive: bool = True
    batch: bool = True
    # A run of an exclusive profile has its machine (node) to itself while it runs.
    exclusive: bool = False
    # CPUs a run's processes are pinned to (locally); None: every CPU.
    cpus: tuple[int, ...] | None = None
    # Interactive servers of this profile wait while an exclusive run holds the machine and
    # count as holding it (only where some profile is exclusive).
    waits_for_exclusive: bool = True
    kubernetes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """The name a person reads."""
        return self.display_name or self.name

    def allows(self, user_groups: Iterable[str]) -> bool:
        """True if a user in these groups may use the profile."""
        return not self.groups or bool(set(self.groups) & set(user_groups))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (for the API and the service's config)."""
        return {
            "name": self.name,
            "display_name": self.title,
            "description": self.description,
            "cpu_limit": self.cpu_limit,
            "mem_limit": self.mem_limit,
            "gpus": self.gpus,
            "gpu_type": self.gpu_type,
            "groups": list(self.groups),
            "max_time_limit": self.max_time_limit,
            "default_time_limit": self.default_time_limit,
            "live_window": self.live_window,
            "kernel_name": self.kernel_name,
            "artifacts_max_bytes": self.artifacts_max_bytes,
            "interactive": self.interactive,
            "batch": self.batch,
            "exclusive": self.exclusive,
            "cpus": None if self.cpus is None else list(self.cpus),
            "waits_for_exclusive": self.waits_for_exclusive,
            "kubernetes": dict(self.kubernetes),
        }


MAX_CPU = 4095  # highest CPU number a profile may name (the kernel's default NR_CPUS bound)
MAX_CPU_LIST = 256  # characters of a CPU list like "0-3,8-11"


def parse_cpus(value: Any, profile: str = "") -> tuple[int, ...] | None:
    """A CPU list ("0-3,6", [0, 1, 2], "all" or None) as sorted CPU numbers; None: all."""
    if value is None or value == "all":
        return None
    where = f"profile {profile!r}: cpus" if profile else "cpus"
    numbers: set[int] = set()
    if isinstance(value, str):
        if len(value) > MAX_CPU_LIST or not re.fullmatch(
            r"\d{1,4}(-\d{1,4})?(,\d{1,4}(-\d{1,4})?)*", value
        ):
            raise ProfileError(
                f'{where} must be a CPU list like "0-3,6", a list of numbers or "all"'
            )
        for part in value.split(","):
            low, _, high = part.partition("-")
            first, last = int(low), int(high or low)
            if first > last or last > MAX_CPU:
                raise ProfileError(f"{where}: {part} is not a range of CPUs 0 to {MAX_CPU}")
            numbers.update(range(first, last + 1))
    elif isinstance(value, (list, tuple)) and len(value) <= MAX_CPU + 1:
        for cpu in value:
            if isinstance(cpu, bool) or not isinstance(cpu, int) or not 0 <= cpu <= MAX_CPU:
                raise ProfileError(f"{where}: {cpu!r} is not a CPU number 0 to {MAX_CPU}")
            numbers.add(cpu)
    else:
        raise ProfileError(f'{where} must be a CPU list like "0-3,6", a list of numbers or "all"')
    if not numbers:
        raise ProfileError(f"{where} names no CPU")
    return tuple(sorted(numbers))


def cpu_list(cpus: Iterable[int]) -> str:
    """CPU numbers as a list like "0-3,6" (how the kernel writes Cpus_allowed_list)."""
    ranges: list[list[int]] = []
    for cpu in sorted(set(cpus)):
        if ranges and cpu == ranges[-1][1] + 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges)


def profile_from_dict(raw: Mapping[str, Any]) -> Profile:
    """Build a Profile from a values-file entry (sizes like 4G become bytes)."""
    from hub_config.values import parse_bytes

    data = dict(raw)
    data["mem_limit"] = parse_bytes(data.get("mem_limit"))
    if data.get("artifacts_max_bytes") is not None:
        data["artifacts_max_bytes"] = parse_bytes(data["artifacts_max_bytes"])
    data["groups"] = tuple(data.get("groups") or ())
    data["kubernetes"] = dict(data.get("kubernetes") or {})
    data["cpus"] = parse_cpus(data.get("cpus"), str(data.get("name")))
    known = Profile.__dataclass_fields__
    unknown = set(data) - set(known)
    if unknown:
        raise ProfileError(f"profile {data.get('name')!r} has unknown keys: {sorted(unknown)}")
    return Profile(**data)


def load_profiles(entries: Iterable[Mapping[str, Any]]) -> list[Profile]:
    """Build the profile list, refusing duplicate names."""
    profiles = [p if isinstance(p, Profile) else profile_from_dict(p) for p in entries]
    names = [p.name for p in profiles]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ProfileError(f"profile names must be unique; repeated: {', '.join(duplicates)}")
    if not profiles:
        raise ProfileError("at least one profile is needed")
    return profiles


def takes_turn(profile: Profile, profiles: Iterable[Profile]) -> bool:
    """Whether an interactive server of `profile` waits its turn in the batch service's line:
    a GPU server always; a CPU one while some profile is exclusive, unless it opts out."""
    return profile.gpus > 0 or (profile.waits_for_exclusive and any(p.exclusive for p in profiles))


def _check_keys(options: Mapping[str, Any], allowed: frozenset[str], what: str) -> None:
    extra = sorted(str(k) for k in set(options) - allowed)
    if extra:
        raise ProfileError(
            f"unknown {what} {', '.join(repr(k) for k in extra)}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


def _positive_int(value: Any, name: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProfileError(f"{name} must be a whole number of seconds, not {value!r}")
    if not 1 <= value <= maximum:
        raise ProfileError(f"{name} must be between 1 and {maximum} seconds, not {value}")
    return value


@dataclass(frozen=True)
class ServerRequest:
    """Validated user_options: the profile and, for a batch server, its job."""

    profile: Profile
    job_id: str | None = None
    time_limit: int | None = None
    live_window: int | None = None
    start_id: str | None = None

    @property
    def is_batch(self) -> bool:
        """True for a batch server."""
        return self.job_id is not None


def choose_profile(
    options: Any,
    profiles: list[Profile],
    user_groups: Iterable[str],
    server_name: str,
) -> ServerRequest:
    """Validate user_options against the profiles; raise ProfileError with a clear message."""
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise ProfileError("server options must be a JSON object")
    _check_keys(options, USER_OPTION_KEYS, "server option")
    name = options.get("profile", profiles[0].name)
    if not isinstance(name, str):
        raise ProfileError(f"profile must be a name, not {name!r}")
    by_name = {p.name: p for p in profiles}
    profile = by_name.get(name)
    if profile is None:
        raise ProfileError(f"unknown profile {name[:64]!r}; choose one of: {', '.join(by_name)}")
    if not profile.allows(user_groups):
        raise ProfileError(
            f"profile {name!r} is reserved for the groups {', '.join(profile.groups)}; "
            "ask an admin to add you"
        )
    if not 0 <= profile.gpus <= MAX_GPUS_PER_SERVER:
        raise ProfileError(f"profile {name!r} asks for {profile.gpus} GPUs, which is not allowed")
    batch = options.get("batch")
    is_batch_server = server_name.startswith(BATCH_SERVER_PREFIX)
    if batch is None:
        if is_batch_server:
            raise ProfileError(
                f"server {server_name!r}: names starting with {BATCH_SERVER_PREFIX!r} are "
                "reserved for batch jobs"
            )
        if not profile.interactive:
            raise ProfileError(f"profile {name!r} is for batch jobs only")
        return ServerRequest(profile)
    if not isinstance(batch, Mapping):
        raise ProfileError("batch options must be a JSON object")
    _check_keys(batch, BATCH_OPTION_KEYS, "batch option")
    job_id = batch.get("job_id")
    if not isinstance(job_id, str) or not JOB_ID_PATTERN.match(job_id):
        raise ProfileError("batch job_id must be 10 lowercase letters and digits")
    if server_name != BATCH_SERVER_PREFIX + job_id:
        raise ProfileError(f"the server of job {job_id} must be named batch-{job_id}")
    if not profile.batch:
        raise ProfileError(f"profile {name!r} is for interactive servers only")
    time_limit = _positive_int(
        batch.get("time_limit", profile.default_time_limit), "time_limit", profile.max_time_limit
    )
    live_window = _positive_int(
        batch.get("live_window", profile.live_window), "live_window", max(profile.live_window, 1)
    )
    return ServerRequest(profile, job_id=job_id, time_limit=time_limit, live_window=live_window)
