"""Helpers for the dataset tests: a user's view of the tus endpoint and of the file store."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from tests.batch import Batch
from tests.hub import HubProcess

TUS = {"Tus-Resumable": "1.0.0"}


def metadata(**items: str) -> str:
    """Upload-Metadata from keyword arguments."""
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in items.items())


def create_upload(batch: Batch, length: int | None, **meta: str) -> requests.Response:
    """tus creation (length None: deferred)."""
    headers = {**TUS, "Upload-Metadata": metadata(**meta)}
    if length is None:
        headers["Upload-Defer-Length"] = "1"
    else:
        headers["Upload-Length"] = str(length)
    return batch.call("POST", "uploads", headers=headers)


def patch(batch: Batch, location: str, offset: int, data: Any, **headers: str) -> requests.Response:
    """A tus PATCH at an offset."""
    return batch.user.api(
        "PATCH",
        location,
        data=data,
        headers={
            **TUS,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            **headers,
        },
    )


def files_dir(hub: HubProcess) -> Path:
    """The hub's file store folder."""
    return hub.state_dir / "state" / "batch" / "files"


def make_file(path: Path, size: int, block: int = 8 * 2**20) -> None:
    """A file of random bytes."""
    with path.open("wb") as f:
        left = size
        while left:
            n = min(block, left)
            f.write(os.urandom(n))
            left -= n


def cli(
    batch: Batch, cache: Path, *args: str, background: bool = False
) -> subprocess.Popen | subprocess.CompletedProcess:
    """Run `batchhub` as the user (their token, this hub, a cache folder of the test's)."""
    env = dict(
        os.environ,
        JUPYTERHUB_API_TOKEN=batch.user.token or "",
        BATCHHUB_URL=batch.user.hub.url,
        XDG_CACHE_HOME=str(cache),
    )
    command = [str(Path(sys.executable).parent / "batchhub"), *args]
    if background:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def small_dataset(batch: Batch, name: str, files: dict[str, bytes], **fields: str) -> dict:
    """Create, upload (one PATCH per file) and complete a dataset; return it."""
    r = batch.call("POST", "datasets", json={"name": name, **fields})
    assert r.status_code == 201, r.text
    for path, content in files.items():
        r = create_upload(batch, len(content), dataset=name, filename=path)
        assert r.status_code == 201, r.text
        assert patch(batch, r.headers["Location"], 0, content).status_code == 204
    r = batch.call("POST", f"datasets/{name}/complete")
    assert r.status_code == 200, r.text
    return r.json()
