"""Datasets over real HTTP: resumable uploads with tuspy (the CLI), quotas, readers, refusals."""

from __future__ import annotations

import hashlib
import io
import os
import re
import signal
import stat
import time
import zipfile
from pathlib import Path

import pytest

from tests.batch import Batch
from tests.hub import HubProcess
from tests.tus import TUS, cli, create_upload, files_dir, make_file, patch


@pytest.fixture(scope="module")
def people(hub: HubProcess) -> dict[str, Batch]:
    """Two users in no group, and the admin."""
    return {
        "ada": Batch(hub.ready_user("ds-ada")),
        "ben": Batch(hub.ready_user("ds-ben")),
        "admin": Batch(hub.admin()),
    }


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def upload_files(hub: HubProcess) -> set[Path]:
    return set((files_dir(hub) / "uploads").iterdir())


@pytest.fixture(autouse=True)
def _nothing_left_behind(hub: HubProcess):  # type: ignore[no-untyped-def]
    """Every test here ends with no unfinished upload of its own left in the store."""
    before = upload_files(hub)
    yield
    assert upload_files(hub) <= before


def wait_for_bytes(hub: HubProcess, at_least: int, timeout: float = 120) -> None:
    """Until some unfinished upload in the store holds at least that many bytes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.stat().st_size >= at_least for p in upload_files(hub)):
            return
        time.sleep(0.05)
    raise TimeoutError(f"no upload reached {at_least} bytes")


def test_a_200_mb_upload_killed_halfway_resumes_and_arrives_whole(
    hub: HubProcess, people: dict[str, Batch], tmp_path: Path
) -> None:
    ada = people["ada"]
    source = tmp_path / "weights.bin"
    size = 200 * 2**20
    make_file(source, size)
    cache = tmp_path / "cache"
    first = cli(
        ada,
        cache,
        "data",
        "upload",
        str(source),
        "--name",
        "weights",
        "--chunk-size",
        str(8 * 2**20),
        background=True,
    )
    wait_for_bytes(hub, size // 2)
    first.send_signal(signal.SIGKILL)  # the client dies mid-upload
    first.wait()
    pending = ada.call("GET", "datasets/weights").json()
    assert pending["state"] == "uploading"
    saved = pending["uploads"][0]["offset"]
    assert 0 < saved < size
    # Nobody else sees a dataset that is not complete.
    assert "weights" not in str(people["ben"].call("GET", "datasets").json())

    second = cli(ada, cache, "data", "upload", str(source), "--name", "weights")
    assert second.returncode == 0, second.stderr
    assert "resuming at" in second.stderr
    ready = ada.call("GET", "datasets/weights").json()
    assert ready["state"] == "ready" and ready["size"] == size and ready["files"] == 1
    assert ready["sha256"] == sha256(source)
    stored = files_dir(hub) / "datasets" / ready["id"] / "weights.bin"
    assert sha256(stored) == ready["sha256"]
    # The upload's bytes became the dataset's (the fixture checks nothing else is left).
    # Root-owned and never writable, by anyone.
    info = stored.stat()
    assert info.st_uid == 0 and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    assert ada.call("DELETE", "datasets/weights").status_code == 204
    assert not stored.exists()


def test_the_service_killed_mid_upload_resumes_after_its_restart(
    hub: HubProcess, people: dict[str, Batch], tmp_path: Path
) -> None:
    ben = people["ben"]
    source = tmp_path / "table.bin"
    size = 96 * 2**20
    make_file(source, size)
    cache = tmp_path / "cache"
    running = cli(
        ben,
        cache,
        "data",
        "upload",
        str(source),
        "--name",
        "table",
        "--chunk-size",
        str(96 * 2**20),
        background=True,
    )
    # Killed once the service has saved an offset to resume from (bytes on disk alone may be
    # ahead of what it saved: it saves every few MiB).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pending = ben.call("GET", "datasets/table")
        if pending.status_code == 200 and any(u["offset"] for u in pending.json()["uploads"]):
            break
        time.sleep(0.02)
    os.kill(hub.service_pid(), signal.SIGKILL)
    # The client goes down with it (its own retries could otherwise bridge a quick restart,
    # which would leave nothing to resume): what the service saved is all there is.
    running.send_signal(signal.SIGKILL)
    running.wait(timeout=120)
    # The hub restarts its service; the same command goes on from what the service saved.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if ben.call("GET", "datasets").status_code == 200:
                break
        except OSError:
            pass
        time.sleep(0.5)
    again = cli(ben, cache, "data", "upload", str(source), "--name", "table")
    assert again.returncode == 0, again.stderr
    resumed_at = re.search(r"resuming at ([\d,.]+) MiB", again.stderr)
    assert resumed_at and float(resumed_at.group(1).replace(",", "")) > 0, again.stderr
    ready = ben.call("GET", "datasets/table").json()
    assert ready["sha256"] == sha256(source) and ready["size"] == size
    ben.call("DELETE", "datasets/table")


def test_a_folder_is_one_dataset_and_readers_decide_who_sees_it(
    hub: HubProcess, people: dict[str, Batch], tmp_path: Path
) -> None:
    ada, ben, admin = people["ada"], people["ben"], people["admin"]
    folder = tmp_path / "cifar"
    (folder / "train").mkdir(parents=True)
    (folder / "train" / "a.csv").write_text("x,y\n1,2\n")
    (folder / "labels.txt").write_text("cat\ndog\n")
    done = cli(ada, tmp_path / "cache", "data", "upload", str(folder), "--name", "cifar")
    assert done.returncode == 0, done.stderr
    ready = ada.call("GET", "datasets/cifar").json()
    assert ready["files"] == 2 and ready["size"] == len("x,y\n1,2\n") + len("cat\ndog\n")
    folder_in_store = files_dir(hub) / "datasets" / ready["id"]
    assert (folder_in_store / "train" / "a.csv").read_text() == "x,y\n1,2\n"
    # Owner-only: not listed, not readable for others; the admin sees the entry.
    assert "cifar" not in str(ben.call("GET", "datasets").json())
    assert ben.call("GET", "datasets/cifar").status_code == 404
    assert ben.call("DELETE", "datasets/cifar").status_code == 404
    assert "cifar" in str(admin.call("GET", "datasets").json())
    r = ada.call("POST", "datasets", json={"name": "shared", "readers": "everyone"})
    assert r.status_code == 201, r.text
    # Readable by everyone once complete; until then nobody else sees it.
    assert ben.call("GET", "datasets/shared").status_code == 404
    assert "shared" not in str(ben.call("GET", "datasets").json())
    r = ada.call("POST", "datasets", json={"name": "lab", "readers": "group", "group": "lab-a"})
    assert r.status_code == 400 and "your groups" in r.json()["message"]
    ada.call("DELETE", "datasets/cifar")
    ada.call("DELETE", "datasets/shared")


@pytest.mark.parametrize(
    "name",
    ["../etc", "a/b", "a\x00b", "x" * 65, "dаta", "data\u202e", "..", ".hidden", "Upper", ""],
)
def test_hostile_dataset_names_are_refused_and_nothing_is_stored(
    people: dict[str, Batch], name: str
) -> None:
    ada = people["ada"]
    r = ada.call("POST", "datasets", json={"name": name})
    assert r.status_code == 400 and "not allowed" in r.json()["message"]
    assert ada.call("GET", "datasets").json()["datasets"] == []


def test_upload_refusals_say_why_and_keep_nothing(
    hub: HubProcess, people: dict[str, Batch]
) -> None:
    ada, ben = people["ada"], people["ben"]
    assert ada.call("POST", "datasets", json={"name": "refusals"}).status_code == 201
    for bad in ("../x", "/etc/passwd", "a/../../b", "x\x00y"):
        r = create_upload(ada, 10, dataset="refusals", filename=bad)
        assert r.status_code == 400, (bad, r.text)
    # Another user's dataset, and no version header.
    assert create_upload(ben, 10, dataset="refusals", filename="a").status_code == 404
    r = ada.call("POST", "uploads", headers={"Upload-Length": "1"})
    assert r.status_code == 412 and r.headers["Tus-Resumable"] == "1.0.0"
    r = create_upload(ada, 10, dataset="refusals", filename="a.bin")
    assert r.status_code == 201
    location = r.headers["Location"]
    # A PATCH at the wrong offset, and another user's upload id.
    r = patch(ada, location, 5, b"12345")
    assert r.status_code == 409 and "at byte 0" in r.json()["message"]
    for method in ("HEAD", "DELETE"):
        assert ben.user.api(method, f"{hub.url}{location}", headers=TUS).status_code == 404
    assert patch(ben, location, 0, b"12345").status_code == 404
    # A wrong per-PATCH checksum (tus checksum extension): 460, the offset stays.
    r = patch(
        ada, location, 0, b"12345", **{"Upload-Checksum": "sha1 AAAAAAAAAAAAAAAAAAAAAAAAAAA="}
    )
    assert r.status_code == 460
    head = ada.user.api("HEAD", f"{hub.url}{location}", headers=TUS)
    assert head.headers["Upload-Offset"] == "0"
    assert ada.user.api("DELETE", f"{hub.url}{location}", headers=TUS).status_code == 204
    assert ada.user.api("HEAD", f"{hub.url}{location}", headers=TUS).status_code == 404
    ada.call("DELETE", "datasets/refusals")


def zip_with(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(zipfile.ZipInfo(name), content)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (zip_with({"ok.txt": b"1"}, links={"link": "/etc/shadow"}), "symbolic link"),
        (zip_with({"/etc/cron.d/x": b"1"}), "absolute path"),
        (zip_with({"../../escape.txt": b"1"}), "outside its folder"),
        (b"not a zip at all", "not one"),
    ],
)
def test_a_hostile_zip_folder_upload_is_refused_and_nothing_is_stored(
    hub: HubProcess, people: dict[str, Batch], archive: bytes, message: str
) -> None:
    ada = people["ada"]
    assert ada.call("POST", "datasets", json={"name": "zipped"}).status_code == 201
    r = create_upload(ada, len(archive), dataset="zipped", filename="f.zip", archive="zip")
    r = patch(ada, r.headers["Location"], 0, archive)
    assert r.status_code == 400 and message in r.json()["message"], r.text
    assert ada.call("GET", "datasets/zipped").json()["uploads"] == []
    assert ada.call("POST", "datasets/zipped/complete").status_code == 400  # nothing uploaded
    ada.call("DELETE", "datasets/zipped")


def test_quotas_refuse_at_creation_and_mid_stream_with_nothing_left(
    hub: HubProcess, people: dict[str, Batch]
) -> None:
    ben, admin = people["ben"], people["admin"]
    used = ben.call("GET", "quotas").json()["user"]["used"]
    quota = used + 4 * 2**20
    r = admin.call("PUT", "quotas", json={"kind": "user", "name": "ds-ben", "bytes": quota})
    assert r.status_code == 200, r.text
    assert (
        ben.call("PUT", "quotas", json={"kind": "user", "name": "ds-ben", "bytes": 1}).status_code
        == 403
    )
    try:
        assert ben.call("POST", "datasets", json={"name": "quota"}).status_code == 201
        # Announced over the quota: refused at creation.
        r = create_upload(ben, 5 * 2**20, dataset="quota", filename="big.bin")
        assert r.status_code == 413 and "quota" in r.json()["message"]
        # Length deferred: refused while the bytes arrive, the partial upload removed.
        r = create_upload(ben, None, dataset="quota", filename="stream.bin")
        assert r.status_code == 201
        location = r.headers["Location"]
        r = patch(ben, location, 0, os.urandom(6 * 2**20))
        assert r.status_code == 413 and "quota" in r.json()["message"]
        assert ben.user.api("HEAD", f"{hub.url}{location}", headers=TUS).status_code == 404
        assert not (files_dir(hub) / "uploads" / location.rsplit("/", 1)[-1]).exists()
        assert ben.call("GET", "quotas").json()["user"]["used"] == used
    finally:
        admin.call("PUT", "quotas", json={"kind": "user", "name": "ds-ben", "bytes": None})
        ben.call("DELETE", "datasets/quota")


def test_tus_discovery_names_the_extensions(people: dict[str, Batch]) -> None:
    r = people["ada"].call("OPTIONS", "uploads")
    assert r.status_code == 204
    assert set(r.headers["Tus-Extension"].split(",")) >= {
        "creation",
        "termination",
        "checksum",
        "expiration",
    }
