"""papermill's own test notebooks, through batchhub and through papermill's Python API.

Every notebook shipped in the installed papermill package (`papermill/tests/notebooks`) that
needs no cloud credentials (the `gcs/` and `s3/` folders do, and are left out) runs both ways
with the parameters papermill's own tests give it. Each must end in the same state with the
same error, the same injected cell, the same cells (papermill's error banners included), the
same outputs (stream text, execute results, displays, error name and value), the same execution
counts and the same papermill metadata keys and cell statuses.

Differences kept on purpose (also in the README, "Coming from papermill / sbatch"):
- Paths: papermill records the paths it was given; batchhub records the job folder's paths in
  the batch server. Each run's own working directory is replaced by `<cwd>` before comparing.
- The kernel: papermill's tests pass `kernel_name="python3"` to every run; a batch job runs the
  notebook's own kernel, as papermill's CLI does without `-k` (the profile's kernel when the
  notebook names none), so the baseline is called that way too.
- keyboard_interrupt.ipynb: papermill's tests only prepare it (`prepare_only`); batchhub has no
  prepare-only mode, so both run it (it sleeps 60 s).
- Times: start, end and duration differ by nature; only their presence is compared.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import papermill
import pytest
from papermill.exceptions import PapermillExecutionError

from tests.batch import FINISHED, Batch
from tests.hub import HubProcess

pytestmark = pytest.mark.timeout(900)

NOTEBOOKS = Path(papermill.__file__).parent / "tests" / "notebooks"
NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))

# The parameters (and report mode) papermill's own tests run these notebooks with.
PARAMETERS: dict[str, dict[str, Any]] = {
    "simple_execute.ipynb": {"msg": "Hello"},
    "no_parameters.ipynb": {"msg": "Hello"},
    "nb_version_4.4.ipynb": {"var": "It works"},
    "blank-vscode.ipynb": {"var": "It works"},
    "report_mode_test.ipynb": {"a": 0},
    "keyboard_interrupt.ipynb": {"foo": r"do\ not\ crash"},
}
REPORT_MODE = {"report_mode_test.ipynb"}
PROFILE_KERNEL = "python3"


def papermill_run(name: str, folder: Path) -> dict[str, Any]:
    """papermill's Python API on a copy of the notebook, in a folder holding only the input."""
    workdir = folder / name.removesuffix(".ipynb")
    workdir.mkdir()
    input_path = workdir / name
    shutil.copy(NOTEBOOKS / name, input_path)
    output_path = workdir / name.replace(".ipynb", ".output.ipynb")
    named = json.loads(input_path.read_text()).get("metadata", {}).get("kernelspec", {})
    result: dict[str, Any] = {"state": "succeeded", "error": None, "cwd": str(workdir)}
    try:
        papermill.execute_notebook(
            str(input_path),
            str(output_path),
            parameters=PARAMETERS.get(name),
            kernel_name=None if named.get("name") else PROFILE_KERNEL,
            report_mode=name in REPORT_MODE,
            cwd=str(workdir),
            progress_bar=False,
        )
    except PapermillExecutionError as e:
        result.update(state="failed", error=(e.ename, e.evalue))
    except Exception as e:  # what papermill raises before any cell runs (NoSuchKernel)
        result.update(state="failed", error=(type(e).__name__, str(e)))
    result["nb"] = json.loads(output_path.read_text()) if output_path.exists() else None
    return result


def cell_view(cell: dict[str, Any], cwd: str) -> dict[str, Any]:
    """What a reader of the executed notebook compares, with the run's own folder as <cwd>."""
    view: dict[str, Any] = {
        "type": cell["cell_type"],
        "source": cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"]),
        "tags": cell["metadata"].get("tags", []),
        "papermill": sorted(cell["metadata"].get("papermill", {})),
        "status": cell["metadata"].get("papermill", {}).get("status"),
        "hidden": cell["metadata"].get("jupyter", {}).get("source_hidden", False),
    }
    if cell["cell_type"] != "code":
        return view
    streams: dict[str, str] = {}
    results, errors = [], []
    for out in cell.get("outputs", []):
        kind = out["output_type"]
        if kind == "stream":
            text = out["text"] if isinstance(out["text"], str) else "".join(out["text"])
            streams[out["name"]] = streams.get(out["name"], "") + text.replace(cwd, "<cwd>")
        elif kind in ("execute_result", "display_data"):
            data = out.get("data", {})
            results.append((kind, sorted(data), str(data.get("text/plain", ""))))
        elif kind == "error":
            errors.append((out["ename"], out["evalue"]))
    view.update(
        execution_count=cell.get("execution_count"), streams=streams, results=results, errors=errors
    )
    return view


