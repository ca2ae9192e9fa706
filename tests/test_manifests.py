"""Every object the Kubernetes spawner generates validates against the official schemas, and
hostile profile settings are refused before any API call."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
from kubespawner.objects import make_pod

from hub_config.values import get, load_values
from spawner.manifests import (
    ExclusivePool,
    GpuNodes,
    UserIds,
    batch_job,
    check_pod,
    check_profile_kubernetes,
    dataset_volumes,
    exclusive_placement,
    gpu_scheduling,
    lab_volumes,
    to_manifest,
    user_ids,
    user_volumes,
    workspace_claim,
)
from spawner.profiles import ProfileError, load_profiles, profile_from_dict

ROOT = Path(__file__).resolve().parent.parent
# The chart supports the newest Kubernetes minors the schemas know, and the test control plane's.
VERSIONS = ["1.35.0", "1.36.0", "1.37.0"]
VALUES = {
    "defaults": ROOT / "hub_config" / "values.yaml",
    "gpu-cluster": ROOT / "hub_config" / "examples" / "gpu-cluster.yaml",
}
NODES = GpuNodes(
    products={"a100": "NVIDIA-A100-SXM4-80GB", "h100": "NVIDIA-H100-80GB-HBM3", "fake": "FAKE"}
)


def objects_for(values_path: Path) -> list[dict]:
    """Pods, batch Jobs and workspace claims the spawner makes for each profile."""
    values = load_values(values_path)
    products = dict(NODES.products or {}, **(get(values, "spawner.kubernetes.gpu_products") or {}))
    nodes = GpuNodes(products=products)
    made = []
    profiles = load_profiles(get(values, "profiles"))
    pool = ExclusivePool({"batchhub.io/pool": "exclusive"})
    for profile in profiles:
        placement = gpu_scheduling(profile, nodes)
        alone = exclusive_placement(profile, pool, any(p.exclusive for p in profiles))
        volumes, mounts = user_volumes("ada")
        data_volumes, data_mounts = dataset_volumes("files", [("cifar", "datasets/d0000000001")])
        labs, lab_mounts = lab_volumes([{"name": "a", "claim": "lab-a", "mount_path": "/lab/a"}])
        volumes, mounts = volumes + data_volumes + labs, mounts + data_mounts + lab_mounts
        pod = make_pod(
            name=f"jupyter-ada-{profile.name}",
            cmd=["jupyterhub-singleuser"],
            port=8888,
            image="quay.io/jupyter/base-notebook:latest",
            image_pull_policy="IfNotPresent",
            node_selector={**placement["node_selector"], **alone["node_selector"]},
            tolerations=placement["tolerations"] + alone["tolerations"],
            pod_anti_affinity_required=alone["anti_affinity"],
            extra_resource_limits=placement["extra_resource_limits"],
            cpu_limit=profile.cpu_limit,
            mem_limit=profile.mem_limit,
            uid=1000,
            gid=100,
            fs_gid=100,
            volumes=volumes,
            volume_mounts=mounts,
            labels={
                "component": "singleuser-server",
                "app.kubernetes.io/component": "singleuser-server",
                "hub.jupyter.org/username": "ada",
                **alone["labels"],
            },
            env={"BATCHHUB_PROFILE": profile.name},
            allow_privilege_escalation=False,
        )
        manifest = to_manifest(pod)
        manifest["metadata"]["namespace"] = "batchhub"
        check_pod(manifest, "batchhub", "ada")
        made.append(manifest)
        made.append(batch_job(manifest, f"batch-{profile.name}", 3600, 600, 3600))
    made.append(workspace_claim("ada", "batchhub", "10Gi", None, {"app": "batchhub"}))
    return made


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("values", list(VALUES))
def test_every_generated_object_validates(values: str, version: str) -> None:
    made = objects_for(VALUES[values])
    assert {m["kind"] for m in made} == {"Pod", "Job", "PersistentVolumeClaim"}
    for manifest in made:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_gpu_profiles_get_limits_placement_and_tolerations() -> None:
    profile = profile_from_dict({"name": "a100-2", "gpus": 2, "gpu_type": "a100"})
    placement = gpu_scheduling(profile, NODES)
    assert placement["extra_resource_limits"] == {"nvidia.com/gpu": "2"}
    assert placement["node_selector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert placement["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_a_batch_job_retries_only_on_disruption_and_holds_its_deadline() -> None:
    pod = {"metadata": {"name": "p", "labels": {"a": "b"}}, "spec": {"containers": [{"name": "c"}]}}
    job = batch_job(pod, "batch-x", 3600, 600, 300)
    spec = job["spec"]
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 4200
    assert spec["ttlSecondsAfterFinished"] == 300
    assert spec["podFailurePolicy"]["rules"][0] == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget"}],
    }
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize(
    ("kubernetes", "message"),
    [
        ({"privileged": True}, "not allowed"),
        ({"host_network": True}, "not allowed"),
        ({"namespace": "kube-system"}, "not allowed"),
        ({"node_selector": {"kubernetes.io/hostname": "node-1"}}, "node selector"),
        ({"tolerations": [{"key": "node-role.kubernetes.io/control-plane"}]}, "tolerating"),
    ],
)
def test_hostile_profile_overrides_are_refused(kubernetes: dict, message: str) -> None:
    profile = profile_from_dict({"name": "evil", "kubernetes": kubernetes})
    with pytest.raises(ProfileError, match=message):
        check_profile_kubernetes(profile)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["spec"].update(hostNetwork=True), "hostNetwork"),
        (
            lambda p: p["spec"]["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
            "hostPath",
        ),
        (
            lambda p: p["spec"]["volumes"].append(
                {"name": "w", "persistentVolumeClaim": {"claimName": "workspace-bob-000001"}}
            ),
            "own user's workspace",
        ),
        (lambda p: p["metadata"].update(namespace="kube-system"), "namespace"),
        (
            lambda p: p["spec"]["containers"][0].update(securityContext={"privileged": True}),
            "privileged",
        ),
    ],
)
def test_a_pod_that_would_escape_is_refused_before_the_api(change, message: str) -> None:  # type: ignore[no-untyped-def]
    pod = objects_for(VALUES["defaults"])[0]
    change(pod)
    with pytest.raises(ProfileError, match=message):
        check_pod(pod, "batchhub", "ada")


def test_user_ids_come_from_the_mapping_or_the_login_claims_and_never_root() -> None:
    mapping = {"ada": {"uid": 1201, "gid": 1200}}
    assert user_ids("ada", ["lab-a", "x"], mapping, {"lab-a": 3001}) == UserIds(1201, 1200, (3001,))
    claims = {"uidNumber": "4001"}
    found = user_ids("bob", [], mapping, {}, claims, uid_claim="uidNumber")
    assert found == UserIds(4001, 4001, ())
    assert user_ids("cid", [], mapping, {}) is None  # no mapping: the image's own user
    for bad in (0, -5, "root", True):
        with pytest.raises(ProfileError, match="never root"):
            user_ids("eve", [], {"eve": {"uid": bad}}, {})


def test_datasets_are_mounted_read_only_one_folder_each() -> None:
    volumes, mounts = dataset_volumes(
        "files", [("cifar", "datasets/d1"), ("imagenet", "datasets/d2")]
    )
    assert volumes == [
        {
            "name": "batchhub-files",
            "persistentVolumeClaim": {"claimName": "files", "readOnly": True},
        }
    ]
    assert [(m["mountPath"], m["subPath"], m["readOnly"]) for m in mounts] == [
        ("/data/cifar", "datasets/d1", True),
        ("/data/imagenet", "datasets/d2", True),
    ]
    assert dataset_volumes("files", []) == ([], [])
    pod = objects_for(VALUES["defaults"])[0]
    check_pod(pod, "batchhub", "ada", files_claim="files")
    pod["spec"]["containers"][0]["volumeMounts"].append(
        {"name": "batchhub-files", "mountPath": "/all", "subPath": "jobs"}
    )
    with pytest.raises(ProfileError, match="read-only"):
        check_pod(pod, "batchhub", "ada", files_claim="files")


def test_an_exclusive_pod_repels_every_server_pod_and_others_repel_it() -> None:
    made = objects_for(VALUES["gpu-cluster"])
    pods = {m["metadata"]["name"]: m for m in made if m["kind"] == "Pod"}
    alone = pods["jupyter-ada-perf"]["spec"]
    assert alone["nodeSelector"] == {"batchhub.io/pool": "exclusive"}
    assert {"key": "batchhub.io/exclusive", "operator": "Exists", "effect": "NoSchedule"} in (
        alone["tolerations"]
    )
    (term,) = alone["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchExpressions"][0]["values"] == ["singleuser-server"]
    other = pods["jupyter-ada-cpu"]["spec"]["affinity"]["podAntiAffinity"]
    (term,) = other["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["labelSelector"] == {"matchLabels": {"batchhub.io/exclusive": "true"}}
    # Without exclusive profiles nothing changes.
    defaults = [m for m in objects_for(VALUES["defaults"]) if m["kind"] == "Pod"]
    assert all("affinity" not in m["spec"] for m in defaults)
