"""One person's big upload never stalls anyone else: checks run in worker processes."""

from __future__ import annotations

import statistics
import threading
import time

import nbformat
import requests

from tests.batch import Batch
from tests.hub import HubProcess, deep_update


def big_notebook(cells: int = 20_000, output_chars: int = 3000) -> bytes:
    """About 60 MB of notebook: many cells with outputs (slow to parse and validate)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    for i in range(cells):
        cell = nbformat.v4.new_code_cell(f"x{i} = {i}")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="y" * output_chars)]
        nb.cells.append(cell)
    return nbformat.writes(nb).encode()


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

    worker = threading.Thread(target=inspect)
    started = time.monotonic()
    worker.start()
    waits = []
    while worker.is_alive():
        t = time.monotonic()
        r = other.call("GET", "jobs")
        waits.append(time.monotonic() - t)
        assert r.status_code == 200
        time.sleep(0.05)
    worker.join()
    took = time.monotonic() - started
    assert answer["r"].status_code == 200, answer["r"].text[:300]
    assert answer["r"].json()["kind"] == "notebook"
    # The check overlapped many requests, and none of them waited for it.
    assert took > 2 and len(waits) >= 10, (took, len(waits))
    assert max(waits) < 0.2, f"slowest {max(waits):.3f}s, median {statistics.median(waits):.3f}s"
