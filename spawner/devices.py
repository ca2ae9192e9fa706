"""GPU device barriers: a local server's processes reach only their own GPUs' device files.

`CUDA_VISIBLE_DEVICES` is a courtesy the user's code can unset; the barrier is the kernel's.
Each GPU is a character device (/dev/nvidia<minor>); a barrier keeps the others closed:

* ``cgroup``: the cgroup v1 devices controller. Each server gets its own device cgroup that
  denies every GPU of the inventory except its own; its processes (kernels, shells, anything
  they start) inherit it and cannot leave it (joining another cgroup needs root).
* ``owner``: device-file ownership, where no device cgroup can be written (cgroup v2 guards
  devices only through BPF programs). GPU device files are root's with mode 0600, and a
  server's GPUs are handed to its account while it holds them. Needs root and per-user
  accounts, and changes the host's device files: other programs on the machine need root
  for GPUs, as with most schedulers' device isolation.
* ``none``: only CUDA_VISIBLE_DEVICES; said in the log and on the spawn page.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEVICES_CGROUP = Path("/sys/fs/cgroup/devices")
PARENT_GROUP = "batchhub"
MECHANISMS = ("auto", "cgroup", "owner", "none")


@dataclass(frozen=True)
class GpuDevice:
    """A GPU's device file and its character-device numbers."""

    uuid: str
    path: str
    major: int
    minor: int


def device_of(uuid: str, path: str | None) -> GpuDevice | None:
    """The device numbers of a GPU's device file, or None when there is no such file."""
    if not path:
        return None
    try:
        info = os.stat(path)
    except OSError as e:
        log.warning("GPU %s: device file %s cannot be read (%s); no barrier for it", uuid, path, e)
        return None
    if not stat.S_ISCHR(info.st_mode):
        log.warning("GPU %s: %s is not a character device; no barrier for it", uuid, path)
        return None
    return GpuDevice(uuid, path, os.major(info.st_rdev), os.minor(info.st_rdev))


def _cgroup_v1_usable(root: Path) -> bool:
    return (root / "devices.deny").exists() and os.access(root, os.W_OK)


class DeviceBarrier:
    """Chooses and applies one barrier for every local server of this hub."""

    def __init__(
        self,
        mode: str,
        devices: Iterable[GpuDevice],
        isolated: bool,
        root: Path = DEVICES_CGROUP,
    ) -> None:
        if mode not in MECHANISMS:
            raise ValueError(f"gpu barrier must be one of {', '.join(MECHANISMS)}, not {mode!r}")
        self.devices = list(devices)
        self.root = root
        owner_ok = os.geteuid() == 0 and isolated
        if not self.devices:
            self.mechanism = "none"
        elif mode == "auto":
            self.mechanism = (
                "cgroup" if _cgroup_v1_usable(root) else "owner" if owner_ok else "none"
            )
        else:
            self.mechanism = mode
        if self.mechanism == "cgroup" and not _cgroup_v1_usable(root):
            raise RuntimeError(
                f"gpu barrier 'cgroup' needs a writable cgroup v1 devices controller at {root}"
            )
        if self.mechanism == "owner":
            if not owner_ok:
                raise RuntimeError("gpu barrier 'owner' needs root and per-user accounts")
            for device in self.devices:
                self._hand(device, 0, 0)

    @property
    def note(self) -> str:
        """Which barrier is in force, in a sentence for the log and the spawn page."""
        return {
            "cgroup": "GPUs fenced by a device cgroup: only this server's GPUs can be opened",
            "owner": "GPUs fenced by device-file ownership: only this server's GPUs can be opened",
            "none": "GPUs fenced by CUDA_VISIBLE_DEVICES only (no device barrier on this machine)",
        }[self.mechanism]

    def _group(self, key: str) -> Path:
        return self.root / PARENT_GROUP / key

    @staticmethod
    def _hand(device: GpuDevice, uid: int, gid: int) -> None:
        os.chown(device.path, uid, gid)
        os.chmod(device.path, 0o600)

    def prepare(self, key: str, uid: int, gid: int, gpus: Iterable[str]) -> Callable[[], None]:
        """Fence one server to the GPUs (UUIDs) it holds; return the step its child runs
        before dropping privileges."""
        mine = set(gpus)
        if self.mechanism == "owner":
            for device in self.devices:
                if device.uuid in mine:
                    self._hand(device, uid, gid)
            return lambda: None
        if self.mechanism != "cgroup":
            return lambda: None
        group = self._group(key)
        group.mkdir(parents=True, exist_ok=True)
        for device in self.devices:
            if device.uuid not in mine:
                (group / "devices.deny").write_text(f"c {device.major}:{device.minor} rwm")
        procs = str(group / "cgroup.procs")

        def join_group() -> None:
            with open(procs, "w") as f:
                f.write(str(os.getpid()))

        return join_group

    def cleanup(self, key: str, gpus: Iterable[str]) -> None:
        """The server is gone: take its GPUs back and drop its device cgroup."""
        mine = set(gpus)
        if self.mechanism == "owner":
            for device in self.devices:
                if device.uuid in mine:
                    self._hand(device, 0, 0)
        elif self.mechanism == "cgroup":
            group = self._group(key)
            if group.exists():
                try:
                    group.rmdir()
                except OSError as e:
                    log.warning("could not remove device cgroup %s: %s", group, e)
                    shutil.rmtree(group, ignore_errors=True)
