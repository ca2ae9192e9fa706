"""Kubernetes objects for batchhub's servers, shaped by plain functions with no I/O.

BatchKubeSpawner hands these to KubeSpawner (pod settings) or to the API (a batch/v1 Job whose
pod template is KubeSpawner's own pod, a workspace claim). Everything a profile or a user can
influence is checked here first: nothing privileged, no host paths or host network, no other
namespace, no other user's volume.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .profiles import Profile, ProfileError

GPU_RESOURCE = "nvidia.com/gpu"
ALLOWED_PROFILE_KEYS = frozenset({"image", "node_selector", "tolerations"})
FORBIDDEN_SELECTOR_PREFIXES = ("node-role.kubernetes.io/", "kubernetes.io/hostname")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class GpuNodes:
    """How GPU nodes are told apart: a product label, its value per GPU type, a taint."""

    product_label: str = "nvidia.com/gpu.product"
    products: Mapping[str, str] | None = None
    taint_key: str = GPU_RESOURCE


def to_manifest(obj: Any) -> Any:
    """A kubernetes client model as the API's JSON (camelCase keys, no nulls)."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [to_manifest(item) for item in obj]
    if isinstance(obj, dict):
        return {key: to_manifest(value) for key, value in obj.items()}
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return {
        obj.attribute_map[name]: to_manifest(getattr(obj, name))
        for name in obj.openapi_types
        if getattr(obj, name) is not None
    }


def check_profile_kubernetes(profile: Profile) -> None:
    """Refuse profile overrides that would escape a user's pod."""
    extra = sorted(set(profile.kubernetes) - ALLOWED_PROFILE_KEYS)
    if extra:
        raise ProfileError(
            f"profile {profile.name!r}: kubernetes keys {', '.join(extra)} are not allowed "
            f"(allowed: {', '.join(sorted(ALLOWED_PROFILE_KEYS))}); privileged pods, host "
            "paths, host network, other namespaces and other volumes are never set by profiles"
        )
    for key in profile.kubernetes.get("node_selector") or {}:
        if key.startswith(FORBIDDEN_SELECTOR_PREFIXES):
            raise ProfileError(f"profile {profile.name!r}: node selector {key!r} is not allowed")
    for toleration in profile.kubernetes.get("tolerations") or []:
        if str(toleration.get("key", "")).startswith("node-role.kubernetes.io/"):
            raise ProfileError(
                f"profile {profile.name!r}: tolerating {toleration.get('key')!r} is not allowed"
            )


def gpu_scheduling(profile: Profile, nodes: GpuNodes) -> dict[str, Any]:
    """Limits, node selector and tolerations that put a GPU profile on the right nodes."""
    check_profile_kubernetes(profile)
    selector = dict(profile.kubernetes.get("node_selector") or {})
    tolerations = [dict(t) for t in profile.kubernetes.get("tolerations") or []]
    limits: dict[str, str] = {}
    if profile.gpus:
        limits[GPU_RESOURCE] = str(profile.gpus)
        product = (nodes.products or {}).get(profile.gpu_type or "")
        if profile.gpu_type and product:
            selector.setdefault(nodes.product_label, product)
        elif profile.gpu_type:
            raise ProfileError(
                f"profile {profile.name!r} asks for GPU type {profile.gpu_type!r}, which "
                "spawner.kubernetes.gpu_products does not map to a node label"
            )
        tolerations.append({"key": nodes.taint_key, "operator": "Exists", "effect": "NoSchedule"})
    return {"extra_resource_limits": limits, "node_selector": selector, "tolerations": tolerations}


EXCLUSIVE_LABEL = "batchhub.io/exclusive"
HOSTNAME = "kubernetes.io/hostname"
# Every server pod KubeSpawner makes carries this label (batch runs and interactive servers).
SERVER_PODS = {
    "matchExpressions": [
        {"key": "app.kubernetes.io/component", "operator": "In", "values": ["singleuser-server"]}
    ]
}


@dataclass(frozen=True)
class ExclusivePool:
    """The labelled, tainted nodes where exclusive runs get a node each."""

    node_selector: Mapping[str, str]
    taint_key: str = "batchhub.io/exclusive"


