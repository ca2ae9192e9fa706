"""Fixtures for the Kubernetes tests: one real control plane per session.

BATCHHUB_SKIP_K8S=1 skips these tests (for machines without Go); otherwise a control plane that
cannot be built or started fails them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.k8s.controlplane import ControlPlane, start_control_plane


@pytest.fixture(scope="session")
def k8s_cluster() -> Iterator[ControlPlane]:
    """kube-apiserver, etcd, controller-manager, scheduler and KWOK with fake GPU nodes."""
    if os.environ.get("BATCHHUB_SKIP_K8S") == "1":
        pytest.skip("BATCHHUB_SKIP_K8S=1: the Kubernetes test control plane is not started")
    plane = start_control_plane()
    try:
        yield plane
    finally:
        plane.stop()
        if not os.environ.get("BATCHHUB_KEEP_TEST_STATE"):
            shutil.rmtree(plane.folder, ignore_errors=True)
