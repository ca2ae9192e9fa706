"""What a local server sees besides its home: datasets read-only at /data, lab volumes.

Each server process (and so every kernel it starts) gets a private mount namespace, made in the
child as root before it drops to the user's account: /data is a small read-only tmpfs holding
one read-only bind mount per dataset the user may read (owner, a hub group they are in, or
everyone), taken from the batch service's dataset index; lab volumes are bind-mounted at their
paths for members of their groups. Nothing in the namespace propagates back to the host. The
dataset files are also owned by root and readable only by the dataset's own system group, which
readers' processes get as a supplementary group: a non-reader neither sees nor can open them,
and nobody can write them.

Without root there are no namespaces and no per-user accounts: the same datasets appear as links
in a folder named by BATCHHUB_DATA_DIR (documented in docs/architecture.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

DATA_ROOT = "/data"
INDEX = "datasets.json"
CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
# Mount paths a lab volume may never take.
RESERVED = (
    "/data",
    "/proc",
    "/sys",
    "/dev",
    "/etc",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/boot",
    "/root",
    "/run",
    "/var",
    "/tmp",
)


class MountError(ValueError):
    """A lab volume or dataset that cannot be mounted; the message says which and why."""


@dataclass(frozen=True)
class DatasetMount:
    """One dataset a user may read: its name under /data, its folder, its group id."""

    name: str
    source: str
    gid: int | None


@dataclass(frozen=True)
class LabVolume:
    """Extra storage for members of hub groups."""

    name: str
    groups: tuple[str, ...]
    mount_path: str
    host_path: str = ""
    claim: str = ""
    read_only: bool = False

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> LabVolume:
        """From the values file's data.lab_volumes entry, with its mount path checked."""
        volume = cls(
            name=str(raw["name"]),
            groups=tuple(raw.get("groups") or ()),
            mount_path=str(raw["mount_path"]),
            host_path=str(raw.get("host_path") or ""),
            claim=str(raw.get("claim") or ""),
            read_only=bool(raw.get("read_only", False)),
        )
        path = PurePosixPath(volume.mount_path)
        if not path.is_absolute() or ".." in path.parts or str(path) == "/":
            raise MountError(f"lab volume {volume.name!r}: mount_path must be an absolute path")
        for reserved in RESERVED:
            if str(path) == reserved or str(path).startswith(reserved + "/"):
                raise MountError(
                    f"lab volume {volume.name!r}: {volume.mount_path} is under {reserved}, "
                    "which servers need for themselves"
                )
        return volume

    def for_groups(self, groups: Iterable[str]) -> bool:
        """True for a member of one of its groups."""
        return bool(set(self.groups) & set(groups))


def readable_datasets(files_dir: str, user: str, groups: Iterable[str]) -> list[DatasetMount]:
    """Ready datasets this user may read, from the service's index (none if there is none)."""
    index = Path(files_dir) / INDEX
    try:
        entries = json.loads(index.read_text()).get("datasets", [])
    except (OSError, ValueError):
        return []
    member_of = set(groups)
    found = []
    for entry in entries:
        readers = entry.get("readers")
        if (
            entry.get("owner") == user
            or readers == "everyone"
            or (readers == "group" and entry.get("group") in member_of)
        ):
            source = Path(files_dir) / str(entry["folder"])
            if source.is_dir() and "/" not in entry["name"] and entry["name"] not in (".", ".."):
                found.append(DatasetMount(entry["name"], str(source), entry.get("gid")))
    return found


def _libc() -> Any:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
    return libc


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(
    libc: Any,
    source: str | None,
    target: str,
    fstype: str | None,
    flags: int,
    data: str | None = None,
) -> None:
    encode = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(
        libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)),
        f"mount {source or fstype} on {target}",
    )


def prepare_host(labs: Iterable[LabVolume]) -> None:
    """As root in the hub: the mount points must exist on the host (empty folders)."""
    os.makedirs(DATA_ROOT, mode=0o755, exist_ok=True)
    for lab in labs:
        if not Path(lab.host_path).is_dir():
            raise MountError(f"lab volume {lab.name!r}: host folder {lab.host_path} does not exist")
        os.makedirs(lab.mount_path, mode=0o755, exist_ok=True)


def enter_private_mounts(datasets: Iterable[DatasetMount], labs: Iterable[LabVolume]) -> None:
    """In the server's child process, as root: a mount namespace of its own (see above)."""
    libc = _libc()
    _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    hardening = MS_NOSUID | MS_NODEV
    _mount(libc, "batchhub-data", DATA_ROOT, "tmpfs", hardening | MS_NOEXEC, "mode=0755,size=1m")
    for dataset in datasets:
        target = f"{DATA_ROOT}/{dataset.name}"
        os.mkdir(target, 0o755)
        _mount(libc, dataset.source, target, None, MS_BIND | MS_REC)
        _mount(libc, None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | hardening)
    _mount(libc, None, DATA_ROOT, None, MS_REMOUNT | MS_RDONLY | hardening | MS_NOEXEC, "mode=0755")
    for lab in labs:
        _mount(libc, lab.host_path, lab.mount_path, None, MS_BIND | MS_REC)
        if lab.read_only:
            _mount(libc, None, lab.mount_path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | hardening)


def link_folder(folder: Path, datasets: Iterable[DatasetMount]) -> None:
    """Without root: a folder of links named like /data's entries (the documented fallback)."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        if entry.is_symlink():
            entry.unlink()
    for dataset in datasets:
        (folder / dataset.name).symlink_to(dataset.source, target_is_directory=True)
