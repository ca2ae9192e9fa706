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
from batch_service.files import FileStore, StagedFolder
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

    def write_group(
        self, files: list[tuple[str, str, str, bytes, StagedFolder | None]]
    ) -> list[JobFile | Exception]:
        """`write` for many (job id, role, name, content, staged) at once, fsynced together;
        per file its row, or the error that kept it from the store. A file a check worker
        already staged (in a folder of its own) is only renamed into place as the job's
        folder."""
        at = now()
        placed: dict[int, tuple[int, str] | Exception] = {}
        for index, (job_id, _, _, _, staged) in enumerate(files):
            if staged is not None:
                try:
                    self.files.place_job_folder(staged, job_id)
                    placed[index] = (staged.size, staged.sha256)
                except (OSError, ValueError) as e:
                    placed[index] = e
        rest = [i for i in range(len(files)) if i not in placed]
        targets = [(self.files.job_file(*files[i][:3]), files[i][3]) for i in rest]
        placed.update(zip(rest, self.files.write_group(targets), strict=True))
        rows: list[JobFile | Exception] = []
        for index, (job_id, role, name, _, _) in enumerate(files):
            written = placed[index]
            if isinstance(written, Exception):
                rows.append(written)
            else:
                size, digest = written
                rows.append(
                    JobFile(
                        job_id=job_id, role=role, name=name, size=size, sha256=digest, stored_at=at
                    )
                )
        return rows

    def find(self, job_id: str, role: str) -> StoredFile:
        """A stored file of a job, or 404."""
        with self.store.session() as session:
            row = session.get(JobFile, (job_id, role))
            if row is None:
                raise NotFound(f"job {job_id} has no {role} yet")
            return StoredFile(
                row.name, self.files.job_file(job_id, role, row.name), row.size, row.sha256
            )
