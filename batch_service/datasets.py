"""Datasets: files users bring, read-only at /data/<name> for the readers the owner chooses.

A dataset is created `uploading`, filled by resumable uploads (batch_service.tus_uploads), and
becomes `ready` only when its owner completes it: every upload whole and checksum-verified,
archives unpacked with every member checked, files moved into place by one rename of the
folder. Nothing half-written is ever visible to a run. Readers: the owner, a hub group, or
everyone. The mount index (datasets.json in the file store) tells spawners which ready datasets
each user may read and under which group id their files are readable.
"""

from __future__ import annotations

import grp
import hashlib
import json
import os
import re
import secrets
import shutil
import string
import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from batch_service.clock import now
from batch_service.errors import BatchError, Conflict, NotFound, TooLarge
from batch_service.files import FileStore, safe_relative
from batch_service.identity import Identity
from batch_service.quotas import QuotaService
from batch_service.store import Dataset, Store, Upload

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}", re.ASCII)
READERS = ("owner", "group", "everyone")
INDEX = "datasets.json"


def check_name(name: Any) -> str:
    """A dataset name: becomes /data/<name>, so plain lowercase ASCII, no dots in a row."""
    if not isinstance(name, str) or not NAME.fullmatch(name) or ".." in name or name[-1] == ".":
        shown = repr(name)[:80]
        raise BatchError(
            f"the dataset name {shown} is not allowed: use 1 to 64 lowercase letters, digits, "
            "'-', '_' or '.', starting with a letter or digit (it becomes /data/<name>)"
        )
    return name


def new_dataset_id() -> str:
    """Like job ids: 10 characters of [a-z0-9], starting with a letter."""
    alphabet = string.ascii_lowercase + string.digits
    return "d" + "".join(secrets.choice(alphabet) for _ in range(9))


def dataset_view(ds: Dataset, uploads: list[Upload] | None = None) -> dict[str, Any]:
    """The API form of a dataset."""
    view: dict[str, Any] = {
        "id": ds.id,
        "name": ds.name,
        "owner": ds.owner,
        "readers": ds.readers,
        "group": ds.group_name,
        "state": ds.state,
        "size": ds.size,
        "files": ds.files,
        "sha256": ds.sha256,
        "description": ds.description,
        "created_at": ds.created_at,
        "ready_at": ds.ready_at,
        "path": f"/data/{ds.name}",
    }
    if uploads is not None:
        view["uploads"] = [
            {"id": u.id, "path": u.path, "length": u.length, "offset": u.offset} for u in uploads
        ]
    return view


