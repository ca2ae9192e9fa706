"""Datasets, lab storage and user ids on the real control plane, as the hub's ServiceAccount."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace

import kubernetes_validate
import pytest
from kubernetes_asyncio.config import kube_config

from spawner.kube import BatchKubeSpawner
from spawner.rbac import HUB_ROLE_RULES
from tests.k8s.controlplane import ControlPlane
from tests.k8s.stand_ins import as_batch_service, hub_side

pytestmark = pytest.mark.k8s
# KubeSpawner loads the kubeconfig once per process: every module uses the hub's own identity
# in its namespace, as tests/k8s/test_kube_spawner.py does.
NAMESPACE = "hub"
FILES_CLAIM = "batchhub-files"
LAB_CLAIM = "lab-a-storage"


def volume_pair(cluster: ControlPlane, claim: str) -> None:
    """A ReadWriteMany PersistentVolume pre-bound to its claim (the test cluster has no
    provisioner); the claim binds, so pods using it are scheduled."""
    cluster.post(
        "/api/v1/persistentvolumes",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"{NAMESPACE}-{claim}"},
            "spec": {
                "capacity": {"storage": "10Gi"},
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "",
                "nfs": {"server": "127.0.0.1", "path": f"/{claim}"},
                "claimRef": {"namespace": NAMESPACE, "name": claim},
            },
        },
    )
    cluster.post(
        f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "",
                "volumeName": f"{NAMESPACE}-{claim}",
                "resources": {"requests": {"storage": "10Gi"}},
            },
        },
    )


@pytest.fixture(scope="module")
def storage(k8s_cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hub's ServiceAccount, the file store's claim, a lab claim, and a dataset index."""
    config = k8s_cluster.service_account(NAMESPACE, "hub", HUB_ROLE_RULES)
    for claim in (FILES_CLAIM, LAB_CLAIM):
        volume_pair(k8s_cluster, claim)
    files = tmp_path_factory.mktemp("files")
    index = []
    for dataset_id, name, owner, readers, group in [
        ("d000000001", "cifar", "ana", "owner", None),
        ("d000000002", "labdata", "zed", "group", "lab-a"),
        ("d000000003", "secret", "zed", "owner", None),
    ]:
        (files / "datasets" / dataset_id).mkdir(parents=True)
        index.append(
            {
                "id": dataset_id,
                "name": name,
                "owner": owner,
                "readers": readers,
                "group": group,
                "folder": f"datasets/{dataset_id}",
                "gid": None,
            }
        )
    (files / "datasets.json").write_text(json.dumps({"datasets": index}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(config))
        yield files


def spawner_for(files: Path, user: str, server: str, options: dict) -> BatchKubeSpawner:
    side = hub_side(user, server)
    side["user"].groups = [SimpleNamespace(name="lab-a")]
    spawner = BatchKubeSpawner(
        **side,
        **as_batch_service(user, server, options),
        namespace=NAMESPACE,
        profiles=[{"name": "cpu", "cpu_limit": 1, "mem_limit": "1G"}],
        image="quay.io/jupyter/base-notebook:latest",
        start_timeout=60,
        http_timeout=10,
        datasets_claim=FILES_CLAIM,
        files_dir=str(files),
        lab_volumes=[
            {"name": "lab-a", "groups": ["lab-a"], "mount_path": "/lab/a", "claim": LAB_CLAIM}
        ],
        user_ids={"ana": {"uid": 1201, "gid": 1200}},
        group_ids={"lab-a": 3001},
    )
    spawner.user_options = options
    spawner.validate_user_options(options)
    return spawner


def mounts_of(pod: dict) -> dict[str, dict]:
    return {m["mountPath"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}


@pytest.mark.parametrize("batch", [False, True], ids=["interactive", "batch-job"])
async def test_readable_datasets_and_lab_storage_with_the_users_ids(
    k8s_cluster: ControlPlane, storage: Path, batch: bool
) -> None:
    job_id = "d4t4m0unt1" if batch else None
    server = f"batch-{job_id}" if batch else "lab"
    options = {"profile": "cpu"}
    if batch:
        options["batch"] = {"job_id": job_id, "time_limit": 600, "live_window": 60}
    spawner = spawner_for(storage, "ana", server, options)
    await asyncio.wait_for(spawner.start(), 90)
    try:
        pod = k8s_cluster.get(f"/api/v1/namespaces/{NAMESPACE}/pods/{spawner.pod_name}")
        assert pod["status"]["phase"] == "Running"
        mounts = mounts_of(pod)
        # Her own dataset and her group's, read-only, one folder each; not zed's private one.
        assert mounts["/data/cifar"]["subPath"] == "datasets/d000000001"
        assert mounts["/data/labdata"]["subPath"] == "datasets/d000000002"
        assert all(mounts[p]["readOnly"] for p in ("/data/cifar", "/data/labdata"))
        assert "/data/secret" not in mounts
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes["batchhub-files"]["persistentVolumeClaim"] == {
            "claimName": FILES_CLAIM,
            "readOnly": True,
        }
        assert mounts["/lab/a"]["name"] == "lab-lab-a"
        assert volumes["lab-lab-a"]["persistentVolumeClaim"]["claimName"] == LAB_CLAIM
        # Files written on lab storage belong to the person: her UID, GID, group GID.
        context = pod["spec"]["securityContext"]
        assert context["fsGroup"] == 1200 and context["supplementalGroups"] == [3001]
        container = pod["spec"]["containers"][0]["securityContext"]
        assert container["runAsUser"] == 1201 and container["runAsGroup"] == 1200
        kubernetes_validate.validate(pod, "1.35.0", strict=False)
    finally:
        await spawner.stop(now=True)
