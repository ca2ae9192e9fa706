"""The versioned REST API under <service prefix>api/v1/; each module ends with its routes."""

from __future__ import annotations

from typing import Any

from batch_service.api import (
    artifacts,
    datasets,
    definitions,
    gpus,
    jobs,
    notifications,
    queue,
    runner,
    runner_files,
    sweeps,
    turns,
    tus,
)

API_PREFIX = "api/v1/"


def api_routes(service_prefix: str) -> list[tuple[str, Any]]:
    """Every API route, anchored under the service prefix."""
    base = service_prefix + API_PREFIX
    return [
        (base + pattern, handler)
        for module in (
            jobs,
            sweeps,
            definitions,
            artifacts,
            datasets,
            tus,
            runner,
            runner_files,
            turns,
            queue,
            gpus,
            notifications,
        )
        for pattern, handler in module.routes
    ]
