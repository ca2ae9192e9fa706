"""Spawn latency on the test control plane: 20 concurrent spawns, and API requests per spawn.

Side by side in one run: KubeSpawner's own pod spawn (the baseline), BatchKubeSpawner's
interactive spawn (a pod with a profile), and its batch spawn (a Job whose pod it follows).
API requests are counted at the Kubernetes client (every REST call the spawner makes).

    .venv/bin/python bench/kube_spawn_latency.py [--spawns 20]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kubernetes_asyncio.client import rest  # noqa: E402
from kubernetes_asyncio.config import kube_config  # noqa: E402
from kubespawner import KubeSpawner  # noqa: E402

from spawner.kube import BatchKubeSpawner  # noqa: E402
from spawner.rbac import HUB_ROLE_RULES  # noqa: E402
from tests.k8s.controlplane import start_control_plane  # noqa: E402
from tests.k8s.stand_ins import as_batch_service, hub_side  # noqa: E402

NAMESPACE = "bench"
CALLS: Counter[str] = Counter()


def count_requests() -> None:
    """Count every REST call, keyed by the spawner that made it (via a context variable)."""
    import contextvars

    current = contextvars.ContextVar("spawn", default="other")
    original = rest.RESTClientObject.request

    async def counted(self, method, url, *args, **kwargs):  # type: ignore[no-untyped-def]
        CALLS[current.get()] += 1
        return await original(self, method, url, *args, **kwargs)

    rest.RESTClientObject.request = counted  # type: ignore[method-assign]
    globals()["CURRENT"] = current


def make(kind: str, n: int):  # type: ignore[no-untyped-def]
    user = f"{kind}{n:02d}"
    server = f"batch-b{n:09d}" if kind == "batch" else "s"
    common = dict(
        **hub_side(user, server),
        namespace=NAMESPACE,
        image="quay.io/jupyter/base-notebook:latest",
        start_timeout=120,
    )
    if kind == "kubespawner":
        return KubeSpawner(cpu_limit=1, mem_limit="1G", **common)
    options: dict = {"profile": "cpu"}
    if kind == "batch":
        options["batch"] = {"job_id": f"b{n:09d}", "time_limit": 600, "live_window": 60}
    spawner = BatchKubeSpawner(
        profiles=[{"name": "cpu", "cpu_limit": 1, "mem_limit": "1G"}],
        **as_batch_service(user, server, options),
        **common,
    )
    spawner.user_options = options
    spawner.validate_user_options(options)
    return spawner


async def spawn_all(kind: str, count: int) -> tuple[list[float], float]:
    """Start `count` servers at once; latencies and mean API requests per spawn."""
    spawners = [make(kind, n) for n in range(count)]
    latencies: list[float] = []

    async def one(n: int, spawner) -> None:  # type: ignore[no-untyped-def]
        CURRENT.set(f"{kind}-{n}")  # type: ignore[name-defined]  # noqa: F821
        t0 = time.perf_counter()
        await spawner.start()
        latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(one(n, s) for n, s in enumerate(spawners)))
    requests = [CALLS[f"{kind}-{n}"] for n in range(count)]
    for n, spawner in enumerate(spawners):
        CURRENT.set(f"stop-{kind}-{n}")  # type: ignore[name-defined]  # noqa: F821
        await spawner.stop(now=True)
    return latencies, statistics.mean(requests)


def main() -> None:
    """Start a control plane, spawn, print."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--spawns", type=int, default=20)
    args = parser.parse_args()
    plane = start_control_plane()
    try:
        config = plane.service_account(NAMESPACE, "hub", HUB_ROLE_RULES)
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(config)
        count_requests()

        async def everything() -> dict:
            # One loop for all: KubeSpawner shares its pod reflector across spawners.
            return {
                k: await spawn_all(k, args.spawns) for k in ("kubespawner", "interactive", "batch")
            }

        rows = asyncio.run(everything())
    finally:
        plane.stop()
        shutil.rmtree(plane.folder, ignore_errors=True)
    names = {
        "kubespawner": "KubeSpawner pod (baseline)",
        "interactive": "BatchKubeSpawner pod",
        "batch": "BatchKubeSpawner Job",
    }
    print(f"{args.spawns} concurrent spawns on the test control plane (KWOK nodes)")
    print(f"{'':30}{'p50 s':>8}{'p95 s':>8}{'max s':>8}{'API requests/spawn':>20}")
    for kind, (latencies, requests) in rows.items():
        q = statistics.quantiles(latencies, n=20)
        print(
            f"{names[kind]:30}{statistics.median(latencies):8.2f}{q[18]:8.2f}"
            f"{max(latencies):8.2f}{requests:20.1f}"
        )
    base = rows["kubespawner"][1]
    print(f"batch Job spawn: {rows['batch'][1] - base:+.1f} API requests beside KubeSpawner's pod")


if __name__ == "__main__":
    main()
