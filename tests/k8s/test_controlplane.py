"""What the Kubernetes tests rely on: the version, fake GPU nodes, scheduling by GPU, Jobs
completing or failing on the test marker, RBAC enforced for ServiceAccount tokens."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
import yaml

from tests.k8s.controlplane import (
    COMPLETE_ANNOTATION,
    FAKE_NODES,
    GPU_PRODUCT_LABEL,
    GPU_PRODUCTS,
    ControlPlane,
    pinned_kubernetes_version,
)

pytestmark = pytest.mark.k8s
NS = "smoke"


@pytest.fixture(scope="module")
def smoke(k8s_cluster: ControlPlane) -> ControlPlane:
    """The control plane with the namespace these tests use."""
    k8s_cluster.create_namespace(NS)
    return k8s_cluster


def wait_for(check: Callable[[], Any], timeout: float = 60) -> Any:
    """The first truthy value of check(), polled until the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise TimeoutError("condition not met")


def gpu_pod(name: str, gpus: int, gpu_type: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {GPU_PRODUCT_LABEL: GPU_PRODUCTS[gpu_type]},
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ],
            "containers": [
                {
                    "name": "c",
                    "image": "busybox",
                    "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                }
            ],
        },
    }


def marked_job(name: str, outcome: str) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {COMPLETE_ANNOTATION: outcome}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox"}],
                },
            },
        },
    }


def job_condition(plane: ControlPlane, name: str) -> str | None:
    """The type of the Job's first true terminal condition (Complete or Failed)."""
    job = plane.get(f"/apis/batch/v1/namespaces/{NS}/jobs/{name}")
    for condition in job["status"].get("conditions", []):
        if condition["type"] in ("Complete", "Failed") and condition["status"] == "True":
            return condition["type"]
    return None


def test_the_apiserver_reports_the_pinned_release(k8s_cluster: ControlPlane) -> None:
    version = k8s_cluster.get("/version")
    pinned = pinned_kubernetes_version()
    assert version["gitVersion"] == pinned
    assert f"v{version['major']}.{version['minor']}" == pinned.rsplit(".", 1)[0]


def test_the_fake_nodes_are_ready_with_their_gpus(k8s_cluster: ControlPlane) -> None:
    nodes = {n["metadata"]["name"]: n for n in k8s_cluster.get("/api/v1/nodes")["items"]}
    assert set(nodes) == {n["name"] for n in FAKE_NODES}
    for fake in FAKE_NODES:
        node = nodes[fake["name"]]
        gpus = node["status"]["allocatable"].get("nvidia.com/gpu", "0")
        assert int(gpus) == fake["gpus"]
        product = node["metadata"]["labels"].get(GPU_PRODUCT_LABEL)
        assert product == (GPU_PRODUCTS[fake["gpu_type"]] if fake["gpu_type"] else None)


def test_a_gpu_pod_runs_on_a_node_of_its_type(smoke: ControlPlane) -> None:
    smoke.post(f"/api/v1/namespaces/{NS}/pods", gpu_pod("one", 1, "a100"))
    pod = wait_for(
        lambda: (
            (p := smoke.get(f"/api/v1/namespaces/{NS}/pods/one"))["status"].get("phase")
            == "Running"
            and p
        )
    )
    a100_nodes = {n["name"] for n in FAKE_NODES if n["gpu_type"] == "a100"}
    assert pod["spec"]["nodeName"] in a100_nodes


def test_a_pod_asking_too_many_gpus_stays_pending(smoke: ControlPlane) -> None:
    most = max(n["gpus"] for n in FAKE_NODES)
    smoke.post(f"/api/v1/namespaces/{NS}/pods", gpu_pod("huge", most + 1, "h100"))
    events = wait_for(
        lambda: [
            e
            for e in smoke.get(f"/api/v1/namespaces/{NS}/events")["items"]
            if e["involvedObject"]["name"] == "huge" and e["reason"] == "FailedScheduling"
        ]
    )
    assert "nvidia.com/gpu" in events[0]["message"]
    pod = smoke.get(f"/api/v1/namespaces/{NS}/pods/huge")
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")


def test_a_job_completes_when_its_pod_is_marked_succeeded(smoke: ControlPlane) -> None:
    smoke.post(f"/apis/batch/v1/namespaces/{NS}/jobs", marked_job("done", "succeeded"))
    assert wait_for(lambda: job_condition(smoke, "done")) == "Complete"


def test_a_job_fails_when_its_pod_is_marked_failed(smoke: ControlPlane) -> None:
    smoke.post(f"/apis/batch/v1/namespaces/{NS}/jobs", marked_job("broken", "failed"))
    assert wait_for(lambda: job_condition(smoke, "broken")) == "Failed"
    pods = smoke.get(f"/api/v1/namespaces/{NS}/pods?labelSelector=job-name%3Dbroken")["items"]
    states = [c["state"] for p in pods for c in p["status"]["containerStatuses"]]
    assert [s["terminated"]["exitCode"] for s in states] == [1]


def test_rbac_confines_a_service_account_to_its_role(smoke: ControlPlane) -> None:
    smoke.create_namespace("team-a")
    smoke.create_service_account("team-a", "reader")
    smoke.grant(
        "team-a",
        "reader",
        "pod-reader",
        [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
    )
    token = smoke.mint_token("team-a", "reader")
    config = yaml.safe_load(smoke.token_kubeconfig("team-a-reader", token).read_text())
    assert config["users"][0]["user"] == {"token": token}

    def call(method: str, namespace: str) -> int:
        return requests.request(
            method,
            f"{smoke.server}/api/v1/namespaces/{namespace}/pods",
            headers={"Authorization": f"Bearer {token}"},
            json=gpu_pod("nope", 1, "a100") if method == "POST" else None,
            verify=str(smoke.ca),
            timeout=10,
        ).status_code

    assert call("GET", "team-a") == 200
    assert call("GET", NS) == 403
    assert call("POST", "team-a") == 403
