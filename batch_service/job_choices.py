"""What a submitter may choose for a job: a profile, a time limit within it, a fair-share group.

Checked at submission, when a job definition is saved and at each of its firings, each refusal
in words that name what is allowed instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from batch_service.errors import BatchError
from batch_service.identity import Identity
from spawner.profiles import Profile


class JobChoices:
    """Checks of a submitter's choices (part of JobService, which sets these attributes)."""

    profiles: dict[str, Profile]
    gpu_capacity: Mapping[str, int] | None
    fair_groups: Callable[[], frozenset[str]]

    def profiles_for(self, identity: Identity) -> list[Profile]:
        """Batch profiles this user may pick."""
        return [p for p in self.profiles.values() if p.batch and p.allows(identity.groups)]

    def _profile(self, identity: Identity, name: str) -> Profile:
        if not name:
            usable = self.profiles_for(identity)
            if not usable:
                raise BatchError("no batch profile is available to you", field="profile")
            return usable[0]
        profile = self.profiles.get(name)
        if profile is None or not profile.batch:
            names = ", ".join(p.name for p in self.profiles_for(identity)) or "none"
            raise BatchError(f"unknown profile {name[:64]!r}; available: {names}", field="profile")
        if not profile.allows(identity.groups):
            raise BatchError(f"profile {name!r} is not available to you", field="profile")
        return profile

    def groups_for(self, identity: Identity) -> list[str]:
        """Fair-share groups this user may count a job in."""
        return sorted(set(identity.groups) & self.fair_groups())

    def _group(self, identity: Identity, group: Any) -> str | None:
        if group is None or group == "":
            return None
        if not isinstance(group, str) or group not in identity.groups:
            mine = ", ".join(sorted(identity.groups)) or "none"
            raise BatchError(
                f"you are not a member of group {str(group)[:255]!r}; your groups: {mine}"
            )
        usable = self.groups_for(identity)
        if group not in usable:
            choices = ", ".join(usable) or "none"
            raise BatchError(
                f"group {group!r} has no fair share of its own (no weight or cap); "
                f"yours that do: {choices}"
            )
        return group

    def check_choices(
        self, identity: Identity, profile_name: str, time_limit: int | None
    ) -> tuple[Profile, int]:
        """The profile this user may run with and the time limit within it (job definitions
        are checked with this too, when saved and at each firing)."""
        profile = self._profile(identity, profile_name)
        if time_limit is None:
            time_limit = profile.default_time_limit
        if isinstance(time_limit, bool) or not isinstance(time_limit, int) or time_limit < 1:
            raise BatchError(
                "time_limit must be a whole number of seconds, at least 1", field="time_limit"
            )
        if time_limit > profile.max_time_limit:
            raise BatchError(
                f"time_limit {time_limit}s is beyond profile {profile.name!r}'s maximum "
                f"of {profile.max_time_limit}s",
                field="time_limit",
            )
        self.check_gpus_exist(profile)
        return profile, time_limit

    def check_gpus_exist(self, profile: Profile) -> None:
        """Refuse a profile no GPU of this machine can ever run, in the spawn page's words."""
        if self.gpu_capacity is None or not profile.gpus:
            return
        if profile.gpu_type:
            have = self.gpu_capacity.get(profile.gpu_type, 0)
        else:
            have = sum(self.gpu_capacity.values())
        if profile.gpus > have:
            kind = f"GPU{'s' if profile.gpus != 1 else ''}"
            kind += f" of type {profile.gpu_type}" if profile.gpu_type else ""
            raise BatchError(
                f"profile {profile.name!r} needs {profile.gpus} {kind} but this machine has "
                f"{have}: a job with it could never start; pick another profile"
            )
