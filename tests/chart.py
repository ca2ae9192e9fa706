"""Rendering the Helm chart with the real Helm engine (helm-python-sdk)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python
import yaml

CHART = Path(__file__).resolve().parent.parent / "helm" / "batchhub"
GPU_VALUES = Path(__file__).resolve().parent.parent / "hub_config" / "examples" / "gpu-cluster.yaml"


def render(values: dict[str, Any] | None = None, namespace: str = "batchhub") -> list[dict]:
    """Every object the chart renders for these values (client-side dry run)."""
    with helm_python.Config(namespace=namespace) as config:
        release = config.install(CHART, "test", values=values or {}, dry_run="client")
    return [doc for doc in yaml.safe_load_all(release["manifest"]) if doc]
