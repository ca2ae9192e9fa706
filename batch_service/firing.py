"""Firing job definitions: each due moment submits an ordinary job, or is skipped.

`fire_due` is the async core (one pass at a given time, so tests move time themselves);
`FiringLoop` runs it every few seconds on a PeriodicCallback with the service's clock. The
stored input is checked again in a worker process at each firing (as an upload is), because
a firing runs the owner's file as a submission would.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from batch_service.clock import now
from batch_service.definitions import DefinitionService
from batch_service.errors import BatchError
from batch_service.periodic import Periodic
from batch_service.uploads import CheckedInput

log = logging.getLogger("batchhub.definitions")

# name, content, entry point -> the checked input (a worker process in the service).
CheckInput = Callable[[str, bytes, str | None], Awaitable[CheckedInput]]


@dataclass
class FiringReport:
    """What one pass did: jobs submitted, firings skipped, firings that failed."""

    submitted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


async def fire_due(definitions: DefinitionService, check: CheckInput, at: float) -> FiringReport:
    """Fire every definition due at `at` once."""
    report = FiringReport()
    for firing in definitions.due(at):
        if firing.skip:
            definitions.skip(firing, at)
            report.skipped.append(firing.definition_id)
            continue
        try:
            content = definitions.input_bytes(firing)
            upload = await check(firing.input_name, content, firing.entry_point)
            job_id = definitions.submit(firing, upload, at)
        except BatchError as e:
            # The owner reads why on the definition; the next moment tries again.
            definitions.fail(firing, at, e.message)
            report.failed.append(firing.definition_id)
            continue
        except OSError as e:
            definitions.fail(firing, at, f"the stored input could not be read: {e.strerror}")
            report.failed.append(firing.definition_id)
            continue
        if job_id is not None:
            report.submitted.append(job_id)
    return report


class FiringLoop(Periodic):
    """Fires due definitions every `interval` seconds, never two passes at once (the first
    pass right away: a firing missed while the service was down fires now)."""

    def __init__(
        self,
        definitions: DefinitionService,
        check: CheckInput,
        interval: float,
        kick: Callable[[], None],
        clock: Callable[[], float] = now,
    ) -> None:
        super().__init__(interval)
        self.definitions = definitions
        self.check = check
        self.kick = kick
        self.clock = clock

    async def tick(self) -> None:
        """One pass; errors are logged and the next pass tries again."""
        if self._running:
            return
        self._running = True
        try:
            report = await fire_due(self.definitions, self.check, self.clock())
            if report.submitted:
                log.info("definitions fired jobs %s", ", ".join(report.submitted))
                self.kick()
            if report.skipped:
                log.info("definitions skipped (previous job still busy): %s", report.skipped)
        except Exception:
            log.exception("firing job definitions failed")
        finally:
            self._running = False
