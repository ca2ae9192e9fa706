"""BatchKubeSpawner on the real control plane, as the hub's ServiceAccount with the chart's Role."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from kubernetes_asyncio.config import kube_config

from spawner.kube import BatchKubeSpawner
from spawner.rbac import HUB_ROLE_RULES
from tests.k8s.controlplane import COMPLETE_ANNOTATION, GPU_PRODUCTS, ControlPlane
from tests.k8s.stand_ins import as_batch_service, hub_side

pytestmark = pytest.mark.k8s
NAMESPACE = "hub"
PROFILES = [
    {"name": "cpu", "cpu_limit": 1, "mem_limit": "1G"},
    {"name": "a100-1", "gpus": 1, "gpu_type": "a100", "mem_limit": "4G"},
    {"name": "h100-4", "gpus": 4, "gpu_type": "h100"},
]


@pytest.fixture(scope="module")
def hub_account(k8s_cluster: ControlPlane) -> Iterator[None]:
    """The hub's own ServiceAccount with the least-privilege Role (not cluster-admin)."""
    config = k8s_cluster.service_account(NAMESPACE, "hub", HUB_ROLE_RULES)
    # KubeSpawner loads the default kubeconfig, whose path the client reads at import time.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(config))
        yield


def make_spawner(user: str, server: str, options: dict, **traits) -> BatchKubeSpawner:  # type: ignore[no-untyped-def]
    spawner = BatchKubeSpawner(
        **hub_side(user, server),
        **as_batch_service(user, server, options),
        namespace=NAMESPACE,
        gpu_products=GPU_PRODUCTS,
        image="quay.io/jupyter/base-notebook:latest",
        **{"start_timeout": 60, "http_timeout": 10, "profiles": PROFILES, **traits},
    )
    spawner.user_options = options
    spawner.validate_user_options(options)
    return spawner


async def started(spawner: BatchKubeSpawner) -> str:
    return await asyncio.wait_for(spawner.start(), 90)


async def test_an_interactive_gpu_server_lands_on_its_gpu_type(
    k8s_cluster: ControlPlane, hub_account: None
) -> None:
    spawner = make_spawner("ana", "g", {"profile": "a100-1"})
    url = await started(spawner)
    assert url.startswith("http://")
    pod = k8s_cluster.get(f"/api/v1/namespaces/{NAMESPACE}/pods/{spawner.pod_name}")
    assert pod["spec"]["nodeName"].startswith("a100-")
    limits = pod["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1" and limits["memory"] == str(4 * 2**30)
    # An interactive server keeps JupyterLab's Jobs and the Batch panel.
    assert "JUPYTER_CONFIG_PATH" not in {e["name"] for e in pod["spec"]["containers"][0]["env"]}
    await spawner.stop(now=True)


async def test_a_batch_server_is_a_job_whose_pod_the_spawner_follows(
    k8s_cluster: ControlPlane, hub_account: None
) -> None:
    options = {
        "profile": "cpu",
        "batch": {"job_id": "k3j9x2m4qp", "time_limit": 600, "live_window": 300},
    }
    spawner = make_spawner("bea", "batch-k3j9x2m4qp", options)
    await started(spawner)
    job = k8s_cluster.get(f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs/{spawner.job_name}")
    assert job["spec"]["activeDeadlineSeconds"] == 900
    # The pod reads the batch server's extension switches (tests/test_images.py checks them).
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["JUPYTER_CONFIG_PATH"] == "/opt/conda/etc/batchhub/batch-server"
    assert env["BATCHHUB_JOB_ID"] == "k3j9x2m4qp"
    assert spawner.pod_name != spawner.job_name and spawner.pod_name.startswith(spawner.job_name)
    assert await spawner.poll() is None
    # A hub restart: a fresh spawner from the saved state finds the same pod.
    revived = make_spawner("bea", "batch-k3j9x2m4qp", options)
    revived.load_state(spawner.get_state())
    assert revived.pod_name == spawner.pod_name and revived.job_name == spawner.job_name
    assert await revived.poll() is None
    # Stop removes the Job and its pods.
    await revived.stop(now=True)
    jobs = k8s_cluster.get(f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs")["items"]
    assert not [
        j
        for j in jobs
        if j["metadata"]["name"] == spawner.job_name and not j["metadata"].get("deletionTimestamp")
    ]


async def test_a_finished_job_pod_is_seen_as_stopped_with_its_status(
    k8s_cluster: ControlPlane, hub_account: None
) -> None:
    options = {
        "profile": "cpu",
        "batch": {"job_id": "f1nished00", "time_limit": 600, "live_window": 300},
    }
    spawner = make_spawner("cid", "batch-f1nished00", options)
    await started(spawner)
    k8s_cluster.patch(
        f"/api/v1/namespaces/{NAMESPACE}/pods/{spawner.pod_name}",
        {"metadata": {"annotations": {COMPLETE_ANNOTATION: "failed"}}},
    )
    for _ in range(100):
        status = await spawner.poll()
        if status is not None:
            break
        await asyncio.sleep(0.3)
    assert status == 1
    await spawner.stop(now=True)


async def test_gpu_exhaustion_leaves_the_pod_pending_and_says_why(
    k8s_cluster: ControlPlane, hub_account: None
) -> None:
    first = make_spawner("dee", "big", {"profile": "h100-4"})
    await started(first)  # takes all four H100s
    second = make_spawner("eve", "big", {"profile": "h100-4"}, start_timeout=8)
    task = asyncio.ensure_future(second.start())
    messages = []

    async def collect() -> None:
        async for event in second.progress():
            messages.append(event.get("message", ""))

    collector = asyncio.ensure_future(collect())
    with pytest.raises(Exception):  # noqa: B017 - KubeSpawner raises its timeout
        await asyncio.wait_for(task, 60)
    collector.cancel()
    assert any("nvidia.com/gpu" in m for m in messages), messages
    await second.stop(now=True)
    await first.stop(now=True)
