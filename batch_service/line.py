"""The line as the last scheduler pass left it: where each queued job and waiting GPU server
stands, why it waits (a reason code and words) and when it may start, told to each reader.

Each pass hands its decision over (`update`); the positions, codes and expected starts of the
whole line come out of that decision's one walk, which the scheduler has worked out in a
worker thread right after the pass (`work_out`), so neither the pass nor the event loop waits
for a long line; a reader who comes first works it out itself. A request submitted since the
last pass has a provisional place behind everyone already waiting for the same kind (code
`new`). Owners' names of what holds GPUs are told only
to readers who may see everyone's jobs (batch admins, custom:batch:read-all).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from batch_service.clock import now
from batch_service.identity import Identity
from batch_service.policy import Decision, Holder, Request, Wait, wait_words
from batch_service.policy.machine import MACHINE_KEY
from batch_service.policy.model import gpu_line
from batch_service.policy.reasons import MACHINE, NEW, NONE, PAUSED, SWEEP_LIMIT


def not_waiting(reason: str) -> dict[str, Any]:
    """The wait fields of a job or turn that does not wait (running, ended, admitted)."""
    return {"position": None, "reason_code": NONE, "reason": reason, "estimated_start": None}


class Line:
    """The last decision's waits, shared by the job and turn services."""

    def __init__(self, is_paused: Callable[[], bool] = lambda: False) -> None:
        self.is_paused = is_paused
        self.decided = False
        # When the last decision was handed over: a request submitted later is not in it.
        self.decided_at = float("-inf")
        self.waits: Mapping[str, Wait] = {}
        self.holders: Mapping[str, tuple[Holder, ...]] = {}
        self.waiting: Mapping[str, int] = {}  # how many wait in each kind's line
        # `waiting` as the last line walked had it: a newcomer's place, without a walk.
        self.walked_waiting: Mapping[str, int] = {}
        # Sweep points not offered to the policy (their sweep runs its most) -> why.
        self.held: Mapping[str, str] = {}

    def update(self, decision: Decision) -> None:
        """Keep a pass's decision (its walk of the line happens on first read)."""
        self.waits, self.holders, self.waiting = decision.waits, decision.holders, decision.waiting
        self.decided, self.decided_at = True, now()

    def work_out(self) -> None:
        """Walk the line now (positions, reasons, expected starts): run in a worker thread."""
        self.walked_waiting = dict(self.waiting)

    def fields(
        self,
        request: Request,
        reader: Identity | None,
        paused: bool,
        fallback_position: Callable[[str], int | None],
        last_try: str = "",
    ) -> dict[str, Any]:
        """position, reason_code, reason and estimated_start of a waiting request, as `reader`
        may read them. `fallback_position(id)`: its place before any pass has placed anyone;
        `last_try`: why its last start did not happen, if one was tried."""
        held = self.held.get(request.id)
        if held is not None and not paused:
            return {
                "position": None,
                "reason_code": SWEEP_LIMIT,
                "reason": held,
                "estimated_start": None,
            }
        # Looking a newcomer up would walk the whole line only to learn it is not there: under a
        # stream of submissions every acknowledgement would pay for that walk.
        newcomer = request.submitted_at > self.decided_at
        wait = None if newcomer else self.waits.get(request.id)
        if wait is None:
            # Not placed by a pass yet: behind everyone already in its line.
            waiting = self.walked_waiting if newcomer else self.waiting
            if self.decided and waiting:
                position = waiting.get(gpu_line(request), 0) + 1
            else:
                position = fallback_position(request.id) or 1
            wait = Wait(request, position, NEW, None)
        if paused:
            wait = wait._replace(code=PAUSED, estimated_start=None)
        names = reader is not None and reader.can_read_all
        words = wait_words(
            wait,
            self.holders.get(MACHINE_KEY if wait.code == MACHINE else gpu_line(request), ()),
            now(),
            reader=None if reader is None else reader.name,
            names=names,
        )
        if last_try:
            words += f" (last try: {last_try})"
        return {
            "position": wait.position,
            "reason_code": wait.code,
            "reason": words,
            "estimated_start": wait.estimated_start,
        }
