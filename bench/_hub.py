"""A throwaway batchhub for the benchmarks (same fixture code as the tests)."""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import SESSION_VALUES  # noqa: E402
from tests.hub import HubProcess, deep_update, remove_accounts  # noqa: E402

# Unique per run: benches of other checkouts on this machine have accounts of their own.
PREFIX = f"bench{secrets.token_hex(2)}-"


@contextmanager
def bench_hub(extra: dict | None = None) -> Iterator[HubProcess]:
    """Start a hub with the tests' profiles; remove its accounts afterwards."""
    with tempfile.TemporaryDirectory(prefix="batchhub-bench-") as folder:
        os.chmod(folder, 0o711)
        values = deep_update(
            deep_update({}, SESSION_VALUES),
            {"spawner": {"local": {"account_prefix": PREFIX}}, "culler": {"enabled": False}},
        )
        hub = HubProcess.configure(Path(folder), deep_update(values, extra or {}))
        hub.start()
        try:
            yield hub
        finally:
            hub.stop()
            remove_accounts(PREFIX)
