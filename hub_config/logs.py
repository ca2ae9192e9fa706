"""The hub's request log, without the batch service's routine polls.

The batch service asks the hub for its servers on every scheduler pass (each second by
default); logged at INFO those answers were most of the log. A filter on the hub's access log
moves the batch service's successful, quick GETs to DEBUG; everything else (its starts and
stops of servers, anything slow or failed, every other client) is logged as before, and the
hub's own request metrics are untouched.
"""

from __future__ import annotations

import logging
import re

BATCH_SERVICE = "batch"
# JupyterHub's access line: "200 GET /hub/api/users?... (batch@127.0.0.1) 6.14ms"
ROUTINE = re.compile(
    r"^2\d\d GET \S*/hub/api/\S* \(" + BATCH_SERVICE + r"@[^)]*\) (?P<ms>\d+(\.\d+)?)ms$"
)
SLOW_MS = 1000.0


class RoutinePolls(logging.Filter):
    """Demote the batch service's routine reads of the hub API to DEBUG."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self.logger = logger

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record, but a routine poll only where DEBUG is logged."""
        if record.levelno != logging.INFO:
            return True
        match = ROUTINE.match(record.getMessage())
        if match is None or float(match["ms"]) >= SLOW_MS:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return self.logger.isEnabledFor(logging.DEBUG)


def quiet_routine_polls() -> None:
    """Install the filter on the hub's access log (tornado.access)."""
    access = logging.getLogger("tornado.access")
    if not any(isinstance(f, RoutinePolls) for f in access.filters):
        access.addFilter(RoutinePolls(access))
