"""BatchKubeSpawner: KubeSpawner with batchhub's profiles, GPU line, and batch runs as Jobs.

Interactive servers are KubeSpawner's pods, with the profile's CPU, memory, nvidia.com/gpu
limits, node selector and tolerations. A batch server (`batch-<job id>`) is a batch/v1 Job whose
pod template is KubeSpawner's own pod; the spawner finds the Job's pod by its job-name label and
from then on KubeSpawner's pod handling (poll, URL, events) applies to it. Manifests are shaped
in spawner.manifests (plain functions).
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes_asyncio.client import V1DeleteOptions
from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from kubespawner.clients import shared_client
from tornado import web
from traitlets import Dict, Integer, List, Unicode

from .manifests import (
    FILES_VOLUME,
    ExclusivePool,
    GpuNodes,
    batch_job,
    check_pod,
    dataset_volumes,
    exclusive_placement,
    gpu_scheduling,
    lab_volumes,
    to_manifest,
    user_ids,
)
from .mixin import BatchSpawnerMixin, config_path_first
from .mounts import LabVolume, readable_datasets
from .profiles import Profile, ProfileError

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


class BatchKubeSpawner(BatchSpawnerMixin, KubeSpawner):
    """KubeSpawner for batchhub: profiles with GPUs, the GPU line, Jobs for batch runs."""

    gpu_image = Unicode("", config=True, help="Image of GPU servers (empty: the CPU image).")
    gpu_product_label = Unicode(
        "nvidia.com/gpu.product", config=True, help="Node label naming a node's GPU product."
    )
    gpu_products = Dict(
        config=True, help="GPU type -> value of gpu_product_label (a100: NVIDIA-A100-SXM4-80GB)."
    )
    gpu_taint_key = Unicode(
        "nvidia.com/gpu", config=True, help="Taint key on GPU nodes that GPU pods tolerate."
    )
    datasets_claim = Unicode(
        "",
        config=True,
        help="""The file store's ReadWriteMany claim; each dataset a user may read is mounted
        from it read-only at /data/<name> (empty: no datasets in servers).""",
    )
    files_dir = Unicode(
        "", config=True, help="Where the hub pod mounts the file store (its dataset index)."
    )
    lab_volumes = List(
        Dict(),
        config=True,
        help="Lab storage (data.lab_volumes): name, groups, mount_path, claim, read_only.",
    )
    user_ids = Dict(
        config=True,
        help="UID and GID of each hub user's pods: {user: {uid: 1201, gid: 1200}}.",
    )
    group_ids = Dict(
        config=True, help="GID of hub groups, added as supplemental groups of members' pods."
    )
    uid_claim = Unicode(
        "", config=True, help="Login claim (auth state) with the UID when user_ids has none."
    )
    gid_claim = Unicode("", config=True, help="Login claim (auth state) with the GID.")
    job_ttl_seconds = Integer(
        3600, config=True, help="ttlSecondsAfterFinished of batch Jobs (the cluster cleans up)."
    )
    exclusive_pool_selector = Dict(
        {"batchhub.io/pool": "exclusive"},
        config=True,
        help="""Node labels of the pool where runs of exclusive profiles get a node each
        (each such node tainted with exclusive_taint_key).""",
    )
    exclusive_taint_key = Unicode(
        "batchhub.io/exclusive",
        config=True,
        help="Taint key (NoSchedule) on the exclusive pool's nodes; exclusive pods tolerate it.",
    )
    batch_server_config_dir = Unicode(
        "/opt/conda/etc/batchhub/batch-server",
        config=True,
        help="""Jupyter config folder in the image that a batch server reads first
        (JUPYTER_CONFIG_PATH): batchhub installs it at <prefix>/etc/batchhub/batch-server. It
        turns off the server extensions a run never uses (jupyter-scheduler, Jupytext, the
        Batch panel), whose start would be on every run's clock. Empty: not set.""",
    )
    job_name = Unicode("", help="The batch Job of this server (state).")

    def get_env(self) -> dict[str, str]:
        """A batch server reads its own extension switches first."""
        env = super().get_env()
        if self.is_batch and self.batch_server_config_dir:
            # The pod's separator, whatever the hub runs on.
            env["JUPYTER_CONFIG_PATH"] = config_path_first(self.batch_server_config_dir, env, ":")
        return env

    # --- profiles ----------------------------------------------------------------------
    def apply_profile(self, profile: Profile) -> None:
        """CPU, memory, GPUs, node placement and image from the profile."""
        super().apply_profile(profile)
        nodes = GpuNodes(self.gpu_product_label, dict(self.gpu_products), self.gpu_taint_key)
        placement = gpu_scheduling(profile, nodes)
        self.extra_resource_limits = placement["extra_resource_limits"]
        self.node_selector = placement["node_selector"]
        self.tolerations = placement["tolerations"]
        pool = ExclusivePool(dict(self.exclusive_pool_selector), self.exclusive_taint_key)
        any_exclusive = any(p.exclusive for p in self.profile_models)
        alone = exclusive_placement(profile, pool, any_exclusive)
        self.node_selector = {**self.node_selector, **alone["node_selector"]}
        self.tolerations = [*self.tolerations, *alone["tolerations"]]
        self.extra_labels = {**self.extra_labels, **alone["labels"]}
        # A spawner starts its server again with the same object: add each term once.
        terms = list(self.pod_anti_affinity_required)
        terms += [t for t in alone["anti_affinity"] if t not in terms]
        self.pod_anti_affinity_required = terms
        image = profile.kubernetes.get("image") or (self.gpu_image if profile.gpus else "")
        if image:
            self.image = image

    async def prepare_storage(self) -> None:
        """Datasets this user may read, lab volumes of their groups, their UID and GID."""
        groups = self.user_group_names()
        claims: dict[str, Any] = {}
        if self.uid_claim or self.gid_claim:
            auth_state = await self.user.get_auth_state() or {}
            claims = auth_state.get("oauth_user") or {}
        try:
            ids = user_ids(
                self.user.name,
                groups,
                self.user_ids,
                self.group_ids,
                claims,
                self.uid_claim,
                self.gid_claim,
            )
        except ProfileError as e:
            raise web.HTTPError(400, str(e)) from None
        if ids is not None:
            self.uid, self.gid, self.fs_gid = ids.uid, ids.gid, ids.gid
            self.supplemental_gids = list(ids.supplemental)
        datasets = []
        if self.files_dir:
            for found in readable_datasets(self.files_dir, self.user.name, groups):
                folder = found.source[len(self.files_dir.rstrip("/")) + 1 :]
                datasets.append((found.name, folder))
        data_volumes, data_mounts = dataset_volumes(self.datasets_claim, datasets)
        labs = [LabVolume.from_dict(v) for v in self.lab_volumes]
        mine = [
            {"name": v.name, "claim": v.claim, "mount_path": v.mount_path, "read_only": v.read_only}
            for v in labs
            if v.claim and v.for_groups(groups)
        ]
        extra_volumes, extra_mounts = lab_volumes(mine)
        ours = {FILES_VOLUME, *(f"lab-{v.name}" for v in labs)}
        self.volumes = [v for v in self.volumes if v.get("name") not in ours] + (
            data_volumes + extra_volumes
        )
        self.volume_mounts = [m for m in self.volume_mounts if m.get("name") not in ours] + (
            data_mounts + extra_mounts
        )

    async def load_user_options(self) -> None:
        """Profiles are batchhub's (applied when user_options were validated), not
        KubeSpawner's profile_list, which reads the same `profile` key differently."""

    @property
    def is_batch(self) -> bool:
        """True for a `batch-<job id>` server started by the batch service."""
        request = self.server_request
        return bool(request is not None and request.is_batch)

    async def get_pod_manifest(self) -> Any:
        """KubeSpawner's pod, checked before it reaches the API."""
        pod = await super().get_pod_manifest()
        manifest = to_manifest(pod)
        try:
            check_pod(
                manifest,
                self.namespace,
                self.user.name,
                frozenset({self.pvc_name}),
                files_claim=self.datasets_claim,
            )
        except ProfileError as e:
            raise web.HTTPError(400, str(e)) from None
        return pod

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> Any:
        """Interactive GPU servers wait their turn first; batch servers become Jobs."""
        await self.prepare_storage()
        await self.take_turn()
        try:
            return await super().start()
        except BaseException:
            await self.leave_turn()
            raise

    async def _start(self) -> Any:
        if not self.is_batch:
            return await super()._start()
        await self.load_user_options()
        await self._start_watching_pods()
        if self.events_enabled:
            await self._start_watching_events()
        pod = to_manifest(await self.get_pod_manifest())
        request = self.server_request
        assert request is not None
        self.job_name = pod["metadata"]["name"]
        job = batch_job(
            pod, self.job_name, request.time_limit, request.live_window, self.job_ttl_seconds
        )
        try:
            await shared_client("BatchV1Api").create_namespaced_job(self.namespace, job)
        except ApiException as e:
            if e.status != 409:
                raise
            self.log.info("Job %s exists already; adopting it", self.job_name)
        pod_name = await self._wait_for_job_pod()
        self.pod_name = pod_name
        ref_key = f"{self.namespace}/{pod_name}"
        deadline = asyncio.get_running_loop().time() + self.start_timeout
        while True:
            found = self.pod_reflector.pods.get(ref_key)
            if found is not None and self.is_pod_running(found):
                return self._get_pod_url(found)
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"pod {ref_key} of Job {self.job_name} is not running")
            await asyncio.sleep(0.5)

    async def _wait_for_job_pod(self) -> str:
        """The name of the Job's pod, found by its job-name label in the pod reflector."""
        deadline = asyncio.get_running_loop().time() + self.start_timeout
        while asyncio.get_running_loop().time() < deadline:
            for pod in self.pod_reflector.pods.values():
                labels = pod["metadata"].get("labels") or {}
                if (
                    pod["metadata"].get("namespace") == self.namespace
                    and labels.get(JOB_NAME_LABEL, labels.get("job-name")) == self.job_name
                ):
                    return pod["metadata"]["name"]
            await asyncio.sleep(0.3)
        raise TimeoutError(f"Job {self.job_name} has no pod after {self.start_timeout}s")

    async def stop(self, now: bool = False) -> None:
        """Delete the Job with its pods (batch), or the pod; give the GPU turn back."""
        if self.job_name:
            try:
                await shared_client("BatchV1Api").delete_namespaced_job(
                    self.job_name,
                    self.namespace,
                    body=V1DeleteOptions(propagation_policy="Background"),
                )
            except ApiException as e:
                if e.status != 404:
                    raise
        try:
            await super().stop(now)
        finally:
            await self.leave_turn()
            self.job_name = ""

    def get_state(self) -> dict[str, Any]:
        """KubeSpawner's state plus the Job and the profile request."""
        state = super().get_state()
        if self.job_name:
            state["job_name"] = self.job_name
        state.update(self.profile_state())
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore after a hub restart: the pod, the Job, the request."""
        super().load_state(state)
        self.job_name = state.get("job_name", "")
        self.restore_profile_state(state)
