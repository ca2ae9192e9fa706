"""Exclusive runs on the real control plane with KWOK nodes: a node of the pool to oneself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from tests.k8s.controlplane import ControlPlane
from tests.k8s.test_kube_spawner import NAMESPACE, hub_account, make_spawner, started

pytestmark = pytest.mark.k8s
__all__ = ["hub_account"]  # the module fixture, shared
POOL = {"batchhub.io/pool": "exclusive"}
TAINT = "batchhub.io/exclusive"
POOL_NODES = ["pool-0", "pool-1"]
PROFILES = [
    {"name": "cpu", "cpu_limit": 1, "mem_limit": "1G"},
    {"name": "perf", "exclusive": True, "cpu_limit": 1, "mem_limit": "1G"},
    # A server that may use the pool's nodes, but not beside an exclusive run.
    {
        "name": "pooled",
        "cpu_limit": 1,
        "kubernetes": {
            "node_selector": POOL,
            "tolerations": [{"key": TAINT, "operator": "Exists", "effect": "NoSchedule"}],
        },
    },
]


@pytest.fixture(scope="module")
def pool(k8s_cluster: ControlPlane) -> Iterator[list[str]]:
    """Two KWOK nodes labelled for the exclusive pool and tainted for it."""
    for name in POOL_NODES:
        capacity = {"cpu": "32", "memory": "256Gi", "pods": "110"}
        k8s_cluster.post(
            "/api/v1/nodes",
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "labels": {"type": "kwok", "kubernetes.io/hostname": name, **POOL},
                    "annotations": {
                        "kwok.x-k8s.io/node": "fake",
                        "node.alpha.kubernetes.io/ttl": "0",
                    },
                },
                "spec": {"taints": [{"key": TAINT, "value": "true", "effect": "NoSchedule"}]},
                "status": {"capacity": capacity, "allocatable": capacity},
            },
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        nodes = {n["metadata"]["name"]: n for n in k8s_cluster.get("/api/v1/nodes")["items"]}
        ready = [
            name
            for name in POOL_NODES
            if name in nodes
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in nodes[name].get("status", {}).get("conditions", [])
            )
        ]
        if ready == POOL_NODES:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("the pool's KWOK nodes never became Ready")
    yield POOL_NODES
    for name in POOL_NODES:
        k8s_cluster.delete(f"/api/v1/nodes/{name}")


def spawner(user: str, server: str, options: dict, **traits):  # type: ignore[no-untyped-def]
    return make_spawner(user, server, options, profiles=PROFILES, **traits)


def batch_options(job_id: str) -> dict:
    return {"profile": "perf", "batch": {"job_id": job_id, "time_limit": 600, "live_window": 60}}


def node_of(cluster: ControlPlane, pod: str) -> str | None:
    return cluster.get(f"/api/v1/namespaces/{NAMESPACE}/pods/{pod}")["spec"].get("nodeName")


async def pending_pod(cluster: ControlPlane, user: str, timeout: float = 30) -> dict:
    """The user's pod once the scheduler has said it cannot place it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = cluster.get(
            f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector=hub.jupyter.org/username={user}"
        )["items"]
        for pod in pods:
            conditions = pod.get("status", {}).get("conditions", [])
            if any(c.get("reason") == "Unschedulable" for c in conditions):
                return pod
        await asyncio.sleep(0.5)  # the spawner's start goes on meanwhile
    raise AssertionError(f"no unschedulable pod of {user}")


async def test_two_exclusive_runs_never_share_a_node_and_no_pod_lands_beside_one(
    k8s_cluster: ControlPlane, hub_account: None, pool: list[str]
) -> None:
    first = spawner("xa", "batch-xaaaaaaaa1", batch_options("xaaaaaaaa1"))
    second = spawner("xb", "batch-xbbbbbbbb2", batch_options("xbbbbbbbb2"))
    await started(first)
    await started(second)
    nodes = {node_of(k8s_cluster, first.pod_name), node_of(k8s_cluster, second.pod_name)}
    assert nodes == set(pool), nodes  # one node each, both of the pool

    # A third exclusive run finds no empty node: it waits, it does not share.
    third = spawner("xc", "batch-xcccccccc3", batch_options("xcccccccc3"), start_timeout=25)
    task = asyncio.ensure_future(third.start())
    pending = await pending_pod(k8s_cluster, "xc")
    assert "anti-affinity" in str(pending["status"]["conditions"]), pending["status"]
    with pytest.raises(Exception):  # noqa: B017 - KubeSpawner raises its timeout
        await asyncio.wait_for(task, 60)
    await third.stop(now=True)

    # A server that may use the pool does not land beside an exclusive run either...
    server = spawner("xd", "s", {"profile": "pooled"}, start_timeout=25)
    task = asyncio.ensure_future(server.start())
    await pending_pod(k8s_cluster, "xd")
    with pytest.raises(Exception):  # noqa: B017
        await asyncio.wait_for(task, 60)
    await server.stop(now=True)
    # ...and once a node is free it goes there, not to the node still running one.
    freed = node_of(k8s_cluster, second.pod_name)
    await second.stop(now=True)
    server = spawner("xd", "s", {"profile": "pooled"})
    await started(server)
    assert node_of(k8s_cluster, server.pod_name) == freed
    await server.stop(now=True)
    await first.stop(now=True)
