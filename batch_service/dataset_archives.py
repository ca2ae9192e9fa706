"""Zip archives uploaded into a dataset (a folder sent as one file): checked, then unpacked.

Hostile until checked: members with absolute paths, '..', control characters, symbolic links,
more members than a dataset may hold, or more bytes than the quota leaves (counted while
decompressing, since a member's declared size can lie) are refused with a message.
"""

from __future__ import annotations

import hashlib
import stat
import zipfile
from pathlib import Path

from batch_service.errors import BatchError, TooLarge
from batch_service.files import safe_relative

CHUNK = 1 << 20


def check_members(archive: zipfile.ZipFile, max_files: int) -> list[zipfile.ZipInfo]:
    """The archive's file members, every name and kind checked."""
    members = archive.infolist()
    if len(members) > max_files:
        raise BatchError(f"the archive has {len(members)} members; at most {max_files} allowed")
    files = []
    for info in members:
        name = info.filename
        if name.startswith("/") or "\\" in name or (len(name) > 1 and name[1] == ":"):
            raise BatchError(f"the archive member {name[:200]!r} has an absolute path")
        safe_relative(name.rstrip("/"), "archive member")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise BatchError(f"the archive member {name[:200]!r} is a symbolic link")
        if not info.is_dir():
            files.append(info)
    return files


def check_zip(path: Path, max_files: int) -> None:
    """Refuse an archive that could never be unpacked (called when its upload completes)."""
    try:
        with zipfile.ZipFile(path) as archive:
            check_members(archive, max_files)
    except zipfile.BadZipFile:
        raise BatchError("the upload marked as a zip archive is not one") from None


def unpack_zip(
    path: Path, target: Path, max_files: int, max_bytes: int
) -> list[tuple[str, int, str]]:
    """Unpack into target; return (path, size, sha256) of each file."""
    sums = []
    total = 0
    try:
        with zipfile.ZipFile(path) as archive:
            for info in check_members(archive, max_files):
                relative = str(safe_relative(info.filename, "archive member"))
                destination = target / relative
                if destination.exists():
                    raise BatchError(f"the path {relative!r} is in the dataset twice")
                destination.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                size = 0
                with archive.open(info) as source, open(destination, "xb") as sink:
                    while data := source.read(CHUNK):
                        size += len(data)
                        total += len(data)
                        if total > max_bytes:
                            raise TooLarge(
                                "the archive unpacks to more bytes than your storage quota leaves"
                            )
                        digest.update(data)
                        sink.write(data)
                sums.append((relative, size, digest.hexdigest()))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError) as e:
        raise BatchError(f"the archive cannot be read: {e}") from None
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        raise BatchError("the archive holds a file and a folder of the same name") from None
    return sums
