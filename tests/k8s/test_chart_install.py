"""The chart installed into the real control plane: its Deployment gets a ready pod."""

from __future__ import annotations

import time

import helm_python
import pytest

from tests.chart import CHART
from tests.k8s.controlplane import ControlPlane

pytestmark = pytest.mark.k8s


def test_the_chart_installs_and_the_hub_deployment_becomes_ready(
    k8s_cluster: ControlPlane,
) -> None:
    values = {"storage": {"kind": "emptyDir"}}
    with helm_python.Config(
        kubeconfig_path=str(k8s_cluster.admin_kubeconfig), namespace="batchhub"
    ) as config:
        release = config.install(CHART, "demo", values=values, create_namespace=True)
    assert release["status"] == "deployed"
    path = "/apis/apps/v1/namespaces/batchhub/deployments/demo-batchhub-hub"
    deadline = time.monotonic() + 90
    status: dict = {}
    while time.monotonic() < deadline:
        status = k8s_cluster.get(path).get("status", {})
        if status.get("readyReplicas") == 1:
            break
        time.sleep(0.5)
    assert status.get("readyReplicas") == 1, status
    role = k8s_cluster.get("/apis/rbac.authorization.k8s.io/v1/namespaces/batchhub/roles")
    assert [r["metadata"]["name"] for r in role["items"]] == ["demo-batchhub-hub"]
