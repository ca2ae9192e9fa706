"""Resumable uploads and datasets over a real store, without a hub: expiry, paths, quotas."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from batch_service import tus_uploads
from batch_service.datasets import DatasetService
from batch_service.errors import BatchError, TooLarge
from batch_service.files import FileStore, safe_relative
from batch_service.identity import SUBMIT, Identity
from batch_service.quotas import QuotaLimits, QuotaService
from batch_service.store import Store
from batch_service.tus_uploads import UploadService, metadata_header
from tests.conftest import ACCOUNT_PREFIX

ADA = Identity("ada", frozenset({SUBMIT}), ("lab-a",))


@pytest.fixture
def services(tmp_path: Path) -> tuple[DatasetService, UploadService, QuotaService]:
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    store.migrate()
    files = FileStore(tmp_path / "files").prepare()
    quotas = QuotaService(store, QuotaLimits(user_default=1000, group_default=600))
    datasets = DatasetService(store, files, quotas, group_prefix=f"{ACCOUNT_PREFIX}d-")
    return datasets, UploadService(store, files, quotas, datasets, expiry_seconds=60), quotas


def send(uploads: UploadService, upload_id: str, data: bytes, at: int = 0) -> bool:
    patch = uploads.begin_patch(
        ADA, upload_id, str(at), "application/offset+octet-stream", None, None
    )
    uploads.chunk(patch, data)
    return uploads.end_patch(patch)


def test_unfinished_uploads_expire_and_give_their_bytes_back(
    services, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    datasets, uploads, quotas = services
    datasets.create(ADA, {"name": "half"})
    upload = uploads.create(ADA, "500", None, metadata_header(dataset="half", filename="a.bin"))
    assert not send(uploads, upload.id, b"x" * 100)
    with quotas.store.session() as session:
        assert quotas.usage(session, "user", "ada") == 500  # announced bytes are held
    later = tus_uploads.now() + 61
    monkeypatch.setattr(tus_uploads, "now", lambda: later)
    assert uploads.expire() == 1
    assert not uploads.files.upload(upload.id).exists()
    with quotas.store.session() as session:
        assert quotas.usage(session, "user", "ada") == 0
    assert datasets.list(ADA)["datasets"] == []  # the dataset left with nothing went too


def test_a_group_dataset_counts_against_the_group_quota(services) -> None:  # type: ignore[no-untyped-def]
    datasets, uploads, _ = services
    datasets.create(ADA, {"name": "shared", "readers": "group", "group": "lab-a"})
    with pytest.raises(TooLarge, match="group 'lab-a'"):
        uploads.create(ADA, "700", None, metadata_header(dataset="shared", filename="a"))
    upload = uploads.create(ADA, "5", None, metadata_header(dataset="shared", filename="a"))
    assert send(uploads, upload.id, b"hello")
    uploads.finish_upload(upload.id)
    ready = datasets.complete(ADA, "shared")
    assert ready["sha256"] == hashlib.sha256(b"hello").hexdigest() and ready["size"] == 5
    datasets.delete(ADA, "shared")  # its system group goes with it


@pytest.mark.parametrize(
    "path",
    ["../a", "a/../../b", "/abs", "a\\b", "C:x", "a\x00b", "a\u202eb", "x" * 300, "e\u0301", ""],
)
def test_hostile_relative_paths_are_refused(path: str) -> None:
    with pytest.raises(BatchError):
        safe_relative(path)


def test_plain_relative_paths_pass() -> None:
    assert str(safe_relative("train/images/0001.png")) == "train/images/0001.png"
    assert str(safe_relative("résumé.txt")) == "résumé.txt"
