"""One person's big upload never stalls anyone else: checks run in worker processes, and the
disk is waited for beside the event loop."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import requests

from tests.batch import Batch
from tests.hub import HubProcess, deep_update
from tests.tus import create_upload, make_file, patch


def big_notebook(cells: int = 20_000, output_chars: int = 3000) -> bytes:
    """About 60 MB of notebook: many cells with outputs (slow to parse and validate)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    for i in range(cells):
        cell = nbformat.v4.new_code_cell(f"x{i} = {i}")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="y" * output_chars)]
        nb.cells.append(cell)
    return nbformat.writes(nb).encode()


def waits_while(work: Callable[[], None], other: Batch) -> list[float]:
    """Run `work` in a thread; meanwhile `other` lists their jobs every 50 ms: each answer's
    wait, in seconds."""
    worker = threading.Thread(target=work)
    worker.start()
    waits = []
    while worker.is_alive():
        t = time.monotonic()
        r = other.call("GET", "jobs")
        waits.append(time.monotonic() - t)
        assert r.status_code == 200
        time.sleep(0.05)
    worker.join()
    return waits


def test_while_a_60_mb_notebook_is_checked_others_are_answered_at_once(
    fresh_hub: HubProcess,
) -> None:
    deep_update(fresh_hub.values, {"batch": {"max_upload_bytes": "100M"}})
    fresh_hub.start()
    uploader, other = Batch(fresh_hub.ready_user("big-ula")), Batch(fresh_hub.ready_user("quick"))
    content = big_notebook()
    assert len(content) > 60 * 10**6
    other.call("GET", "jobs")  # connections warm
    answer: dict[str, requests.Response] = {}

    def inspect() -> None:
        answer["r"] = uploader.call("POST", "inspect", files={"file": ("big.ipynb", content)})

    started = time.monotonic()
    waits = waits_while(inspect, other)
    took = time.monotonic() - started
    assert answer["r"].status_code == 200, answer["r"].text[:300]
    assert answer["r"].json()["kind"] == "notebook"
    # The check overlapped many requests, and none of them waited for it.
    assert took > 2 and len(waits) >= 10, (took, len(waits))
    assert max(waits) < 0.2, f"slowest {max(waits):.3f}s, median {statistics.median(waits):.3f}s"


def test_while_a_big_upload_reaches_the_disk_others_are_answered_at_once(
    fresh_hub: HubProcess, tmp_path: Path
) -> None:
    deep_update(fresh_hub.values, {"data": {"user_quota": "2G"}})
    fresh_hub.start()
    uploader, other = Batch(fresh_hub.ready_user("big-upa")), Batch(fresh_hub.ready_user("quick2"))
    source = tmp_path / "big.bin"
    size = 384 * 2**20
    make_file(source, size)
    assert uploader.call("POST", "datasets", json={"name": "big"}).status_code == 201
    created = create_upload(uploader, size, dataset="big", filename="big.bin")
    assert created.status_code == 201, created.text
    other.call("GET", "jobs")  # connections warm
    answer: dict[str, requests.Response] = {}

    def send() -> None:
        # One PATCH of the whole file, as tus-js-client sends it: acknowledged once on disk.
        with source.open("rb") as body:
            answer["r"] = patch(uploader, created.headers["Location"], 0, body)

    waits = waits_while(send, other)
    assert answer["r"].status_code == 204, answer["r"].text[:300]
    assert int(answer["r"].headers["Upload-Offset"]) == size
    # Its bytes went to disk while others were answered, none of them waiting for the disk.
    assert len(waits) >= 5, len(waits)
    assert max(waits) < 0.2, f"slowest {max(waits):.3f}s, median {statistics.median(waits):.3f}s"
