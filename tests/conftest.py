"""Fixtures every part's tests share: a real batchhub (hub, proxy, batch service) and Chromium."""

from __future__ import annotations

import copy
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.hub import HubProcess, remove_accounts

CHROMIUM = os.environ.get("BATCHHUB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

# System accounts the tests' hubs create carry this prefix and are removed afterwards.
ACCOUNT_PREFIX = f"bt{secrets.token_hex(2)}-"

# Prometheus's token for the batch service's metrics (the hub service batch-metrics).
METRICS_TOKEN = secrets.token_hex(24)

# Two listed fake GPUs: enough to show dedicated assignment and refusal of a third.
FAKE_GPUS = [
    {"uuid": "GPU-00000000-fake-0000-0000-000000000001", "type": "fake", "index": 0},
    {"uuid": "GPU-00000000-fake-0000-0000-000000000002", "type": "fake", "index": 1},
]

SESSION_VALUES = {
    # lab-a and lab-b have fair shares of their own (policy.group_weights); staff does not.
    # gpu-admins administer the batch queue without being hub admins.
    "hub": {
        "extra_groups": {
            "staff": ["carol"],
            "lab-a": ["br-hana"],
            "lab-b": ["br-hana"],
            "gpu-admins": ["az-boss"],
        }
    },
    "auth": {"oauth": {"batch_admin_groups": ["gpu-admins"]}},
    "spawner": {"local": {"account_prefix": ACCOUNT_PREFIX}},
    # Datasets' system groups carry the prefix too, so they go with the accounts.
    "data": {"group_prefix": f"{ACCOUNT_PREFIX}d-"},
    "gpus": {"source": "list", "devices": FAKE_GPUS},
    # Small limits so the upload tests can cross them cheaply.
    "batch": {"max_upload_bytes": "1M", "zip_max_members": 20, "zip_max_uncompressed_bytes": "2M"},
    # A live kernel holding a GPU others wait for ends this soon (seconds).
    "policy": {"grace_period_seconds": 5, "group_weights": {"lab-a": 1, "lab-b": 1}},
    "metrics": {"api_token": METRICS_TOKEN},
    "profiles": [
        {
            "name": "cpu",
            "display_name": "CPU",
            "description": "1 core, 2 GiB.",
            "cpu_limit": 1,
            "mem_limit": "2G",
            "gpus": 0,
            "live_window": 600,
            "max_time_limit": 3600,
            "default_time_limit": 600,
            # Small, so a run can write past it cheaply (tests/test_artifacts.py).
            "artifacts_max_bytes": "1M",
        },
        {
            "name": "gpu-1",
            "display_name": "1 GPU",
            "description": "One fake GPU.",
            "cpu_limit": 1,
            "mem_limit": "2G",
            "gpus": 1,
            "gpu_type": "fake",
            "live_window": 600,
            "max_time_limit": 3600,
            "default_time_limit": 600,
        },
        {
            "name": "staff-gpu",
            "display_name": "Staff GPU",
            "description": "Staff only.",
            "gpus": 1,
            "gpu_type": "fake",
            "groups": ["staff"],
        },
        # A GPU type the inventory lacks: refused at submission, as on the spawn page.
        {
            "name": "a100-1",
            "display_name": "1 A100",
            "description": "A GPU this machine does not have.",
            "gpus": 1,
            "gpu_type": "a100",
        },
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


@contextmanager
def state_folder() -> Iterator[Path]:
    """A state folder that per-user accounts can pass through (pytest's tmp is mode 0700)."""
    path = Path(tempfile.mkdtemp(prefix="batchhub-test-"))
    os.chmod(path, 0o711)
    try:
        yield path
    finally:
        if not os.environ.get("BATCHHUB_KEEP_TEST_STATE"):
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _remove_accounts_at_exit() -> Iterator[None]:
    yield
    remove_accounts(ACCOUNT_PREFIX)


def exclusive_profile(**extra: object) -> dict:
    """The profile "perf": a run that has the machine to itself (for a module's own hub)."""
    return {
        "name": "perf",
        "display_name": "Measurement (machine to itself)",
        "description": "An exclusive run.",
        "exclusive": True,
        "live_window": 600,
        "max_time_limit": 600,
        "default_time_limit": 300,
        **extra,
    }


def warm_values(idle_seconds: float) -> dict:
    """The session's values, but batch servers wait `idle_seconds` for their owner's next run
    (the session's hub starts a server per run)."""
    values = copy.deepcopy(SESSION_VALUES)
    values["batch"]["warm_idle"] = idle_seconds
    return values


@contextmanager
def running_hub(values: dict) -> Iterator[HubProcess]:
    """A batchhub with these values, started in a state folder of its own, stopped after."""
    with state_folder() as path:
        process = HubProcess.configure(path, values)
        process.start()
        try:
            yield process
        finally:
            process.stop()


@pytest.fixture(scope="session")
def hub() -> Iterator[HubProcess]:
    """One real batchhub for the session, with two listed fake GPUs and three profiles."""
    with running_hub(SESSION_VALUES) as process:
        yield process


@pytest.fixture
def fresh_hub() -> Iterator[HubProcess]:
    """A hub of the test's own (configure, then start it in the test)."""
    with state_folder() as path:
        process = HubProcess.configure(path, SESSION_VALUES)
        try:
            yield process
        finally:
            process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's headless Chromium driven by Playwright (never a downloaded browser).

    Module-scoped: Playwright's sync API keeps an event loop running while it is open, which
    would stop the async tests of later modules from starting theirs.
    """
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: .ci/run installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A failed test's report ends with the warnings its hubs logged: on a CI machine the
    hub's log is gone with the machine, and a run that failed says why only there."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for name, value in getattr(item, "funcargs", {}).items():
        if isinstance(value, HubProcess) and (tail := value.warnings_tail()):
            report.sections.append((f"warnings in the log of the hub '{name}'", tail))
