"""Resumable uploads into datasets: the tus 1.0.0 protocol's state, behind api/tus.py.

Core (HEAD, PATCH at the current offset), creation (POST with Upload-Length and Upload-Metadata:
`dataset`, `filename`, optionally `sha256` and `archive`), creation-defer-length, termination
(DELETE), checksum (Upload-Checksum on a PATCH: sha1, sha256 or md5 of that PATCH's bytes) and
expiration (Upload-Expires; unfinished uploads are swept and their bytes freed).

The database holds each upload's offset, saved every few MiB while bytes arrive and at the end
of each PATCH; a PATCH first cuts the file back to that offset, so after a crash or a dropped
connection the client resumes from a byte the server knows it has. Each upload belongs to one
user: anyone else's id answers 404. Quotas are checked at creation and while bytes arrive.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from sqlalchemy import delete, func, select

from batch_service.clock import now
from batch_service.dataset_archives import check_zip
from batch_service.datasets import DatasetService
from batch_service.errors import BatchError, Conflict, NotFound, TooLarge
from batch_service.files import FileStore, safe_relative, sha256_of
from batch_service.identity import Identity
from batch_service.quotas import QuotaService
from batch_service.running_digest import RunningDigest
from batch_service.store import Dataset, Store, Upload
from batch_service.writeback import EarlyWriteback

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,creation-defer-length,termination,checksum,expiration"
CHECKSUMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}
MAX_LENGTH = 2**50
MAX_METADATA = 4096
SHA256_HEX = re.compile(r"[0-9a-f]{64}", re.ASCII)
DIGITS = re.compile(r"[0-9]{1,16}", re.ASCII)


class ChecksumMismatch(BatchError):
    """tus: the bytes do not match the checksum the client sent (status 460)."""

    status = 460


def parse_metadata(header: str) -> dict[str, str]:
    """Upload-Metadata: `key base64,key base64`; bounded, UTF-8 values."""
    if len(header) > MAX_METADATA:
        raise BatchError(f"Upload-Metadata is longer than {MAX_METADATA} characters")
    result: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in header.split(","))):
        key, _, encoded = pair.partition(" ")
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", key) or key in result:
            raise BatchError(f"Upload-Metadata has a bad or repeated key {key[:64]!r}")
        try:
            result[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise BatchError(f"Upload-Metadata {key!r} is not base64 of UTF-8 text") from None
    return result


def metadata_header(**items: str) -> str:
    """Upload-Metadata from keyword arguments (the inverse of parse_metadata)."""
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in items.items())


def parse_size(value: str | None, what: str) -> int | None:
    """A non-negative whole number header (bounded digits), or None when absent."""
    if value is None:
        return None
    if not DIGITS.fullmatch(value.strip()):
        raise BatchError(f"{what} must be a whole number of bytes")
    size = int(value)
    if size > MAX_LENGTH:
        raise TooLarge(f"{what} is larger than {MAX_LENGTH} bytes")
    return size


def upload_view(upload: Upload) -> dict[str, Any]:
    """What HEAD and the API say about an upload."""
    return {
        "id": upload.id,
        "offset": upload.offset,
        "length": upload.length,
        "expires_at": upload.expires_at,
        "complete": upload.completed_at is not None,
    }


@dataclass
class Patch:
    """One PATCH request in progress."""

    upload_id: str
    start: int
    offset: int
    length: int | None
    room: int
    file: BinaryIO
    checksum: tuple[str, bytes] | None
    hasher: Any = None
    digest: RunningDigest | None = None
    saved_at: int = 0
    saved_time: float = field(default_factory=time.monotonic)
    refused: BatchError | None = None
    discarded: int = 0
    writeback: EarlyWriteback = field(default_factory=EarlyWriteback)


class UploadService:
    """tus uploads: create, report, append, end, terminate, expire."""

    def __init__(
        self,
        store: Store,
        files: FileStore,
        quotas: QuotaService,
        datasets: DatasetService,
        expiry_seconds: float = 86400,
        save_every: int = 32 * 2**20,
    ) -> None:
        self.store = store
        self.files = files
        self.quotas = quotas
        self.datasets = datasets
        self.expiry_seconds = expiry_seconds
        self.save_every = save_every
        self._busy: set[str] = set()
        # The whole file's sha256 while it arrives; lost on a restart (then read at the end).
        self._digests: dict[str, RunningDigest] = {}

    # --- creation -----------------------------------------------------------------------
    def create(
        self, identity: Identity, length: str | None, defer: str | None, metadata: str
    ) -> Upload:
        """A new upload into one of the caller's unfinished datasets (quota checked)."""
        size = parse_size(length, "Upload-Length")
        if size is None and defer != "1":
            raise BatchError("send Upload-Length, or Upload-Defer-Length: 1")
        meta = parse_metadata(metadata or "")
        name = meta.get("dataset")
        if not name:
            raise BatchError("Upload-Metadata must name the dataset (key 'dataset')")
        path = meta.get("filename") or meta.get("name") or ""
        if meta.get("relativePath"):  # browsers' folder uploads carry the path inside it
            path = meta["relativePath"]
        path = str(safe_relative(path, "file path"))
        expected = meta.get("sha256", "").lower()
        if expected and not SHA256_HEX.fullmatch(expected):
            raise BatchError("metadata sha256 must be 64 hexadecimal digits")
        archive = meta.get("archive", "")
        if archive not in ("", "zip"):
            raise BatchError("metadata archive may only be 'zip'")
        created = now()
        with self.store.session() as session:
            ds = session.scalar(select(Dataset).where(Dataset.name == name))
            if ds is None or ds.owner != identity.name:
                raise NotFound(f"you have no dataset {name[:80]!r}; create it first")
            if ds.state != "uploading":
                raise Conflict(f"dataset {name!r} is complete; create a new dataset to add files")
            count = session.scalar(
                select(func.count()).select_from(Upload).where(Upload.dataset_id == ds.id)
            )
            if (count or 0) >= self.datasets.max_files:
                raise BatchError(f"a dataset holds at most {self.datasets.max_files} files")
            if not archive and session.scalar(
                select(Upload.id).where(Upload.dataset_id == ds.id, Upload.path == path)
            ):
                raise Conflict(f"dataset {name!r} already has an upload of {path!r}")
            self.quotas.check(session, ds.owner, ds.group_name, size or 0)
            upload = Upload(
                id=secrets.token_hex(16),
                owner=identity.name,
                dataset_id=ds.id,
                path=path,
                archive=bool(archive),
                length=size,
                offset=0,
                expected_sha256=expected,
                sha256="",
                created_at=created,
                expires_at=created + self.expiry_seconds,
            )
            self.files.upload(upload.id).touch(mode=0o600)
            session.add(upload)
        return upload

    # --- reading ------------------------------------------------------------------------
    def find(self, identity: Identity, upload_id: str) -> Upload:
        """The caller's own upload, else 404 (another user's id is not theirs to probe)."""
        if not re.fullmatch(r"[0-9a-f]{32}", upload_id or ""):
            raise NotFound("no such upload")
        with self.store.session() as session:
            upload = session.get(Upload, upload_id)
            if upload is None or upload.owner != identity.name or upload.expires_at < now():
                raise NotFound("no such upload (finished, expired or never created)")
            return upload

    # --- appending ----------------------------------------------------------------------
    def begin_patch(
        self,
        identity: Identity,
        upload_id: str,
        offset: str | None,
        content_type: str,
        checksum: str | None,
        length: str | None,
    ) -> Patch:
        """Check a PATCH before its body is read."""
        if content_type.split(";")[0].strip() != "application/offset+octet-stream":
            raise BatchError("a PATCH must be Content-Type: application/offset+octet-stream", 415)
        upload = self.find(identity, upload_id)
        at = parse_size(offset, "Upload-Offset")
        if at is None:
            raise BatchError("send Upload-Offset")
        if at != upload.offset:
            raise Conflict(f"the upload is at byte {upload.offset}, not {at}: send from there")
        if upload.completed_at is not None:
            raise Conflict("the upload is complete")
        if upload_id in self._busy:
            raise Conflict("another PATCH of this upload is still arriving")
        total = upload.length
        with self.store.session() as session:
            ds = session.get(Dataset, upload.dataset_id)
            assert ds is not None
            declared = parse_size(length, "Upload-Length")
            if declared is not None:
                if total is not None and declared != total:
                    raise BatchError("Upload-Length cannot change once set")
                if declared < at:
                    raise BatchError("Upload-Length is below the bytes already received")
                total = declared
            room = self.quotas.room(session, ds.owner, ds.group_name, upload.id)
            if (total or at) > room:
                self._drop(upload.id)
                raise TooLarge(
                    f"the upload no longer fits your storage quota ({room} bytes left for it); "
                    "it was removed"
                )
            if declared is not None and upload.length is None:
                session.get(Upload, upload.id).length = declared  # type: ignore[union-attr]
        hasher = None
        if checksum:
            algorithm, _, encoded = checksum.strip().partition(" ")
            if algorithm not in CHECKSUMS:
                raise BatchError(
                    f"checksum algorithm {algorithm[:20]!r} is not supported; "
                    f"use one of {', '.join(CHECKSUMS)}"
                )
            try:
                expected = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                raise BatchError("Upload-Checksum must be '<algorithm> <base64 digest>'") from None
            hasher = CHECKSUMS[algorithm]()
        path = self.files.upload(upload.id)
        handle = path.open("r+b")
        handle.truncate(at)  # anything past the saved offset is not known to be whole
        handle.seek(at)
        self._busy.add(upload.id)
        digest = self._digests.get(upload.id)
        if digest is None and at == 0:
            digest = self._digests[upload.id] = RunningDigest()
        elif digest is not None and digest.offset != at:
            self._forget_digest(upload.id)  # the file was cut back: read it at the end
            digest = None
        return Patch(
            upload.id,
            at,
            at,
            total,
            room,
            handle,
            (algorithm, expected) if checksum else None,
            hasher,
            digest=digest,
            saved_at=at,
            writeback=EarlyWriteback(at),
        )

    def chunk(self, patch: Patch, data: bytes) -> None:
        """Append bytes; over the announced length or the quota: refuse, remove the upload."""
        if patch.refused is not None:
            patch.discarded += len(data)
            return
        end = patch.offset + len(data)
        if patch.length is not None and end > patch.length:
            patch.refused = BatchError("more bytes arrived than Upload-Length announced")
            return
        if end > patch.room:
            patch.refused = TooLarge(
                f"your storage quota is reached at {patch.room} bytes for this upload; "
                "the upload was removed"
            )
            self._end(patch)
            self._drop(patch.upload_id)
            return
        patch.file.write(data)
        if patch.hasher is not None:
            patch.hasher.update(data)
        if patch.digest is not None:
            patch.digest.feed(data)
        patch.offset = end
        patch.writeback.wrote(patch.file, end)
        if patch.checksum is None and (
            end - patch.saved_at >= self.save_every or time.monotonic() - patch.saved_time > 2
        ):
            self._save(patch)

    def _save(self, patch: Patch) -> None:
        patch.file.flush()
        with self.store.session() as session:
            upload = session.get(Upload, patch.upload_id)
            if upload is not None:
                upload.offset = patch.offset
                upload.expires_at = now() + self.expiry_seconds
        patch.saved_at, patch.saved_time = patch.offset, time.monotonic()

    def _end(self, patch: Patch) -> None:
        if not patch.file.closed:
            patch.file.close()
        self._busy.discard(patch.upload_id)

    def interrupted(self, patch: Patch) -> None:
        """The connection dropped: keep what arrived unless a checksum could not be checked."""
        if patch.refused is None and not patch.file.closed:
            if patch.checksum is not None:
                patch.offset = patch.start
                patch.file.truncate(patch.start)
            self._save(patch)
        self._end(patch)

    def end_patch(self, patch: Patch) -> bool:
        """All bytes of the PATCH arrived: verify its checksum, sync, save; True if now whole.
        Waits for the disk: call it off the event loop."""
        if patch.refused is not None:
            self._end(patch)
            raise patch.refused
        if patch.checksum is not None:
            algorithm, expected = patch.checksum
            if patch.hasher.digest() != expected:
                patch.file.truncate(patch.start)
                patch.offset = patch.start
                self._save(patch)
                self._end(patch)
                raise ChecksumMismatch(
                    f"the PATCH's {algorithm} does not match its bytes; send them again"
                )
        patch.file.flush()
        os.fsync(patch.file.fileno())
        self._save(patch)
        self._end(patch)
        return patch.length is not None and patch.offset == patch.length

    def _forget_digest(self, upload_id: str) -> None:
        running = self._digests.pop(upload_id, None)
        if running is not None:
            running.close()

    def finish_upload(self, upload_id: str) -> None:
        """A whole upload: its sha256 checked, an archive's members checked (off the loop)."""
        path = self.files.upload(upload_id)
        running = self._digests.pop(upload_id, None)
        if running is not None and running.offset == os.stat(path).st_size:
            digest = running.hexdigest()
        else:
            digest = sha256_of(path)
        if running is not None:
            running.close()
        with self.store.session() as session:
            upload = session.get(Upload, upload_id)
            if upload is None:
                raise NotFound("no such upload")
            expected, archive = upload.expected_sha256, upload.archive
        if expected and digest != expected:
            self._drop(upload_id)
            raise ChecksumMismatch(
                "the file's sha256 differs from the one announced: it was removed; upload again"
            )
        if archive:
            try:
                check_zip(path, self.datasets.max_files)
            except BatchError:
                self._drop(upload_id)
                raise
        with self.store.session() as session:
            upload = session.get(Upload, upload_id)
            if upload is not None:
                upload.sha256, upload.completed_at = digest, now()

    # --- ending -------------------------------------------------------------------------
    def terminate(self, identity: Identity, upload_id: str) -> None:
        """tus termination: the upload and its bytes go."""
        upload = self.find(identity, upload_id)
        if upload.id in self._busy:
            raise Conflict("the upload is receiving bytes; stop sending first")
        self._drop(upload.id)

    def _drop(self, upload_id: str) -> None:
        self._forget_digest(upload_id)
        with self.store.session() as session:
            session.execute(delete(Upload).where(Upload.id == upload_id))
        self.files.upload(upload_id).unlink(missing_ok=True)

    def expire(self) -> int:
        """Remove unfinished uploads past their expiry, and datasets left with none."""
        moment = now()
        with self.store.session() as session:
            expired = list(
                session.scalars(
                    select(Upload.id).where(
                        Upload.expires_at < moment, Upload.completed_at.is_(None)
                    )
                )
            )
        for upload_id in expired:
            if upload_id not in self._busy:
                self._drop(upload_id)
        with self.store.session() as session:
            empty = list(
                session.scalars(
                    select(Dataset.id).where(
                        Dataset.state == "uploading",
                        Dataset.created_at < moment - self.expiry_seconds,
                        # Nothing arrived for the expiry time (each save moves expires_at on).
                        ~select(Upload.id)
                        .where(Upload.dataset_id == Dataset.id, Upload.expires_at >= moment)
                        .exists(),
                    )
                )
            )
        for dataset_id in empty:
            self.datasets.remove(dataset_id)
        return len(expired)