def exclusive_placement(
    profile: Profile, pool: ExclusivePool, any_exclusive: bool
) -> dict[str, Any]:
    """Where an exclusive run's pod may go, and how other server pods keep off its node.

    An exclusive pod: a node of the pool (its labels), tolerating the pool's taint, with a
    required anti-affinity against every server pod on the same node (hostname topology), so
    it lands only on a node no server pod is on, and (the scheduler honours an existing pod's
    required anti-affinity for pods that come later) none lands beside it. Other server pods
    also say so themselves: a required anti-affinity against exclusive pods. The taint keeps
    pods that are not batchhub's off the pool. Chosen over requesting each node's allocatable
    CPUs: that needs every node's size in the profile and still lets small pods squeeze in.
    """
    if profile.exclusive:
        return {
            "node_selector": dict(pool.node_selector),
            "tolerations": [{"key": pool.taint_key, "operator": "Exists", "effect": "NoSchedule"}],
            "labels": {EXCLUSIVE_LABEL: "true"},
            "anti_affinity": [{"labelSelector": SERVER_PODS, "topologyKey": HOSTNAME}],
        }
    if not any_exclusive:
        return {"node_selector": {}, "tolerations": [], "labels": {}, "anti_affinity": []}
    exclusive = {"matchLabels": {EXCLUSIVE_LABEL: "true"}}
    return {
        "node_selector": {},
        "tolerations": [],
        "labels": {},
        "anti_affinity": [{"labelSelector": exclusive, "topologyKey": HOSTNAME}],
    }


def workspace_claim_name(user: str) -> str:
    """The name of a user's workspace PersistentVolumeClaim (DNS-safe)."""
    safe = re.sub(r"[^a-z0-9-]", "-", user.lower()).strip("-")[:40] or "user"
    digest = format(abs(hash_text(user)) % 16**6, "06x")
    return f"workspace-{safe}-{digest}"


def hash_text(text: str) -> int:
    """A stable hash (Python's hash() changes between runs)."""
    value = 0
    for ch in text.encode():
        value = (value * 131 + ch) % (2**61 - 1)
    return value


def workspace_claim(
    user: str, namespace: str, size: str, storage_class: str | None, labels: Mapping[str, str]
) -> dict[str, Any]:
    """A user's own workspace volume claim."""
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    }
    if storage_class:
        spec["storageClassName"] = storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": workspace_claim_name(user),
            "namespace": namespace,
            "labels": dict(labels),
        },
        "spec": spec,
    }


def user_volumes(user: str) -> tuple[list[dict], list[dict]]:
    """The user's workspace at /home/jovyan."""
    volumes = [
        {"name": "workspace", "persistentVolumeClaim": {"claimName": workspace_claim_name(user)}}
    ]
    mounts = [{"name": "workspace", "mountPath": "/home/jovyan"}]
    return volumes, mounts


FILES_VOLUME = "batchhub-files"


def dataset_volumes(
    files_claim: str, datasets: list[tuple[str, str]]
) -> tuple[list[dict], list[dict]]:
    """Each readable dataset (name, folder in the file store) read-only at /data/<name>, from
    the file store's ReadWriteMany claim, mounted read-only and only that folder (subPath)."""
    if not files_claim or not datasets:
        return [], []
    volumes = [
        {
            "name": FILES_VOLUME,
            "persistentVolumeClaim": {"claimName": files_claim, "readOnly": True},
        }
    ]
    mounts = [
        {"name": FILES_VOLUME, "mountPath": f"/data/{name}", "subPath": folder, "readOnly": True}
        for name, folder in datasets
    ]
    return volumes, mounts


def lab_volumes(labs: list[Mapping[str, Any]]) -> tuple[list[dict], list[dict]]:
    """Lab storage claims at their mount paths (dicts with name, claim, mount_path, read_only)."""
    volumes, mounts = [], []
    for lab in labs:
        name = f"lab-{lab['name']}"
        claim = {"claimName": lab["claim"]}
        if lab.get("read_only"):
            claim["readOnly"] = True
        volumes.append({"name": name, "persistentVolumeClaim": claim})
        mount = {"name": name, "mountPath": lab["mount_path"]}
        if lab.get("read_only"):
            mount["readOnly"] = True
        mounts.append(mount)
    return volumes, mounts


