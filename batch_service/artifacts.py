"""Artifacts: the files a run wrote under its job folder, kept with the job after its server.

The runner sends each file it finds; the service decides what is kept. Paths are checked like
any upload, sizes are the bytes that actually arrived (never the runner's word), and a job keeps
at most its profile's `artifacts_max_bytes`: a file that does not fit is recorded as dropped,
with the reason the job page shows.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import func, select

from batch_service.clock import now
from batch_service.errors import BatchError, Conflict, NotFound, TooLarge
from batch_service.files import FileStore, safe_relative
from batch_service.identity import Identity
from batch_service.store import Artifact, Job, Store
from spawner.profiles import Profile

MAX_ARTIFACTS_PER_JOB = 100_000


def human_size(size: int) -> str:
    """1.5 GiB, 12.0 KiB, 300 B."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


@dataclass
class Receiving:
    """One artifact arriving: a staging file, its digest and count so far."""

    job_id: str
    path: str
    target: Path
    staging: Path
    limit: int
    file: BinaryIO
    digest: Any = field(default_factory=hashlib.sha256)
    received: int = 0


class ArtifactService:
    """Receive, list and hand out a job's artifacts."""

    def __init__(self, store: Store, files: FileStore, profiles: dict[str, Profile]) -> None:
        self.store = store
        self.files = files
        self.profiles = profiles
        # One artifact at a time per job: the cap is checked against what is already kept.
        self._busy: set[str] = set()

    def cap(self, job: Job) -> int:
        """The job's profile's artifact cap in bytes."""
        profile = self.profiles.get(job.profile)
        return profile.artifacts_max_bytes if profile else 0

    def kept_bytes(self, job_id: str) -> int:
        """Bytes of artifacts kept for a job."""
        with self.store.session() as session:
            total = session.scalar(
                select(func.coalesce(func.sum(Artifact.size), 0)).where(
                    Artifact.job_id == job_id, Artifact.kept.is_(True)
                )
            )
        return int(total or 0)

    # --- receiving (from the job's own server) -----------------------------------------
    def begin(self, job: Job, path: str, declared: int | None) -> Receiving:
        """Start receiving one artifact; refuse (and record) one that cannot fit."""
        relative = str(safe_relative(path, "artifact path"))
        if declared is None:
            raise BatchError("send the artifact with a Content-Length", status=411)
        if job.id in self._busy:
            raise Conflict("another artifact of this job is being received; send one at a time")
        with self.store.session() as session:
            count = session.scalar(
                select(func.count()).select_from(Artifact).where(Artifact.job_id == job.id)
            )
            if count and count >= MAX_ARTIFACTS_PER_JOB:
                raise BatchError(f"a job keeps at most {MAX_ARTIFACTS_PER_JOB} artifacts")
        cap = self.cap(job)
        room = cap - self.kept_bytes(job.id)
        existing = self._existing_size(job.id, relative)
        room += existing  # a file sent again replaces itself
        if declared > room:
            reason = (
                f"over the artifact cap of profile {job.profile!r} ({human_size(cap)}): the file "
                f"is {human_size(declared)}, {human_size(max(room, 0))} were left"
            )
            self._record(job.id, relative, declared, "", kept=False, reason=reason)
            raise TooLarge(f"artifact {relative!r} not kept: {reason}")
        staging = self.files.staging()
        self._busy.add(job.id)
        return Receiving(
            job.id,
            relative,
            self.files.artifact(job.id, relative),
            staging,
            declared,
            staging.open("wb"),
        )

    def _existing_size(self, job_id: str, path: str) -> int:
        with self.store.session() as session:
            row = session.get(Artifact, (job_id, path))
            return row.size if row is not None and row.kept else 0

    def chunk(self, receiving: Receiving, data: bytes) -> None:
        """Write a piece; more bytes than announced is a refusal."""
        receiving.received += len(data)
        if receiving.received > receiving.limit:
            self.abort(receiving)
            raise TooLarge("more bytes arrived than the Content-Length announced")
        receiving.file.write(data)
        receiving.digest.update(data)

    def finish(self, receiving: Receiving) -> dict[str, Any]:
        """Rename into place and record it as kept."""
        try:
            receiving.file.close()
            if receiving.received != receiving.limit:
                raise BatchError("the artifact arrived incomplete; send it again")
            self.files.move_into_place(receiving.staging, receiving.target)
            self._record(
                receiving.job_id,
                receiving.path,
                receiving.received,
                receiving.digest.hexdigest(),
                kept=True,
            )
        finally:
            self.abort(receiving)
        return {"path": receiving.path, "size": receiving.received}

    def abort(self, receiving: Receiving) -> None:
        """Drop what arrived (no-op after finish) and let the next artifact in."""
        if not receiving.file.closed:
            receiving.file.close()
        receiving.staging.unlink(missing_ok=True)
        self._busy.discard(receiving.job_id)

    def _record(
        self, job_id: str, path: str, size: int, sha256: str, kept: bool, reason: str = ""
    ) -> None:
        with self.store.session() as session:
            session.merge(
                Artifact(
                    job_id=job_id,
                    path=path,
                    size=size,
                    sha256=sha256,
                    kept=kept,
                    reason=reason,
                    stored_at=now(),
                )
            )

    # --- reading (people) --------------------------------------------------------------
    def _job(self, identity: Identity, job_id: str) -> Job:
        with self.store.session() as session:
            found = isinstance(job_id, str) and len(job_id) <= 16
            job = session.get(Job, job_id) if found else None
            if job is None or not identity.may_read(job.owner):
                raise NotFound(f"no job {job_id!r}")
            return job

    def listing(self, identity: Identity, job_id: str) -> dict[str, Any]:
        """Kept artifacts with sizes, dropped ones with reasons, the cap."""
        job = self._job(identity, job_id)
        with self.store.session() as session:
            rows = session.execute(
                select(
                    Artifact.path, Artifact.size, Artifact.sha256, Artifact.kept, Artifact.reason
                )
                .where(Artifact.job_id == job_id)
                .order_by(Artifact.path)
            ).all()
        kept = [{"path": r.path, "size": r.size, "sha256": r.sha256} for r in rows if r.kept]
        dropped = [{"path": r.path, "size": r.size, "reason": r.reason} for r in rows if not r.kept]
        return {
            "artifacts": kept,
            "dropped": dropped,
            "kept_bytes": sum(a["size"] for a in kept),
            "cap": self.cap(job),
        }

    def find(self, identity: Identity, job_id: str, path: str) -> Path:
        """Where one kept artifact's bytes are."""
        self._job(identity, job_id)
        relative = str(safe_relative(path, "artifact path"))
        with self.store.session() as session:
            row = session.get(Artifact, (job_id, relative))
            if row is None or not row.kept:
                raise NotFound(f"job {job_id} has no artifact {relative!r}")
        return self.files.artifact(job_id, relative)

    def kept_paths(self, identity: Identity, job_id: str) -> list[tuple[str, Path]]:
        """Every kept artifact: (path in the zip, file)."""
        listing = self.listing(identity, job_id)
        return [(a["path"], self.files.artifact(job_id, a["path"])) for a in listing["artifacts"]]


