"""The one start-up summary: where batchhub answers, who runs servers, GPUs, memory, state.

Printed once by the hub config, so the first screen of `make run` says what this batchhub is
without reading hundreds of log lines.
"""

from __future__ import annotations

from collections.abc import Iterable


def summary(
    urls: dict[str, str],
    isolation: str,
    gpus: Iterable[tuple[str, int]],
    gpu_source: str,
    memory: str,
    state_dir: str,
    databases: dict[str, str],
) -> str:
    """The summary as lines of text."""
    gpu_list = ", ".join(f"{count} x {kind}" for kind, count in gpus) or "none"
    lines = [
        "batchhub is starting:",
        f"  open            {urls['public']}  (CLI: export BATCHHUB_URL={urls['public']})",
        f"  hub API         {urls['hub_api']}",
        f"  batch service   {urls['batch']}",
        f"  proxy API       {urls['proxy_api']}",
        f"  isolation       {isolation}",
        f"  GPUs            {gpu_list}  (from {gpu_source})",
        f"  memory limits   {memory}",
        f"  state           {state_dir}",
    ]
    lines += [f"  {name:<15} {where}" for name, where in databases.items()]
    return "\n".join(lines)
