"""A real Kubernetes control plane for the tests, from binaries built from Go modules.

etcd, kube-apiserver (RBAC on, client-certificate and ServiceAccount-token auth),
kube-controller-manager (Job, ServiceAccount and token controllers), kube-scheduler, and KWOK
managing fake nodes (FAKE_NODES), some with nvidia.com/gpu capacity of two GPU types. Pods
become Running when scheduled; a pod annotated `batchhub.test/complete: succeeded|failed` ends
with exit status 0|1 (k8s-testenv/kwok-stages.yaml). Everything listens on 127.0.0.1.

ControlPlane gives the admin kubeconfig (system:masters client certificate), admin GET/POST/PATCH,
and identities for tests: namespaces, ServiceAccounts, Roles bound to them, tokens minted with the
TokenRequest API and kubeconfig files presenting them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.hub import free_port
from tests.k8s.pki import Pki

ROOT = Path(__file__).resolve().parent.parent.parent
BUILD = ROOT / "k8s-testenv" / "build.sh"
STAGES = ROOT / "k8s-testenv" / "kwok-stages.yaml"
KUBE_MODULE = ROOT / "k8s-testenv" / "modules" / "kube" / "go.mod"
COMPLETE_ANNOTATION = "batchhub.test/complete"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_PRODUCTS = {"a100": "NVIDIA-A100-SXM4-80GB", "h100": "NVIDIA-H100-80GB-HBM3"}
# The fake nodes: tests assert against these.
FAKE_NODES = [
    {"name": "cpu-0", "gpus": 0, "gpu_type": None},
    {"name": "cpu-1", "gpus": 0, "gpu_type": None},
    {"name": "a100-0", "gpus": 2, "gpu_type": "a100"},
    {"name": "a100-1", "gpus": 2, "gpu_type": "a100"},
    {"name": "h100-0", "gpus": 4, "gpu_type": "h100"},
]


def pinned_kubernetes_version() -> str:
    """The Kubernetes release the build pins, e.g. "v1.35.4" (from the wrapper go.mod)."""
    for line in KUBE_MODULE.read_text().splitlines():
        if line.startswith("require k8s.io/kubernetes "):
            return line.split()[-1]
    raise ValueError(f"{KUBE_MODULE} does not require k8s.io/kubernetes")


def build_binaries() -> Path:
    """Run the build script (a no-op when cached) and return the bin folder."""
    result = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"building the control plane failed:\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def kubeconfig(
    server: str,
    ca: Path,
    cert: Path | None = None,
    key: Path | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """A kubeconfig for one identity."""
    user: dict[str, Any] = {}
    if cert and key:
        user = {"client-certificate": str(cert), "client-key": str(key)}
    if token:
        user = {"token": token}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "test", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": "me", "user": user}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "me"}}],
        "current-context": "test",
    }


@dataclass
class ControlPlane:
    """The running control plane: URLs, credentials, processes."""

    bin: Path
    folder: Path
    server: str = ""
    pki: Pki | None = None
    admin_kubeconfig: Path | None = None
    processes: list[subprocess.Popen] = field(default_factory=list)

    # --- starting ------------------------------------------------------------------
    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.folder / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.processes.append(
            subprocess.Popen(
                [str(self.bin / args[0]), *args[1:]], stdout=log, stderr=log, start_new_session=True
            )
        )

    def _write_kubeconfig(self, name: str, config: dict[str, Any]) -> Path:
        path = self.folder / f"{name}.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        return path

    def _spawn_controller(self, binary: str, user: str, flags: list[str]) -> None:
        """Start a component that talks to the API server as `user` with a certificate."""
        assert self.pki is not None
        cert = self.pki.issue(binary, user)
        config = self._write_kubeconfig(binary, kubeconfig(self.server, self.pki.ca_path, *cert))
        self._spawn(
            binary,
            [
                binary,
                f"--kubeconfig={config}",
                f"--authentication-kubeconfig={config}",
                f"--authorization-kubeconfig={config}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                *flags,
                "--v=1",
            ],
        )

    def start(self, timeout: float = 120) -> ControlPlane:
        """Start every component and wait until nodes are Ready."""
        self.pki = pki = Pki(self.folder / "pki")
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        self._spawn(
            "etcd",
            [
                "etcd",
                "--name=test",
                f"--data-dir={self.folder / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=test=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        serving = pki.issue("apiserver", "kube-apiserver", server=True)
        self._spawn(
            "kube-apiserver",
            [
                "kube-apiserver",
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--tls-cert-file={serving[0]}",
                f"--tls-private-key-file={serving[1]}",
                f"--client-ca-file={pki.ca_path}",
                f"--service-account-key-file={pki.sa_pub_path}",
                f"--service-account-signing-key-file={pki.sa_key_path}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--authorization-mode=Node,RBAC",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--enable-priority-and-fairness=false",
                "--v=1",
            ],
        )
        self.server = f"https://127.0.0.1:{api_port}"
        admin = pki.issue("admin", "batchhub-test-admin", ["system:masters"])
        self.admin_kubeconfig = self._write_kubeconfig(
            "admin", kubeconfig(self.server, pki.ca_path, *admin)
        )
        self._wait(lambda: self.get("/readyz", ok_missing=True) == "ok", timeout, "apiserver")
        self._spawn_controller(
            "kube-controller-manager",
            "system:kube-controller-manager",
            [
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki.sa_key_path}",
                f"--root-ca-file={pki.ca_path}",
                "--controllers=*",
                "--node-monitor-grace-period=60s",
            ],
        )
        self._spawn_controller("kube-scheduler", "system:kube-scheduler", [])
        self._spawn(
            "kwok",
            [
                "kwok",
                f"--kubeconfig={self.admin_kubeconfig}",
                f"--config={STAGES}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--node-lease-duration-seconds=40",
                "--cidr=10.10.0.0/16",
                "--node-ip=10.9.0.1",
                f"--server-address=127.0.0.1:{free_port()}",
            ],
        )
        for node in FAKE_NODES:
            self.create_node(node)
        self._wait(self._nodes_ready, timeout, "fake nodes Ready")
        self._wait(
            lambda: (
                self.get("/api/v1/namespaces/default/serviceaccounts/default", ok_missing=True)
                is not None
            ),
            timeout,
            "default SA",
        )
        return self

    def create_node(self, node: dict[str, Any]) -> None:
        """A KWOK-managed fake node (GPU nodes labelled by product and tainted)."""
        capacity = {"cpu": "32", "memory": "256Gi", "pods": "110"}
        labels = {"type": "kwok", "kubernetes.io/hostname": node["name"]}
        taints = []
        if node["gpus"]:
            capacity["nvidia.com/gpu"] = str(node["gpus"])
            labels[GPU_PRODUCT_LABEL] = GPU_PRODUCTS[node["gpu_type"]]
            taints.append({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"})
        self.post(
            "/api/v1/nodes",
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": node["name"],
                    "labels": labels,
                    "annotations": {
                        "kwok.x-k8s.io/node": "fake",
                        "node.alpha.kubernetes.io/ttl": "0",
                    },
                },
                "spec": {"taints": taints},
                "status": {"capacity": capacity, "allocatable": capacity},
            },
        )

    def _nodes_ready(self) -> bool:
        nodes = self.get("/api/v1/nodes")["items"]
        ready = [
            n
            for n in nodes
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        ]
        return len(ready) == len(FAKE_NODES)

    def _wait(self, check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except (requests.RequestException, KeyError, ValueError):
                pass
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{process.args[0]} exited: {self.logs()}")
            time.sleep(0.3)
        raise TimeoutError(f"control plane: no {what} after {timeout}s\n{self.logs()}")

    def logs(self, lines: int = 30) -> str:
        """The last lines of every component's log."""
        out = []
        for log in sorted(self.folder.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)

    # --- talking to it as admin ----------------------------------------------------
    def _session(self) -> requests.Session:
        assert self.pki is not None
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE would replace our CA
        session.cert = (str(self.pki.folder / "admin.crt"), str(self.pki.folder / "admin.key"))
        session.verify = str(self.pki.ca_path)
        return session

    def get(self, path: str, ok_missing: bool = False) -> Any:
        """GET as admin (JSON, or text for health endpoints)."""
        r = self._session().get(self.server + path, timeout=10)
        if ok_missing and r.status_code in (404, 500, 503):
            return None
        r.raise_for_status()
        return r.json() if "json" in r.headers.get("Content-Type", "") else r.text

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST as admin; an existing object is fine."""
        r = self._session().post(self.server + path, json=body, timeout=10)
        if r.status_code != 409:
            r.raise_for_status()
        return r.json()

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        """Merge-patch as admin."""
        r = self._session().patch(
            self.server + path,
            data=json.dumps(body),
            timeout=10,
            headers={"Content-Type": "application/merge-patch+json"},
        )
        r.raise_for_status()
        return r.json()

    def delete(self, path: str) -> None:
        """DELETE as admin; a missing object is fine."""
        r = self._session().delete(self.server + path, timeout=10)
        if r.status_code != 404:
            r.raise_for_status()

    # --- identities for tests --------------------------------------------------------
    @property
    def ca(self) -> Path:
        """The CA certificate that signed the apiserver's serving certificate."""
        assert self.pki is not None
        return self.pki.ca_path

    def create_namespace(self, name: str) -> None:
        """A namespace (an existing one is fine)."""
        self.post(
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        )

    def create_service_account(self, namespace: str, name: str) -> None:
        """A ServiceAccount in an existing namespace."""
        self.post(
            f"/api/v1/namespaces/{namespace}/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
        )

    def grant(self, namespace: str, account: str, role: str, rules: list[dict[str, Any]]) -> None:
        """A Role of these rules in the namespace, bound to the ServiceAccount."""
        rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
        self.post(
            f"{rbac}/roles",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": role},
                "rules": rules,
            },
        )
        self.post(
            f"{rbac}/rolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": role},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
            },
        )

    def mint_token(self, namespace: str, account: str, seconds: int = 7200) -> str:
        """A bearer token for the ServiceAccount (TokenRequest API)."""
        return self.post(
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": seconds},
            },
        )["status"]["token"]

    def token_kubeconfig(self, name: str, token: str) -> Path:
        """A kubeconfig file that presents this bearer token."""
        return self._write_kubeconfig(name, kubeconfig(self.server, self.ca, token=token))

    def service_account(self, namespace: str, name: str, rules: list[dict[str, Any]]) -> Path:
        """A namespace, a ServiceAccount bound to a Role of these rules, and its kubeconfig."""
        self.create_namespace(namespace)
        self.create_service_account(namespace, name)
        self.grant(namespace, name, name, rules)
        return self.token_kubeconfig(f"{namespace}-{name}", self.mint_token(namespace, name))

    # --- stopping ----------------------------------------------------------------------
    def stop(self) -> None:
        """Stop every process this control plane started (by PID), newest first."""
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def start_control_plane() -> ControlPlane:
    """Build if needed, then start a control plane in a fresh temporary folder."""
    binaries = build_binaries()
    folder = Path(tempfile.mkdtemp(prefix="batchhub-k8s-"))
    plane = ControlPlane(binaries, folder)
    try:
        return plane.start()
    except BaseException:
        plane.stop()
        if not os.environ.get("BATCHHUB_KEEP_TEST_STATE"):
            shutil.rmtree(folder, ignore_errors=True)
        raise