class ZipSink:
    """A write-only stream zipfile writes into; the handler drains it as the zip is made."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def write(self, data: bytes) -> int:
        """Collect bytes (zipfile calls this)."""
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        """Bytes written so far (zipfile asks when the stream cannot seek)."""
        return self.position

    def flush(self) -> None:
        """Nothing to flush: the handler takes the parts."""

    def drain(self) -> bytes:
        """What was written since the last drain."""
        data, self.parts = b"".join(self.parts), []
        return data


def zip_members(
    members: Iterable[tuple[str, Path]], sink: ZipSink, chunk: int = 1 << 20
) -> Iterable[bytes]:
    """Yield the bytes of a zip of the members as they are made (stored, zip64, streamed)."""
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, path in members:
            info = zipfile.ZipInfo(name, date_time=_date_time(path))
            info.compress_type = zipfile.ZIP_STORED
            with path.open("rb") as source, archive.open(info, "w", force_zip64=True) as target:
                while data := source.read(chunk):
                    target.write(data)
                    yield sink.drain()
            yield sink.drain()
    yield sink.drain()


def _date_time(path: Path) -> tuple[int, int, int, int, int, int]:
    import time

    stamp = time.localtime(max(os.stat(path).st_mtime, 315532800))  # zip starts in 1980
    return stamp[:6]  # type: ignore[return-value]
