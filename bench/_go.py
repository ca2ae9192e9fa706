"""Go programs the benches build for themselves (vegeta, the floor server), cached by version in
~/.cache/batchhub/bin (BATCHHUB_BENCH_BIN)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

BIN = Path(os.environ.get("BATCHHUB_BENCH_BIN", Path.home() / ".cache/batchhub/bin"))


def go(needed_for: str) -> str:
    """The go command, or exit saying what needs it."""
    found = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if found is None:
        raise SystemExit(f"the benches need Go to build {needed_for}")
    return found


def build_env(**extra: str) -> dict[str, str]:
    """A static build with no paths or VCS stamps, by the Go already here."""
    return dict(
        os.environ,
        CGO_ENABLED="0",
        GOFLAGS="-trimpath -buildvcs=false",
        GOTOOLCHAIN="local",
        **extra,
    )
