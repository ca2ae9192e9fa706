"""`batchhub data`: datasets from a terminal, with resumable uploads (tuspy).

    batchhub data upload ./cifar --name cifar [--readers group --group lab-a]
    batchhub data list | delete NAME

A file is sent as it is; a folder is first packed into one zip (stored, not compressed, the same
bytes every time so a stopped upload resumes) that the service unpacks. The upload's address is
remembered in ~/.cache/batchhub, so running the same command again after a dropped connection,
a closed terminal or a service restart goes on from the last byte the service saved.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import zipfile
from pathlib import Path
from typing import IO, Any

from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError, TusUploadFailed
from tusclient.fingerprint import fingerprint
from tusclient.storage import filestorage

from batch_service.cli import Api, CliError

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "batchhub"
CHUNK = 16 * 2**20


def add_commands(commands: Any) -> None:
    """The `data` command and its subcommands."""
    data = commands.add_parser("data", help="datasets: upload, list, delete")
    sub = data.add_subparsers(dest="data_command", required=True)
    p = sub.add_parser("upload", help="upload a file or a folder as a dataset (resumable)")
    p.add_argument("path")
    p.add_argument("--name", required=True, help="the dataset's name: it appears at /data/NAME")
    p.add_argument("--readers", choices=("owner", "group", "everyone"), default="owner")
    p.add_argument("--group", help="the hub group that may read it (with --readers group)")
    p.add_argument("--description", default="")
    p.add_argument("--chunk-size", type=int, default=CHUNK, help="bytes per request")
    sub.add_parser("list", help="datasets you may read")
    sub.add_parser("delete", help="delete one of your datasets").add_argument("name")


class DatasetFingerprint(fingerprint.Fingerprint):
    """tuspy's fingerprint plus the dataset and service: one file may go to several."""

    def __init__(self, scope: str) -> None:
        self.scope = scope

    def get_fingerprint(self, fs: IO) -> str:
        """Scope, size and the first block's digest."""
        return f"{self.scope}--{super().get_fingerprint(fs)}"


def pack_folder(folder: Path) -> Path:
    """The folder as one zip in the cache, made the same way each time (resumable)."""
    entries = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            raise CliError(f"{path} is a symbolic link; datasets hold only plain files")
        if path.is_file():
            info = path.stat()
            entries.append((path.relative_to(folder).as_posix(), path, info.st_size, info.st_mtime))
    if not entries:
        raise CliError(f"{folder} holds no files")
    listing = json.dumps([(name, size, mtime) for name, _, size, mtime in entries])
    key = hashlib.sha256(f"{folder.resolve()}\n{listing}".encode()).hexdigest()[:24]
    target = CACHE / "folders" / f"{folder.name}-{key}.zip"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, path, _, _ in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            with path.open("rb") as source, archive.open(info, "w", force_zip64=True) as sink:
                while chunk := source.read(1 << 20):
                    sink.write(chunk)
    partial.replace(target)
    return target


def sha256_file(path: Path) -> str:
    """The file's sha256 (the service checks the whole file against it)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class Progress:
    """One line on stderr: bytes, rate, time left."""

    def __init__(self, total: int, start: int, out: Any = sys.stderr) -> None:
        self.total, self.start, self.out = total, start, out
        self.began = time.monotonic()

    def show(self, offset: int) -> None:
        """Redraw the line."""
        elapsed = max(time.monotonic() - self.began, 1e-6)
        rate = (offset - self.start) / elapsed
        left = (self.total - offset) / rate if rate > 0 else 0
        share = offset / self.total if self.total else 1
        bar = "#" * int(share * 30)
        self.out.write(
            f"\r[{bar:<30}] {share:6.1%} {offset / 2**20:,.1f} of {self.total / 2**20:,.1f} MiB"
            f"  {rate / 2**20:,.1f} MiB/s  {left:,.0f} s left "
        )
        self.out.flush()


def upload(api: Api, args: argparse.Namespace) -> int:
    """Create (or find) the dataset, upload with resume, complete it."""
    source = Path(args.path)
    if not source.exists():
        raise CliError(f"{source} does not exist")
    existing = {d["name"]: d for d in api.json("GET", "datasets")["datasets"]}
    found = existing.get(args.name)
    if found is not None and found["state"] == "ready":
        raise CliError(f"dataset {args.name!r} exists already; pick another name")
    if found is None:
        body = {"name": args.name, "readers": args.readers, "description": args.description}
        if args.group:
            body["group"] = args.group
        api.json("POST", "datasets", body)
    archive = source.is_dir()
    file_path = pack_folder(source) if archive else source
    metadata = {
        "dataset": args.name,
        "filename": file_path.name if not archive else f"{source.name}.zip",
        "sha256": sha256_file(file_path),
    }
    if archive:
        metadata["archive"] = "zip"
    CACHE.mkdir(parents=True, exist_ok=True)
    storage = filestorage.FileStorage(str(CACHE / "uploads.json"))
    scope = hashlib.sha256(f"{api.base}\n{args.name}".encode()).hexdigest()[:16]
    headers = {"Authorization": f"token {api.token}"}
    tus = tus_client.TusClient(api.base + "uploads", headers=headers)

    def make_uploader() -> Any:
        return tus.uploader(
            str(file_path),
            chunk_size=args.chunk_size,
            metadata=metadata,
            store_url=True,
            url_storage=storage,
            fingerprinter=DatasetFingerprint(scope),
            retries=3,
            retry_delay=2,
        )

    try:
        uploader = make_uploader()
    except TusCommunicationError:
        # The remembered upload expired or was removed: start it again.
        storage.remove_item(DatasetFingerprint(scope).get_fingerprint(file_path.open("rb")))
        uploader = make_uploader()
    total = uploader.get_file_size()
    if uploader.offset:
        print(f"resuming at {uploader.offset / 2**20:,.1f} MiB", file=sys.stderr)
    progress = Progress(total, uploader.offset)
    try:
        uploader.stop_at = total
        while uploader.offset < total or not uploader.url:
            uploader.upload_chunk()
            progress.show(uploader.offset)
    except (TusUploadFailed, TusCommunicationError) as e:
        raise CliError(
            f"upload stopped: {tus_message(e)}; run the same command to resume"
        ) from None
    print(file=sys.stderr)
    storage.remove_item(DatasetFingerprint(scope).get_fingerprint(file_path.open("rb")))
    ready = api.json("POST", f"datasets/{args.name}/complete", {})
    summary = f"{ready['files']} file(s), {ready['size']} bytes, sha256 {ready['sha256']}"
    print(f"{ready['name']}: {summary}")
    print(f"readable at {ready['path']} in your servers and batch runs")
    return 0


def tus_message(error: Exception) -> str:
    """The service's message in a tus client error, else the error."""
    body = getattr(error, "response_content", None)
    try:
        return json.loads(body)["message"] if body else str(error)
    except (ValueError, KeyError, TypeError):
        return str(error)


def run(api: Api, args: argparse.Namespace) -> int:
    """Dispatch `batchhub data ...`."""
    if args.data_command == "upload":
        return upload(api, args)
    if args.data_command == "list":
        for d in api.json("GET", "datasets")["datasets"]:
            readers = d["readers"] + (f" ({d['group']})" if d["group"] else "")
            print(f"{d['name']:<24} {d['state']:<10} {d['size']:>14} {d['owner']:<16} {readers}")
        return 0
    api.call("DELETE", f"datasets/{args.name}")
    return 0
