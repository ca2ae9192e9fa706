"""The least-privilege Role the hub needs in its namespace (the chart ships exactly this)."""

from __future__ import annotations

from typing import Any

HUB_ROLE_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [""],
        "resources": ["pods", "persistentvolumeclaims", "services", "secrets"],
        "verbs": ["get", "list", "watch", "create", "delete", "patch"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},
    {
        "apiGroups": ["batch"],
        "resources": ["jobs"],
        "verbs": ["get", "list", "watch", "create", "delete"],
    },
]