def notebook_view(nb: dict[str, Any] | None, cwd: str) -> dict[str, Any] | None:
    """The executed notebook as compared: papermill's keys and parameters, then each cell."""
    if nb is None:
        return None
    meta = nb["metadata"].get("papermill", {})
    return {
        "papermill": sorted(meta),
        "parameters": meta.get("parameters"),
        "exception": meta.get("exception"),
        "timed": [meta.get(k) is not None for k in ("start_time", "end_time", "duration")],
        "cells": [cell_view(cell, cwd) for cell in nb["cells"]],
    }


@pytest.fixture(scope="module")
def runs(hub: HubProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Each notebook through batchhub and through papermill, side by side."""
    user = hub.ready_user("pm-parity")
    batch = Batch(user)
    folder = tmp_path_factory.mktemp("papermill")
    theirs: dict[str, dict] = {}

    def baseline() -> None:
        # papermill changes the process's directory per run: one run at a time.
        for name in NAMES:
            theirs[name] = papermill_run(name, folder)

    python_bin = str(Path(sys.executable).parent)
    with pytest.MonkeyPatch.context() as patch:
        # papermill's kernels get what a user has in an activated environment: its python first.
        patch.setenv("PATH", python_bin + os.pathsep + os.environ.get("PATH", ""))
        worker = threading.Thread(target=baseline)
        worker.start()
        pending = {}
        for name in NAMES:
            fields = {"report_mode": "true"} if name in REPORT_MODE else {}
            content = (NOTEBOOKS / name).read_bytes()
            r = batch.submit(name, content, parameters=PARAMETERS.get(name, {}), **fields)
            assert r.status_code == 201, (name, r.text)
            pending[r.json()["id"]] = name
        ours: dict[str, dict] = {}
        deadline = time.monotonic() + 600
        while pending and time.monotonic() < deadline:
            for job_id, name in list(pending.items()):
                job = batch.job(job_id)
                # Finished, and a kept kernel handed over (live), so its release frees the slot.
                if job["state"] in FINISHED and not job.get("live_pending"):
                    output = batch.call("GET", f"jobs/{job_id}/output")
                    ours[name] = {"job": job, "nb": output.json() if output.ok else None}
                    if job["live"]:
                        batch.call("POST", f"jobs/{job_id}/release")  # free the slot
                    del pending[job_id]
            time.sleep(0.5)
        worker.join(timeout=300)
    assert not pending, f"jobs still running: {pending}"
    return {name: {"ours": ours[name], "theirs": theirs[name]} for name in NAMES}


def test_every_shipped_notebook_without_cloud_credentials_is_compared() -> None:
    assert len(NAMES) >= 20, NAMES
    assert {"sysexit.ipynb", "broken1.ipynb", "simple_execute.ipynb"} <= set(NAMES)
    cloud = [p for p in NOTEBOOKS.rglob("*.ipynb") if p.parent != NOTEBOOKS]
    assert cloud and all({"gcs", "s3"} & set(p.relative_to(NOTEBOOKS).parts) for p in cloud)


@pytest.mark.parametrize("name", NAMES)
def test_a_papermill_notebook_runs_the_same_through_batchhub(
    runs: dict[str, dict], name: str
) -> None:
    ours, theirs = runs[name]["ours"], runs[name]["theirs"]
    job = ours["job"]
    assert job["state"] == theirs["state"], (job, theirs["error"])
    error = (job["error"]["name"], job["error"]["value"]) if job["error"] else None
    assert error == theirs["error"]
    cwd = f"batch/{job['id']}"
    mine = ours["nb"]
    if mine is not None:
        # The job folder's absolute path in the server ends with batch/<id>.
        for cell in mine["cells"]:
            for out in cell.get("outputs", []):
                if out["output_type"] == "stream":
                    text = out["text"] if isinstance(out["text"], str) else "".join(out["text"])
                    head, sep, _ = text.partition(cwd)
                    if sep:
                        start = head.rfind(" ") + 1 if " " in head else 0
                        out["text"] = text.replace(head[start:] + cwd, theirs["cwd"])
    assert notebook_view(mine, theirs["cwd"]) == notebook_view(theirs["nb"], theirs["cwd"])
