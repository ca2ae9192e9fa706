"""Run jupyterhub-idle-culler as a hub-managed service that ends with the hub that started it.

The hub starts its services as child processes and stops them when it stops; a hub that is
killed (SIGKILL, out of memory) cannot, and the culler would go on running, parented to init,
for ever. The batch service watches its parent for the same reason; this does it for the culler.

    python hub_config/culler.py [jupyterhub-idle-culler arguments]
"""

from __future__ import annotations

import os
import runpy
import signal
import threading
import time


def end_with_parent(every: float = 1.0) -> None:
    """Stop this process (SIGTERM, as the hub would) once its parent is gone."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="end-with-hub", daemon=True).start()


def main() -> None:
    """Watch the hub, then run the culler as `python -m jupyterhub_idle_culler` would."""
    end_with_parent()
    runpy.run_module("jupyterhub_idle_culler", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
