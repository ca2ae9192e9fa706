"""End a helper process once the process that started it is gone.

A parent that is SIGKILLed (or runs out of memory) cannot stop its children, and they would run
on for ever, parented to init: the service's check workers and the hub's idle culler each watch
their parent with this instead.
"""

from __future__ import annotations

import os
import threading
import time


def end_with(parent: int, every: float = 1.0) -> None:
    """Exit this process once `parent` is no longer its parent (checked every `every` s)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(0)

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()
