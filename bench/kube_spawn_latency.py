"""Spawn latency on the test control plane: concurrent spawns, and API requests per spawn.

Side by side in one run: KubeSpawner's own pod spawn (the baseline), BatchKubeSpawner's
interactive spawn (a pod with a profile), and its batch spawn (a Job whose pod it follows).
A turn starts --spawns (default 20) servers of one kind at once, waits for all, and stops
them; each turn runs the three kinds, the order rotated by one each turn (ABC, BCA, ...), and
each figure is the median of --samples (default 5) turns after a discarded warm-up turn.
Per turn: the median start latency (spawner.start() returning) and the mean of API requests
per spawn, counted at the Kubernetes client (every REST call the spawner makes). For
information: no goal. Needs the test control plane (`make k8s-testenv`). --quick: 5 spawns.

    .venv/bin/python bench/kube_spawn_latency.py [--spawns 20] [--samples 5] [--quick]
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

from bench._table import Figure, arguments, report  # noqa: E402
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


def make(kind: str, n: int, turn: int):  # type: ignore[no-untyped-def]
    """A spawner of `kind`, its names unique to the turn (an earlier turn's may linger)."""
    user = f"{kind}{turn}x{n:02d}"
    uid = turn * 1000 + n
    server = f"batch-b{uid:09d}" if kind == "batch" else "s"
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
        options["batch"] = {"job_id": f"b{uid:09d}", "time_limit": 600, "live_window": 60}
    spawner = BatchKubeSpawner(
        profiles=[{"name": "cpu", "cpu_limit": 1, "mem_limit": "1G"}],
        **as_batch_service(user, server, options),
        **common,
    )
    spawner.user_options = options
    spawner.validate_user_options(options)
    return spawner


async def spawn_all(kind: str, count: int, turn: int) -> tuple[list[float], float]:
    """Start `count` servers at once; latencies and mean API requests per spawn."""
    spawners = [make(kind, n, turn) for n in range(count)]
    latencies: list[float] = []

    async def one(n: int, spawner) -> None:  # type: ignore[no-untyped-def]
        CURRENT.set(f"{kind}-{turn}-{n}")  # type: ignore[name-defined]  # noqa: F821
        t0 = time.perf_counter()
        await spawner.start()
        latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(one(n, s) for n, s in enumerate(spawners)))
    requests = [CALLS[f"{kind}-{turn}-{n}"] for n in range(count)]
    for n, spawner in enumerate(spawners):
        CURRENT.set(f"stop-{kind}-{turn}-{n}")  # type: ignore[name-defined]  # noqa: F821
        await spawner.stop(now=True)
    return latencies, statistics.mean(requests)


KINDS = ("kubespawner", "interactive", "batch")
NAMES = {
    "kubespawner": "KubeSpawner pod",
    "interactive": "BatchKubeSpawner pod",
    "batch": "BatchKubeSpawner Job",
}


def main() -> None:
    """Start a control plane, spawn in turns, report."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--spawns", type=int, default=20, help="--quick: 5")
    arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.spawns = min(args.spawns, 5)
    plane = start_control_plane()
    latency: dict[str, list[float]] = {k: [] for k in KINDS}
    calls: dict[str, list[float]] = {k: [] for k in KINDS}
    try:
        config = plane.service_account(NAMESPACE, "hub", HUB_ROLE_RULES)
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(config)
        count_requests()

        async def everything() -> None:
            # One loop for all: KubeSpawner shares its pod reflector across spawners.
            for turn in range(1 + args.samples):  # turn 0 warms up and is discarded
                shift = turn % len(KINDS)
                for kind in KINDS[shift:] + KINDS[:shift]:
                    took, requests = await spawn_all(kind, args.spawns, turn)
                    if turn:
                        latency[kind].append(statistics.median(took))
                        calls[kind].append(requests)

        asyncio.run(everything())
    finally:
        plane.stop()
        shutil.rmtree(plane.folder, ignore_errors=True)
    n = f"{args.spawns} concurrent"
    figures = []
    for kind in ("interactive", "batch"):
        figures += [
            Figure(
                f"{NAMES[kind]} spawn, {n} (p50)",
                "s",
                latency[kind],
                latency["kubespawner"],
                NAMES["kubespawner"],
            ),
            Figure(
                f"  API requests per {NAMES[kind]} spawn",
                "",
                calls[kind],
                calls["kubespawner"],
                NAMES["kubespawner"],
            ),
        ]
    report(figures)


if __name__ == "__main__":
    main()