@dataclass(frozen=True)
class UserIds:
    """The UID, GID and supplemental groups a user's pods run with."""

    uid: int
    gid: int
    supplemental: tuple[int, ...] = ()


def _id(value: Any, what: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**31:
        raise ProfileError(f"{what} must be a whole number from 1 (never root), not {value!r}")
    return value


def user_ids(
    user: str,
    groups: list[str],
    mapping: Mapping[str, Mapping[str, Any]],
    group_ids: Mapping[str, Any],
    claims: Mapping[str, Any] | None = None,
    uid_claim: str = "",
    gid_claim: str = "",
) -> UserIds | None:
    """From the values file's mapping, else the login's claims; None when neither names one."""
    entry = mapping.get(user) or {}
    claims = claims or {}
    raw_uid = entry["uid"] if "uid" in entry else (claims.get(uid_claim) if uid_claim else None)
    if raw_uid is None:
        return None
    uid = _id(raw_uid, f"the UID of {user!r}")
    raw_gid = entry["gid"] if "gid" in entry else (claims.get(gid_claim) if gid_claim else None)
    raw_gid = uid if raw_gid is None else raw_gid
    gid = _id(raw_gid, f"the GID of {user!r}")
    extra = tuple(
        sorted({_id(group_ids[g], f"the GID of group {g!r}") for g in groups if g in group_ids})
    )
    return UserIds(uid, gid, extra)


def check_pod(
    pod: Mapping[str, Any],
    namespace: str,
    user: str,
    own_claims: frozenset[str] = frozenset(),
    files_claim: str = "",
) -> None:
    """Last line of defence before the API: nothing privileged, no host access, own volumes,
    the file store only read-only and only its dataset folders."""
    metadata = pod.get("metadata") or {}
    if metadata.get("namespace") not in (None, namespace):
        raise ProfileError(f"a server may only be created in namespace {namespace!r}")
    spec = pod.get("spec") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            raise ProfileError(f"{flag} is not allowed for a user's server")
    own_claim = workspace_claim_name(user)
    for volume in spec.get("volumes") or []:
        if "hostPath" in volume:
            raise ProfileError("hostPath volumes are not allowed for a user's server")
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim and claim.startswith("workspace-") and claim not in {own_claim, *own_claims}:
            raise ProfileError("a server may only mount its own user's workspace")
        if files_claim and claim == files_claim:
            if not volume["persistentVolumeClaim"].get("readOnly"):
                raise ProfileError("the file store may only be mounted read-only")
            for container in spec.get("containers") or []:
                for mount in container.get("volumeMounts") or []:
                    if mount.get("name") == volume.get("name") and (
                        not mount.get("readOnly")
                        or not str(mount.get("subPath", "")).startswith("datasets/")
                    ):
                        raise ProfileError("only dataset folders of the file store, read-only")
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        context = container.get("securityContext") or {}
        if context.get("privileged") or context.get("allowPrivilegeEscalation"):
            raise ProfileError("privileged containers are not allowed for a user's server")


def batch_job(
    pod: Mapping[str, Any],
    name: str,
    time_limit: int,
    live_window: int,
    ttl_seconds: int,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A batch/v1 Job whose pod template is the given (KubeSpawner) pod.

    The cluster then records the outcome and enforces the deadline (time limit plus the live
    window); a pod lost to a disruption (eviction, preemption, node drain) is retried, any
    other failure fails the Job at once.
    """
    template = copy.deepcopy(dict(pod))
    metadata = template.pop("metadata", {}) or {}
    template.pop("apiVersion", None)
    template.pop("kind", None)
    template.pop("status", None)
    spec = template.get("spec") or {}
    spec["restartPolicy"] = "Never"
    pod_labels = dict(metadata.get("labels") or {})
    job_labels = {**pod_labels, **(labels or {})}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": metadata.get("namespace"),
            "labels": job_labels,
            "annotations": dict(metadata.get("annotations") or {}),
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": int(time_limit) + int(live_window),
            "ttlSecondsAfterFinished": int(ttl_seconds),
            "podFailurePolicy": {
                "rules": [
                    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
                    {
                        "action": "FailJob",
                        "onExitCodes": {"operator": "NotIn", "values": [0]},
                    },
                ]
            },
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": dict(metadata.get("annotations") or {}),
                },
                "spec": spec,
            },
        },
    }
