"""Hub settings for Kubernetes: BatchKubeSpawner from the values file's spawner.kubernetes."""

from __future__ import annotations

import os
from typing import Any

from hub_config.values import get


def configure_kubernetes(c: Any, values: dict[str, Any], profiles: list[dict[str, Any]]) -> str:
    """Configure BatchKubeSpawner; return the batch service URL as servers reach it."""
    kube = get(values, "spawner.kubernetes", {}) or {}
    spawner = c.BatchKubeSpawner
    c.JupyterHub.spawner_class = "spawner.kube.BatchKubeSpawner"
    # The hub and its managed services listen on every interface of the hub pod.
    c.JupyterHub.hub_connect_url = kube.get("hub_connect_url") or (
        f"http://{os.environ.get('BATCHHUB_HUB_SERVICE', 'hub')}:{get(values, 'hub.hub_port')}"
    )
    spawner.profiles = profiles
    spawner.namespace = kube.get("namespace") or os.environ.get("POD_NAMESPACE", "default")
    spawner.image = kube.get("image", "quay.io/jupyter/base-notebook:latest")
    spawner.gpu_image = kube.get("gpu_image", "")
    spawner.image_pull_policy = kube.get("image_pull_policy", "IfNotPresent")
    spawner.service_account = kube.get("service_account")
    spawner.automount_service_account_token = bool(kube.get("service_account"))
    spawner.gpu_product_label = kube.get("gpu_product_label", "nvidia.com/gpu.product")
    spawner.gpu_products = dict(kube.get("gpu_products") or {})
    spawner.gpu_taint_key = kube.get("gpu_taint_key", "nvidia.com/gpu")
    pool = kube.get("exclusive_pool") or {}
    if pool.get("node_selector"):
        spawner.exclusive_pool_selector = dict(pool["node_selector"])
    if pool.get("taint_key"):
        spawner.exclusive_taint_key = pool["taint_key"]
    spawner.datasets_claim = kube.get("datasets_claim") or os.environ.get(
        "BATCHHUB_FILES_CLAIM", ""
    )
    spawner.files_dir = os.environ.get("BATCHHUB_FILES_DIR", "")
    spawner.lab_volumes = get(values, "data.lab_volumes", []) or []
    spawner.user_ids = dict(kube.get("user_ids") or {})
    spawner.group_ids = dict(kube.get("group_ids") or {})
    spawner.uid_claim = kube.get("uid_claim") or ""
    spawner.gid_claim = kube.get("gid_claim") or ""
    spawner.job_ttl_seconds = int(kube.get("job_ttl_seconds", 3600))
    spawner.storage_pvc_ensure = True
    spawner.pvc_name_template = "workspace-{user_server}"
    spawner.storage_capacity = kube.get("workspace_size", "10Gi")
    if kube.get("storage_class"):
        spawner.storage_class = kube["storage_class"]
    spawner.volumes = [{"name": "workspace", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}]
    spawner.volume_mounts = [{"name": "workspace", "mountPath": "/home/jovyan"}]
    spawner.interactive_default_url = get(values, "spawner.default_url")
    service = kube.get("service_connect_url") or (
        f"http://{os.environ.get('BATCHHUB_HUB_SERVICE', 'hub')}:{get(values, 'batch.port')}"
    )
    url = service.rstrip("/") + "/services/batch/"
    spawner.batch_service_url = url
    spawner.gpu_line_url = url + "api/v1/"
    return url
