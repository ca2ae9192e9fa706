"""The runner: a Jupyter Server extension that runs a batch job on the server's own kernel.

Active only in batch servers (BATCHHUB_JOB_ID is set); elsewhere it loads and does nothing.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from batch_service.runner.application import RunnerApp

    return [{"module": "batch_service.runner", "app": RunnerApp}]
