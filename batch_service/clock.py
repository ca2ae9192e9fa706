"""The service's one clock, so tests and the scheduler agree on what 'now' is."""

import time


def now() -> float:
    """Seconds since the epoch (UTC)."""
    return time.time()
