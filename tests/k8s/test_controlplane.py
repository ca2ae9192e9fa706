"""What the Kubernetes tests rely on: scheduling by GPU, Jobs completing, RBAC enforced."""

from __future__ import annotations

import time

import pytest
import requests
import yaml

from tests.k8s.controlplane import COMPLETE_ANNOTATION, GPU_PRODUCTS, ControlPlane

pytestmark = pytest.mark.k8s


def wait_for(check, timeout: float = 60):  # type: ignore[no-untyped-def]
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
            "nodeSelector": {"nvidia.com/gpu.product": GPU_PRODUCTS[gpu_type]},
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


def test_a_gpu_pod_runs_on_a_node_of_its_type(k8s_cluster: ControlPlane) -> None:
    k8s_cluster.post(
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "smoke"}},
    )
    k8s_cluster.post("/api/v1/namespaces/smoke/pods", gpu_pod("one", 1, "a100"))
    pod = wait_for(
        lambda: (
            (p := k8s_cluster.get("/api/v1/namespaces/smoke/pods/one"))["status"].get("phase")
            == "Running"
            and p
        )
    )
    assert pod["spec"]["nodeName"].startswith("a100-")


def test_a_pod_asking_too_many_gpus_stays_pending(k8s_cluster: ControlPlane) -> None:
    k8s_cluster.post("/api/v1/namespaces/smoke/pods", gpu_pod("huge", 8, "h100"))
    events = wait_for(
        lambda: [
            e
            for e in k8s_cluster.get("/api/v1/namespaces/smoke/events")["items"]
            if e["involvedObject"]["name"] == "huge" and e["reason"] == "FailedScheduling"
        ]
    )
    assert "nvidia.com/gpu" in events[0]["message"]
    assert k8s_cluster.get("/api/v1/namespaces/smoke/pods/huge")["status"]["phase"] == "Pending"


def test_a_job_completes_when_its_pod_is_marked_done(k8s_cluster: ControlPlane) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "done"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {COMPLETE_ANNOTATION: "succeeded"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox"}],
                },
            },
        },
    }
    k8s_cluster.post("/apis/batch/v1/namespaces/smoke/jobs", job)
    wait_for(
        lambda: (
            k8s_cluster.get("/apis/batch/v1/namespaces/smoke/jobs/done")["status"].get("succeeded")
            == 1
        )
    )


def test_rbac_confines_a_service_account_to_its_namespace(k8s_cluster: ControlPlane) -> None:
    config_path = k8s_cluster.service_account(
        "team-a", "reader", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]
    )
    token = yaml.safe_load(config_path.read_text())["users"][0]["user"]["token"]
    headers = {"Authorization": f"Bearer {token}"}
    verify = str(k8s_cluster.pki.ca_path)  # type: ignore[union-attr]
    own = requests.get(
        f"{k8s_cluster.server}/api/v1/namespaces/team-a/pods",
        headers=headers,
        verify=verify,
        timeout=10,
    )
    other = requests.get(
        f"{k8s_cluster.server}/api/v1/namespaces/smoke/pods",
        headers=headers,
        verify=verify,
        timeout=10,
    )
    assert own.status_code == 200 and other.status_code == 403
