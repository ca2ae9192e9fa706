"""Starting a batch job's server: on an idle warm server of its owner and profile, or a new
one through the hub with a start ticket this service signs (spawner/credentials.py).

A start that cannot go ahead now (the hub is unreachable, GPUs are held outside the line, an
exclusive run waits for idle servers to stop) puts the job back in line and gives its
admission charge back; a start the hub refuses for good fails the job with the hub's words.
Any other start stops the warm servers in its way (the policy counted what they hold as free).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from batch_service.admission import Admission
from batch_service.clock import now
from batch_service.hub_client import HubClient, HubError, HubUnreachable
from batch_service.jobs import FAILED, QUEUED, STARTING, JobService, output_path, server_name
from batch_service.store import Job
from batch_service.warm import WarmServer, WarmServers, in_the_way
from spawner.credentials import sign_ticket
from spawner.profiles import Profile

log = logging.getLogger("batchhub.scheduler")


@dataclass
class PassReport:
    """What one pass did (for logs and tests)."""

    started: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    # Runs that kept their kernel while the hub still starts their server: look again soon.
    awaiting_ready: list[str] = field(default_factory=list)


class ServerStarts:
    """The start of each job the policy admits."""

    def __init__(
        self,
        jobs: JobService,
        hub: HubClient,
        admission: Admission,
        warm: WarmServers,
        signing_key: bytes | None = None,
        user_options: Callable[[Job, Profile, str], dict[str, Any]] | None = None,
    ) -> None:
        self.jobs = jobs
        self.hub = hub
        self.admission = admission
        self.warm = warm
        self.signing_key = signing_key
        self.user_options = user_options or self.signed_user_options

    async def clear_warm(self, profile_name: str | None, report: PassReport) -> int:
        """A start that is not on a warm server: stop the warm servers in its way (the policy
        counted what they hold as free); how many were stopped."""
        if profile_name is None:
            return 0
        profile = self.jobs.profiles.get(profile_name)
        stopped = 0
        for entry in self.warm:
            held = self.jobs.profiles.get(entry.profile)
            if profile is None or held is None or in_the_way(held, profile):
                await self.stop_warm(entry, report)
                stopped += 1
        return stopped

    def _exclusive(self, profile_name: str) -> bool:
        profile = self.jobs.profiles.get(profile_name)
        return profile is not None and profile.exclusive

    async def stop_warm(self, entry: WarmServer, report: PassReport) -> None:
        """Stop a warm server now."""
        self.warm.forget(entry.owner, entry.server)
        try:
            await self.hub.stop_server(entry.owner, entry.server)
            report.stopped.append(f"{entry.owner}/{entry.server}")
        except (HubError, HubUnreachable) as e:
            log.warning("could not stop %s/%s: %s", entry.owner, entry.server, e)

    def fail(self, job_id: str, reason: str, report: PassReport) -> None:
        """A job whose server cannot start ends as failed, with the reason shown to its owner."""
        if self.jobs.mark(job_id, [STARTING], state=FAILED, finished_at=now(), reason=reason):
            report.failed.append(job_id)
            self.jobs.events.job_ended(job_id)

    async def start(self, job_id: str, report: PassReport) -> None:
        """Ask the hub for the job's server with a signed start ticket; a refusal fails the job
        with the hub's message."""
        with self.jobs.store.session() as session:
            job = session.get(Job, job_id)
        if job is None:
            return
        if await self.start_warm(job, report):
            return
        if await self.clear_warm(job.profile, report) and self._exclusive(job.profile):
            # The machine must be empty when it starts: a later pass, once the stopped
            # servers are gone (until then they count as stopping and hold the machine).
            self.jobs.mark(
                job_id, [QUEUED], reason="waiting for an idle batch server to stop first"
            )
            self.admission.refund(job)
            return
        # A start the hub may have received although its answer was lost keeps its id.
        start_id = job.start_id or secrets.token_hex(8)
        if not self.jobs.mark(
            job_id,
            [QUEUED],
            state=STARTING,
            admitted_at=now(),
            started_at=None,
            start_id=start_id,
            output_path=output_path(job.id, job.input_name, job.kind),
            reason="",
        ):
            self.admission.refund(job)  # no longer in line (cancelled meanwhile)
            return
        profile = self.jobs.profiles.get(job.profile)
        if profile is None:
            self.fail(job_id, f"profile {job.profile!r} no longer exists", report)
            return
        try:
            await self.hub.start_server(
                job.owner, server_name(job_id), self.user_options(job, profile, start_id)
            )
            report.started.append(job_id)
        except HubError as e:
            if e.status == 400 and ("already" in e.message or "pending" in e.message):
                # Only this service starts batch servers: it is this start, answered before.
                report.started.append(job_id)
                return
            if e.status == 409:
                # The GPUs are held outside the queue (an interactive server): try again later.
                self.requeue(job, e.message)
                return
            self.fail(job_id, f"the hub refused to start the server: {e.message}", report)
        except HubUnreachable as e:
            log.warning("hub unreachable starting %s: %s", job_id, e)
            self.requeue(job, "waiting for the hub")

    async def start_warm(self, job: Job, report: PassReport) -> bool:
        """Hand the job to a warm server of its owner and profile, if one waits."""
        if job.start_id or not self.warm.enabled:
            return False  # a start of its own server may be under way already
        entry = self.warm.take(job.owner, job.profile, now())
        if entry is None:
            return False
        if not self.jobs.mark(
            job.id,
            [QUEUED],
            state=STARTING,
            admitted_at=now(),
            started_at=None,
            start_id=entry.start_id,
            server=entry.server,
            output_path=output_path(job.id, job.input_name, job.kind),
            reason="",
        ):
            self.warm.put_back(entry)
            self.admission.refund(job)  # no longer in line (cancelled meanwhile)
            return True
        self.warm.hand(entry, job.id)
        log.info("job %s starts on the warm server %s/%s", job.id, job.owner, entry.server)
        report.started.append(job.id)
        return True

    def requeue(self, job: Job, reason: str) -> None:
        """Back in the queue, keeping the start id (the hub may yet have that start), its
        admission charge given back."""
        if self.jobs.mark(job.id, [STARTING], state=QUEUED, admitted_at=None, reason=reason):
            self.admission.refund(job)

    def signed_user_options(self, job: Job, profile: Profile, start_id: str) -> dict[str, Any]:
        """user_options of a batch server, its `batch` block signed as a start ticket."""
        options = batch_user_options(job, profile)
        if self.signing_key is not None:
            options["batch"] = sign_ticket(
                self.signing_key,
                job.owner,
                server_name(job.id),
                profile.name,
                {**options["batch"], "start_id": start_id},
                now(),
            )
        return options


def batch_user_options(job: Job, profile: Profile) -> dict[str, Any]:
    """user_options of a batch server before signing (docs/architecture.md)."""
    return {
        "profile": profile.name,
        "batch": {"job_id": job.id, "time_limit": job.time_limit, "live_window": job.live_window},
    }
