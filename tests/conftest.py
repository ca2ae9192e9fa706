"""Fixtures every part's tests share: a real batchhub (hub, proxy, batch service) and Chromium."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hub import HubProcess

CHROMIUM = os.environ.get("BATCHHUB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]

# Two listed fake GPUs: enough to show dedicated assignment and refusal of a third.
FAKE_GPUS = [
    {"uuid": "GPU-00000000-fake-0000-0000-000000000001", "type": "fake", "index": 0},
    {"uuid": "GPU-00000000-fake-0000-0000-000000000002", "type": "fake", "index": 1},
]

SESSION_VALUES = {
    "hub": {"extra_groups": {"staff": ["carol"]}},
    "gpus": {"source": "list", "devices": FAKE_GPUS},
    "profiles": [
        {"name": "cpu", "display_name": "CPU", "description": "1 core, 2 GiB.",
         "cpu_limit": 1, "mem_limit": "2G", "gpus": 0, "live_window": 600,
         "max_time_limit": 3600, "default_time_limit": 600},
        {"name": "gpu-1", "display_name": "1 GPU", "description": "One fake GPU.",
         "cpu_limit": 1, "mem_limit": "2G", "gpus": 1, "gpu_type": "fake",
         "live_window": 600, "max_time_limit": 3600, "default_time_limit": 600},
        {"name": "staff-gpu", "display_name": "Staff GPU", "description": "Staff only.",
         "gpus": 1, "gpu_type": "fake", "groups": ["staff"]},
    ],
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """GPU tests skip cleanly where no NVIDIA GPU is visible."""
    from spawner.gpus import discover_nvml

    if any(item.get_closest_marker("gpu") for item in items) and not discover_nvml({}):
        skip = pytest.mark.skip(reason="no NVIDIA GPU on this machine (NVML finds none)")
        for item in items:
            if item.get_closest_marker("gpu"):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """One real batchhub for the session, with two listed fake GPUs and three profiles."""
    process = HubProcess.configure(tmp_path_factory.mktemp("hub"), SESSION_VALUES)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def fresh_hub(tmp_path: Path) -> Iterator[HubProcess]:
    """A hub of the test's own (configure, then start it in the test)."""
    process = HubProcess.configure(tmp_path, SESSION_VALUES)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's headless Chromium driven by Playwright (never a downloaded browser)."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: .ci/run installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()
