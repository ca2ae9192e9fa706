"""A job's input and executed notebook: bytes in the file store, what is known in job_files.

A submission writes its input file first (fsynced, renamed into place) and then commits the job
row with the file's row in one transaction, so an acknowledged job always has its input and a
crash in between leaves at most an unreferenced file, never a job without input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from batch_service.clock import now
from batch_service.errors import NotFound
from batch_service.files import FileStore
from batch_service.store import JobFile, Store


@dataclass(frozen=True)
class StoredFile:
    """A file of a job: its name for downloads, where its bytes are, its size and digest."""

    name: str
    path: Path
    size: int
    sha256: str

    def read(self) -> bytes:
        """The whole file (inputs and notebooks are bounded by the upload limit)."""
        return self.path.read_bytes()


class JobFiles:
    """Write and find job inputs and outputs."""

    def __init__(self, store: Store, files: FileStore) -> None:
        self.store = store
        self.files = files

    def write(self, job_id: str, role: str, name: str, content: bytes) -> JobFile:
        """Put the bytes in the store; return the row to commit with the job."""
        size, digest = self.files.write_atomic(self.files.job_file(job_id, role, name), content)
        return JobFile(
            job_id=job_id, role=role, name=name, size=size, sha256=digest, stored_at=now()
        )

    def write_group(self, files: list[tuple[str, str, str, bytes]]) -> list[JobFile | Exception]:
        """`write` for many (job id, role, name, content) at once, fsynced together; per file
        its row, or the error that kept it from the store."""
        targets = [(self.files.job_file(j, r, n), c) for j, r, n, c in files]
        at = now()
        return [
            written
            if isinstance(written, Exception)
            else JobFile(job_id=j, role=r, name=n, size=written[0], sha256=written[1], stored_at=at)
            for (j, r, n, _), written in zip(files, self.files.write_group(targets), strict=True)
        ]

    def find(self, job_id: str, role: str) -> StoredFile:
        """A stored file of a job, or 404."""
        with self.store.session() as session:
            row = session.get(JobFile, (job_id, role))
            if row is None:
                raise NotFound(f"job {job_id} has no {role} yet")
            return StoredFile(
                row.name, self.files.job_file(job_id, role, row.name), row.size, row.sha256
            )
