"""Run jupyterhub-idle-culler as a hub-managed service that ends with the hub that started it.

The hub starts its services as child processes and stops them when it stops; a hub that is
killed (SIGKILL, out of memory) cannot, and the culler would go on running, parented to init,
for ever. The batch service's check workers watch their parent the same way.

    python hub_config/culler.py [jupyterhub-idle-culler arguments]
"""

from __future__ import annotations

import os
import runpy

from batch_service.parent_watch import end_with


def main() -> None:
    """Watch the hub, then run the culler as `python -m jupyterhub_idle_culler` would."""
    end_with(os.getppid())
    runpy.run_module("jupyterhub_idle_culler", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
