"""The one file store: job inputs, executed notebooks, artifacts, uploads and datasets.

A folder under the state folder on one machine, a ReadWriteMany volume on Kubernetes; the
database keeps only what is known about each file (name, size, sha256). Layout:

    jobs/<job id>/input/<name>         the uploaded input
    jobs/<job id>/output/<name>        the executed notebook
    jobs/<job id>/artifacts/<path>     files the run wrote under its job folder
    definitions/<id>/input/<name>      a job definition's input (copied into each firing's job)
    uploads/<upload id>                bytes of a resumable upload that is not complete yet
    datasets/<name>/...                complete, verified datasets (read-only to everyone)
    staging/                           files being written; renamed into place when whole

Every path below the root is made from names the service chose or checked (`safe_relative`),
and files appear under their final name only by an atomic rename, so a reader never sees half
a file.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import unicodedata
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from batch_service.errors import BatchError

MAX_PATH_PARTS = 32
MAX_PART_LENGTH = 255
MAX_PATH_LENGTH = 1024
COPY_CHUNK = 1 << 20
# Files of one group fsynced at once (their journal commits are shared); threads kept.
_SYNCING = ThreadPoolExecutor(16, thread_name_prefix="fsync")


@dataclass(frozen=True)
class StagedFolder:
    """A job folder written and fsynced in staging by another process, to be renamed into
    place whole (`JobFiles.write_group`)."""

    folder: str
    size: int
    sha256: str


def stage_job_folder(staging: Path, role: str, name: str, content: bytes) -> StagedFolder:
    """Write `content` as <new folder>/<role>/<name> under `staging`, fsynced.

    Runs in a check worker: creating and syncing files is the costliest part of storing a
    submission, and in the service's process every one of its system calls would also wait
    for the interpreter lock that the event loop holds."""
    folder = os.path.join(staging, secrets.token_hex(12))
    target = os.path.join(folder, role, str(safe_relative(name, "file name")))
    try:
        # Two mkdirs: pathlib's mkdir(parents=True) first fails on the missing parent, which
        # was over a quarter of the CPU staging takes where fsync is free.
        os.mkdir(folder)
        os.makedirs(os.path.dirname(target))
        with open(target, "xb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return StagedFolder(str(folder), len(content), hashlib.sha256(content).hexdigest())


def safe_relative(path: str, what: str = "path") -> PurePosixPath:
    """A relative POSIX path with no '..', no absolute start, no control or odd characters."""
    if not isinstance(path, str) or not path or len(path) > MAX_PATH_LENGTH:
        raise BatchError(f"the {what} must be 1 to {MAX_PATH_LENGTH} characters long")
    if path.startswith("/") or "\\" in path or (len(path) > 1 and path[1] == ":"):
        raise BatchError(f"the {what} {path[:100]!r} is absolute; only relative paths")
    if unicodedata.normalize("NFC", path) != path:
        raise BatchError(f"the {what} {path[:100]!r} is not in normal form (NFC)")
    parts = PurePosixPath(path).parts
    if len(parts) > MAX_PATH_PARTS:
        raise BatchError(f"the {what} {path[:100]!r} is nested deeper than {MAX_PATH_PARTS}")
    for part in parts:
        if part in (".", ".."):
            raise BatchError(f"the {what} {path[:100]!r} points outside its folder ('..')")
        if len(part) > MAX_PART_LENGTH:
            raise BatchError(f"a part of the {what} is longer than {MAX_PART_LENGTH} characters")
        for ch in part:
            if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
                raise BatchError(f"the {what} {path[:100]!r} contains a control character")
    return PurePosixPath(*parts)


def sha256_of(path: Path) -> str:
    """The sha256 of a file, read in chunks (call it off the event loop for big files)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class FileStore:
    """Paths and atomic writes under one root folder."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def prepare(self) -> FileStore:
        """Create the folders (private to the service: mode 0700, datasets reachable by bind)."""
        for sub in ("", "jobs", "uploads", "datasets", "staging"):
            folder = self.root / sub
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o700)
        return self

    # --- where things live ------------------------------------------------------------
    def job_folder(self, job_id: str) -> Path:
        """A job's folder (inputs, outputs, artifacts)."""
        return self.root / "jobs" / str(safe_relative(job_id, "job id"))

    def job_file(self, job_id: str, role: str, name: str) -> Path:
        """A job's input or output file."""
        return self.job_folder(job_id) / role / str(safe_relative(name, "file name"))

    def definition_file(self, definition_id: str, name: str) -> Path:
        """A job definition's input file (each firing submits a copy)."""
        folder = self.root / "definitions" / str(safe_relative(definition_id, "definition id"))
        return folder / "input" / str(safe_relative(name, "file name"))

    def artifact(self, job_id: str, path: str) -> Path:
        """One artifact of a job."""
        return self.job_folder(job_id) / "artifacts" / str(safe_relative(path, "artifact path"))

    def upload(self, upload_id: str) -> Path:
        """The partial bytes of a resumable upload."""
        return self.root / "uploads" / str(safe_relative(upload_id, "upload id"))

    def dataset(self, folder: str) -> Path:
        """A complete dataset's folder."""
        return self.root / "datasets" / str(safe_relative(folder, "dataset folder"))

    def staging(self) -> Path:
        """A fresh name in the staging folder (same file system as the final places)."""
        return self.staging_root / secrets.token_hex(12)

    @property
    def staging_root(self) -> Path:
        """Where files are written before they are renamed into place."""
        return self.root / "staging"

    def place_job_folder(self, staged: StagedFolder, job_id: str) -> None:
        """Rename a staged job folder to be the job's folder (removed if that fails)."""
        source = Path(staged.folder)
        try:
            if source.parent != self.staging_root:
                raise ValueError(f"{source} is not in staging")
            os.rename(source, self.job_folder(job_id))
        except BaseException:
            self.discard(staged)
            raise

    def discard(self, staged: StagedFolder) -> None:
        """Remove a staged folder that will not be placed."""
        source = Path(staged.folder)
        if source.parent == self.staging_root:
            shutil.rmtree(source, ignore_errors=True)

    # --- writing --------------------------------------------------------------------
    def write_atomic(self, target: Path, chunks: Iterator[bytes] | bytes) -> tuple[int, str]:
        """Write through a staging file, fsync, rename into place; return (size, sha256)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.staging()
        digest = hashlib.sha256()
        size = 0
        with temporary.open("wb") as f:
            for chunk in [chunks] if isinstance(chunks, bytes) else chunks:
                f.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
        return size, digest.hexdigest()

    def write_group(self, items: list[tuple[Path, bytes]]) -> list[tuple[int, str] | Exception]:
        """`write_atomic` for many small files at once: all written, then fsynced together
        (concurrent fsyncs share the file system's journal commits, where one after another
        each waits for its own), then renamed into place. Per file: (size, sha256), or the
        error that kept that file (only) from its place."""
        results: list[tuple[int, str] | Exception] = []
        opened: list[tuple[int, Path, Path, Any]] = []
        for target, content in items:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                temporary = self.staging()
                f = temporary.open("wb")
                opened.append((len(results), temporary, target, f))
                f.write(content)
                f.flush()
                results.append((len(content), hashlib.sha256(content).hexdigest()))
            except OSError as e:
                results.append(e)

        def sync(entry: tuple[int, Path, Path, Any]) -> None:
            index, temporary, target, f = entry
            try:
                if not isinstance(results[index], Exception):
                    os.fsync(f.fileno())
                    f.close()
                    os.replace(temporary, target)
                    return
            except OSError as e:
                results[index] = e
            f.close()
            temporary.unlink(missing_ok=True)

        if len(opened) == 1:
            sync(opened[0])
        else:
            list(_SYNCING.map(sync, opened))
        return results

    def link_into_jobs(
        self, source: Path, content: bytes, job_ids: list[str], role: str, name: str
    ) -> None:
        """`source` (holding `content`) as <role>/<name> of each of many new jobs: a hard
        link, or where links fail a copy written from `content` (never read back). Paths are
        plain strings and folders made with os.makedirs: pathlib's objects and its mkdir's
        climb cost more than the links (a 1,000-point sweep)."""
        relative = os.path.join(role, str(safe_relative(name, "file name")))
        jobs = os.fspath(self.root / "jobs")
        for job_id in job_ids:
            target = os.path.join(jobs, str(safe_relative(job_id, "job id")), relative)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            try:
                os.link(source, target)
            except OSError:
                self.write_atomic(Path(target), content)

    def move_into_place(self, source: Path, target: Path) -> None:
        """Rename a finished file or folder to its final name (same file system)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)

    def remove_job(self, job_id: str) -> None:
        """Delete a job's files."""
        shutil.rmtree(self.job_folder(job_id), ignore_errors=True)

    def remove(self, path: Path) -> None:
        """Delete a file or folder below the root (never anything outside it)."""
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root) or resolved == self.root:
            raise ValueError(f"{path} is not inside the file store")
        if resolved.is_dir() and not resolved.is_symlink():
            shutil.rmtree(resolved, ignore_errors=True)
        else:
            resolved.unlink(missing_ok=True)

    def clean_staging(self) -> None:
        """Remove what a crash left half-written in staging."""
        for entry in (self.root / "staging").iterdir():
            self.remove(entry)
