"""Datasets at /data/<name> in batch runs: readable by readers, invisible to others, never
writable; lab volumes for members of their groups, files there owned by the person."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from tests.batch import Batch, notebook
from tests.conftest import ACCOUNT_PREFIX
from tests.hub import HubProcess
from tests.tus import files_dir, small_dataset

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="private mounts need root; CI is root")

PROBE = notebook(
    "import os, json\n"
    "seen = sorted(os.listdir('/data'))\n"
    "def read(p):\n"
    "    try:\n"
    "        return open(p).read()\n"
    "    except OSError as e:\n"
    "        return type(e).__name__\n"
    "def write(p):\n"
    "    try:\n"
    "        open(p, 'w').write('x')\n"
    "        return 'written'\n"
    "    except OSError as e:\n"
    "        return type(e).__name__\n"
    "report = {'seen': seen, 'mine': read('/data/mine/hello.txt'),\n"
    "          'store': read(STORE), 'write': write('/data/mine/new.txt'),\n"
    "          'replace': write('/data/mine/hello.txt'),\n"
    "          'env': os.environ.get('BATCHHUB_DATA_DIR')}\n"
    "print('REPORT ' + json.dumps(report))",
    parameters="STORE = ''",
)


def report(batch: Batch, store_path: str) -> dict:
    import json

    r = batch.submit("probe.ipynb", PROBE, parameters={"STORE": store_path})
    assert r.status_code == 201, r.text
    job = batch.wait(r.json()["id"], timeout=180)
    batch.call("POST", f"jobs/{job['id']}/release")
    lines = [line for line in batch.logs(job["id"]) if line.startswith("REPORT ")]
    assert job["state"] == "succeeded" and lines, (job, batch.logs(job["id"]))
    return json.loads(lines[0][len("REPORT ") :])


def test_a_dataset_is_readable_by_its_reader_only_and_never_writable(hub: HubProcess) -> None:
    owner, other = Batch(hub.ready_user("mnt-ola")), Batch(hub.ready_user("mnt-pia"))
    mine = small_dataset(owner, "mine", {"hello.txt": b"hello from ola"})
    small_dataset(owner, "public", {"readme.txt": b"for everyone"}, readers="everyone")
    store_path = str(files_dir(hub) / "datasets" / mine["id"] / "hello.txt")
    try:
        seen = report(owner, store_path)
        assert seen["seen"] == ["mine", "public"]
        assert seen["mine"] == "hello from ola"
        assert seen["write"] in ("OSError", "PermissionError")  # read-only file system
        assert seen["replace"] in ("OSError", "PermissionError")
        assert seen["env"] == "/data"

        other_seen = report(other, store_path)
        assert other_seen["seen"] == ["public"]  # not listed
        assert other_seen["mine"] == "FileNotFoundError"
        assert other_seen["store"] == "PermissionError"  # nor readable through the store
    finally:
        owner.call("DELETE", "datasets/mine")
        owner.call("DELETE", "datasets/public")
    assert not Path(store_path).exists()


def test_a_group_dataset_reaches_members_only(hub: HubProcess) -> None:
    admin = hub.admin()
    for name in ("mnt-quin", "mnt-rosa"):
        hub.ready_user(name)
    r = admin.api("POST", "/hub/api/groups/lab-a/users", json={"users": ["mnt-quin"]})
    assert r.status_code == 200, r.text
    quin, rosa = Batch(hub.user("mnt-quin")), Batch(hub.user("mnt-rosa"))
    for person in (quin, rosa):
        person.user.login()
        person.user.create_token()
    lab = small_dataset(quin, "lab-shared", {"a.txt": b"lab data"}, readers="group", group="lab-a")
    try:
        member = report(quin, "")
        assert "lab-shared" in member["seen"]
        outsider = report(rosa, "")
        assert "lab-shared" not in outsider["seen"]
    finally:
        quin.call("DELETE", "datasets/lab-shared")
    assert lab["readers"] == "group"


def test_dataset_files_are_owned_by_root_and_its_group(hub: HubProcess) -> None:
    owner = Batch(hub.ready_user("mnt-sam"))
    ds = small_dataset(owner, "owned", {"x/y.txt": b"y"})
    try:
        folder = files_dir(hub) / "datasets" / ds["id"]
        info = (folder / "x" / "y.txt").stat()
        assert info.st_uid == 0 and oct(info.st_mode & 0o777) == "0o640"
        import grp

        assert grp.getgrgid(info.st_gid).gr_name == f"{ACCOUNT_PREFIX}d-{ds['id']}"
        assert pwd.getpwuid(info.st_uid).pw_name == "root"
    finally:
        owner.call("DELETE", "datasets/owned")


WRITE_LAB = notebook(
    "import os\n"
    "path = os.path.join(LAB, 'result.txt')\n"
    "try:\n"
    "    open(path, 'w').write('from ' + os.environ['USER'])\n"
    "    print('LAB wrote')\n"
    "except OSError as e:\n"
    "    print('LAB ' + type(e).__name__)",
    parameters="LAB = ''",
)


def test_a_lab_volume_is_mounted_for_its_group_and_files_belong_to_the_person(
    fresh_hub: HubProcess, tmp_path: Path
) -> None:
    import secrets
    import shutil

    host = tmp_path / "lab-storage"
    host.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(host, 0o1777)  # the lab's folder: its members write there
    mount_root = Path(f"/batchhub-test-{secrets.token_hex(3)}")
    mount = mount_root / "lab"
    fresh_hub.values["data"] = {
        "lab_volumes": [
            {"name": "lab-a", "groups": ["lab-a"], "mount_path": str(mount), "host_path": str(host)}
        ]
    }
    # A member of this hub's own: an account the session's hub uses (and may be running
    # servers under) cannot be moved to this hub's homes.
    groups = {**fresh_hub.values["hub"]["extra_groups"], "lab-a": ["lab-ida"]}
    fresh_hub.values["hub"] = {**fresh_hub.values["hub"], "extra_groups": groups}
    fresh_hub.start()
    try:
        member = Batch(fresh_hub.ready_user("lab-ida"))
        outsider = Batch(fresh_hub.ready_user("lab-tom"))
        for person, expected in ((member, "LAB wrote"), (outsider, "LAB PermissionError")):
            r = person.submit("lab.ipynb", WRITE_LAB, parameters={"LAB": str(mount)})
            job = person.wait(r.json()["id"], timeout=180)
            person.call("POST", f"jobs/{job['id']}/release")
            assert expected in person.logs(job["id"]), person.logs(job["id"])
        written = host / "result.txt"
        owner = pwd.getpwuid(written.stat().st_uid).pw_name
        assert owner.endswith("lab-ida") and owner != "root"
        assert written.read_text() == f"from {owner}"
        assert not any(mount.iterdir())  # on the host the mount point stays empty
    finally:
        fresh_hub.stop()
        shutil.rmtree(mount_root, ignore_errors=True)
