"""Memory limits on a server's process tree: cgroup v2 where one can be written, else rlimits.

`MemoryEnforcer.prepare(key, limit)` returns a function to run in the child before exec
(it joins the cgroup or sets the rlimit) and a sentence that says which limit is in force.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT_GROUP = "batchhub"


def human_bytes(size: int) -> str:
    """4294967296 -> '4 GiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:g} {unit}" if unit == "B" else f"{size:.3g} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _cgroup_v2_usable(root: Path) -> bool:
    try:
        controllers = (root / "cgroup.controllers").read_text().split()
    except OSError:
        return False
    return "memory" in controllers and os.access(root, os.W_OK)


class MemoryEnforcer:
    """Chooses and applies the memory limit mechanism for local servers."""

    def __init__(self, mode: str = "auto", root: Path = CGROUP_ROOT) -> None:
        self.root = root
        if mode == "cgroup" or (mode == "auto" and _cgroup_v2_usable(root)):
            self.mechanism = "cgroup"
        else:
            self.mechanism = "rlimit"
        if mode == "cgroup" and not _cgroup_v2_usable(root):
            raise RuntimeError(
                f"memory_enforcement is 'cgroup' but {root} is not a writable cgroup v2 "
                "hierarchy with the memory controller; use 'auto' or 'rlimit'"
            )

    def _group_dir(self, key: str) -> Path:
        return self.root / PARENT_GROUP / key

    def _ensure_parent(self) -> None:
        parent = self.root / PARENT_GROUP
        parent.mkdir(exist_ok=True)
        for level in (self.root, parent):
            control = level / "cgroup.subtree_control"
            if "memory" not in control.read_text().split():
                control.write_text("+memory")

    def prepare(self, key: str, limit: int | None) -> tuple[Callable[[], None], str]:
        """Return (preexec step, description of the limit in force) for one server."""
        if not limit:
            return (lambda: None), "no memory limit"
        if self.mechanism == "cgroup":
            self._ensure_parent()
            group = self._group_dir(key)
            group.mkdir(exist_ok=True)
            (group / "memory.max").write_text(str(limit))
            swap = group / "memory.swap.max"
            if swap.exists():
                swap.write_text("0")  # a limit that swap can sidestep is no limit
            procs = str(group / "cgroup.procs")

            def join_group() -> None:
                with open(procs, "w") as f:
                    f.write(str(os.getpid()))

            return join_group, f"memory limit {human_bytes(limit)} (cgroup v2, whole server)"

        def set_rlimit() -> None:
            # RLIMIT_DATA bounds heap and private mappings, not reserved thread stacks
            # or shared libraries, so JupyterLab starts while big allocations fail.
            resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

        return set_rlimit, f"memory limit {human_bytes(limit)} (per-process rlimit)"

    def cleanup(self, key: str) -> None:
        """Remove a server's cgroup once its processes are gone."""
        if self.mechanism != "cgroup":
            return
        group = self._group_dir(key)
        if group.exists():
            try:
                group.rmdir()
            except OSError as e:
                log.warning("could not remove cgroup %s: %s", group, e)
                shutil.rmtree(group, ignore_errors=True)