class DatasetService:
    """Create, list, complete and delete datasets; keep the mount index current."""

    def __init__(
        self,
        store: Store,
        files: FileStore,
        quotas: QuotaService,
        max_files: int = 100_000,
        group_prefix: str = "bhd-",
    ) -> None:
        self.store = store
        self.files = files
        self.quotas = quotas
        self.max_files = max_files
        self.group_prefix = group_prefix

    # --- who may do what ----------------------------------------------------------------
    @staticmethod
    def may_read(identity: Identity, ds: Dataset) -> bool:
        """Owner, members of the readers group, everyone; admins see every dataset's entry."""
        return (
            ds.owner == identity.name
            or ds.readers == "everyone"
            or (ds.readers == "group" and ds.group_name in identity.groups)
            or identity.is_admin
        )

    def _find(self, session: Session, identity: Identity, name: str) -> Dataset:
        ds = (
            session.scalar(select(Dataset).where(Dataset.name == name))
            if NAME.fullmatch(str(name))
            else None
        )
        if ds is None or not self.may_read(identity, ds):
            raise NotFound(f"no dataset {str(name)[:80]!r}")
        if ds.state != "ready" and ds.owner != identity.name and not identity.is_admin:
            raise NotFound(f"no dataset {str(name)[:80]!r}")  # nothing half-written is seen
        return ds

    def owned(self, session: Session, identity: Identity, name: str) -> Dataset:
        """A dataset the identity may change (its owner or an admin), else 403/404."""
        ds = self._find(session, identity, name)
        if ds.owner != identity.name and not identity.is_admin:
            raise BatchError("only the dataset's owner may change it", status=403)
        return ds

    # --- creating and listing --------------------------------------------------------------
    def create(self, identity: Identity, body: Any) -> dict[str, Any]:
        """A new dataset, `uploading` until completed."""
        if not identity.can_submit:
            raise BatchError("you may not create datasets", status=403)
        if not isinstance(body, dict):
            raise BatchError('send {"name": ..., "readers": "owner" | "group" | "everyone"}')
        unknown = sorted(set(body) - {"name", "readers", "group", "description"})
        if unknown:
            raise BatchError(f"unknown fields {', '.join(map(repr, unknown))[:200]}")
        name = check_name(body.get("name"))
        readers = body.get("readers") or "owner"
        if readers not in READERS:
            raise BatchError(f"readers must be one of {', '.join(READERS)}")
        group = body.get("group") or None
        if readers == "group":
            if not isinstance(group, str) or group not in identity.groups:
                mine = ", ".join(sorted(identity.groups)) or "none"
                raise BatchError(f"choose one of your groups as readers; yours: {mine}")
        else:
            group = None
        description = body.get("description") or ""
        if not isinstance(description, str) or len(description) > 2000:
            raise BatchError("the description must be text of at most 2000 characters")
        ds = Dataset(
            id=new_dataset_id(),
            name=name,
            owner=identity.name,
            readers=readers,
            group_name=group,
            state="uploading",
            size=0,
            files=0,
            sha256="",
            description=description,
            created_at=now(),
        )
        with self.store.session() as session:
            if session.scalar(select(Dataset.id).where(Dataset.name == name)):
                raise Conflict(f"a dataset named {name!r} exists already; pick another name")
            session.add(ds)
        return dataset_view(ds, [])

    def list(self, identity: Identity) -> dict[str, Any]:
        """Ready datasets the caller may read, and their own unfinished ones with progress."""
        with self.store.session() as session:
            rows = session.scalars(select(Dataset).order_by(Dataset.name)).all()
            visible = [
                ds
                for ds in rows
                if self.may_read(identity, ds)
                and (ds.state == "ready" or ds.owner == identity.name)
            ]
            uploads: dict[str, list[Upload]] = {}
            pending = [ds.id for ds in visible if ds.state != "ready"]
            if pending:
                for up in session.scalars(select(Upload).where(Upload.dataset_id.in_(pending))):
                    uploads.setdefault(up.dataset_id, []).append(up)
            return {
                "datasets": [
                    dataset_view(ds, uploads.get(ds.id, []) if ds.state != "ready" else None)
                    for ds in visible
                ]
            }

    def get(self, identity: Identity, name: str) -> dict[str, Any]:
        """One dataset."""
        with self.store.session() as session:
            ds = self._find(session, identity, name)
            ups = session.scalars(select(Upload).where(Upload.dataset_id == ds.id)).all()
            return dataset_view(ds, list(ups) if ds.state != "ready" else None)

    # --- completing -----------------------------------------------------------------------
    def complete(self, identity: Identity, name: str) -> dict[str, Any]:
        """Make an uploaded dataset ready (call off the event loop: it moves and unpacks)."""
        with self.store.session() as session:
            ds = self.owned(session, identity, name)
            if ds.state == "ready":
                raise Conflict(f"dataset {name!r} is complete already")
            uploads = list(session.scalars(select(Upload).where(Upload.dataset_id == ds.id)))
            if not uploads:
                raise BatchError(f"nothing was uploaded to dataset {name!r} yet")
            unfinished = [u.path for u in uploads if u.completed_at is None]
            if unfinished:
                raise Conflict(
                    f"{len(unfinished)} upload(s) of dataset {name!r} are not finished yet, "
                    f"e.g. {unfinished[0]!r}; resume them, then complete the dataset"
                )
            announced = sum(u.length or u.offset for u in uploads)
            owner, group, dataset_id = ds.owner, ds.group_name, ds.id
        staging = self.files.staging()
        staging.mkdir()
        try:
            sums = self._assemble(staging, uploads, owner, group, announced)
        except BatchError:
            shutil.rmtree(staging, ignore_errors=True)
            # A refused dataset keeps nothing: its uploads and its entry go.
            self.remove(dataset_id)
            raise
        total = sum(size for _, size, _ in sums)
        manifest = "".join(f"{digest}  {path}\n" for path, _, digest in sums)
        # One file: its own sha256; more: the sha256 of the manifest (sha256sum's format).
        digest = sums[0][2] if len(sums) == 1 else hashlib.sha256(manifest.encode()).hexdigest()
        (self.files.root / "datasets" / f"{dataset_id}.sha256sums").write_text(manifest)
        with self.store.session() as session:
            ds = session.get(Dataset, dataset_id)
            if ds is None:  # deleted meanwhile
                shutil.rmtree(staging, ignore_errors=True)
                raise NotFound(f"no dataset {name!r}")
            gid = self._protect(staging, ds)
            self.files.move_into_place(staging, self.files.dataset(dataset_id))
            ds.state, ds.size, ds.files, ds.sha256 = "ready", total, len(sums), digest
            ds.ready_at = now()
            session.execute(delete(Upload).where(Upload.dataset_id == dataset_id))
            view = dataset_view(ds)
            view["gid"] = gid
        for upload in uploads:
            self.files.upload(upload.id).unlink(missing_ok=True)
        self.write_index()
        return view

    def _assemble(
        self, staging: Path, uploads: list[Upload], owner: str, group: str | None, announced: int
    ) -> list[tuple[str, int, str]]:
        """Put every upload's file (or archive's members) in place; (path, size, sha256)."""
        from batch_service.dataset_archives import unpack_zip

        sums: list[tuple[str, int, str]] = []
        for upload in sorted(uploads, key=lambda u: (u.archive, u.path)):
            source = self.files.upload(upload.id)
            if upload.archive:
                with self.store.session() as session:
                    room = self._room(session, owner, group, announced)
                sums.extend(unpack_zip(source, staging, self.max_files - len(sums), room))
                continue
            target = staging / str(safe_relative(upload.path, "file path"))
            if target.exists() or any(p.is_file() for p in target.parents if p != staging):
                raise BatchError(f"the path {upload.path!r} is in the dataset twice")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, target)
            sums.append((upload.path, upload.length or upload.offset, upload.sha256))
        if len(sums) > self.max_files:
            raise BatchError(f"a dataset holds at most {self.max_files} files")
        seen: set[str] = set()
        for path, _, _ in sums:
            if path in seen:
                raise BatchError(f"the path {path!r} is in the dataset twice")
            seen.add(path)
        total = sum(size for _, size, _ in sums)
        if total > announced:
            with self.store.session() as session:
                room = self._room(session, owner, group, announced)
            if total > room:
                raise TooLarge("the unpacked dataset is over your storage quota")
        return sorted(sums)

    def _room(self, session: Session, owner: str, group: str | None, announced: int) -> int:
        """Bytes this dataset may hold: what it announced plus what the quotas leave."""
        return announced + self.quotas.room(session, owner, group)

    def _protect(self, folder: Path, ds: Dataset) -> int | None:
        """Files owned by root, readable by the dataset's group (or everyone), never writable."""
        gid = None
        if os.geteuid() == 0 and ds.readers != "everyone":
            gid = self._group_id(ds.id)
        dir_mode, file_mode = (0o755, 0o644) if ds.readers == "everyone" else (0o750, 0o640)
        if os.geteuid() != 0:
            dir_mode, file_mode = 0o555, 0o444
        for path in [folder, *folder.rglob("*")]:
            if os.geteuid() == 0:
                os.lchown(path, 0, gid if gid is not None else 0)
            os.chmod(path, dir_mode if path.is_dir() else file_mode)
        return gid

    def _group_id(self, dataset_id: str) -> int:
        name = self.group_prefix + dataset_id
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            subprocess.run(["groupadd", "--system", name], check=True, capture_output=True)
            return grp.getgrnam(name).gr_gid

    # --- deleting -----------------------------------------------------------------------
    def delete(self, identity: Identity, name: str) -> None:
        """Delete a dataset, its files and unfinished uploads: the space is free again."""
        with self.store.session() as session:
            ds = self.owned(session, identity, name)
            dataset_id = ds.id
        self.remove(dataset_id)

    def remove(self, dataset_id: str) -> None:
        """Remove a dataset and everything of it (no checks)."""
        with self.store.session() as session:
            upload_ids = list(
                session.scalars(select(Upload.id).where(Upload.dataset_id == dataset_id))
            )
            session.execute(delete(Upload).where(Upload.dataset_id == dataset_id))
            session.execute(delete(Dataset).where(Dataset.id == dataset_id))
        for upload_id in upload_ids:
            self.files.upload(upload_id).unlink(missing_ok=True)
        self.files.remove(self.files.dataset(dataset_id))
        (self.files.root / "datasets" / f"{dataset_id}.sha256sums").unlink(missing_ok=True)
        if os.geteuid() == 0:
            subprocess.run(["groupdel", self.group_prefix + dataset_id], capture_output=True)
        self.write_index()

    # --- the mount index ---------------------------------------------------------------
    def write_index(self) -> None:
        """datasets.json: ready datasets with readers, folder and group id, for spawners."""
        with self.store.session() as session:
            rows = session.scalars(select(Dataset).where(Dataset.state == "ready")).all()
            entries = [
                {
                    "id": ds.id,
                    "name": ds.name,
                    "owner": ds.owner,
                    "readers": ds.readers,
                    "group": ds.group_name,
                    "folder": f"datasets/{ds.id}",
                    "gid": self._existing_gid(ds),
                }
                for ds in rows
            ]
        target = self.files.root / INDEX
        temporary = self.files.staging()
        temporary.write_text(json.dumps({"datasets": entries}, indent=1))
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)

    def _existing_gid(self, ds: Dataset) -> int | None:
        if ds.readers == "everyone":
            return None
        try:
            return grp.getgrnam(self.group_prefix + ds.id).gr_gid
        except KeyError:
            return None
