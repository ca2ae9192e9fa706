"""Why a job waits, end to end: the reason code, the words and the expected start that the API,
the CLI and the pages show (squeue's REASON column and `squeue --start`)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from tests.batch import Batch, notebook
from tests.hub import HubProcess
from tests.test_cli import cli
from tests.test_embedded import first_progress_message

HOLD = notebook("import time\ntime.sleep(600)")


def until(read: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool]) -> dict:
    """Read until `done` holds (a scheduler pass is a few seconds away at most)."""
    deadline = time.monotonic() + 60
    seen = read()
    while not done(seen) and time.monotonic() < deadline:
        time.sleep(0.3)
        seen = read()
    return seen


def test_a_paused_queue_says_so_and_gives_no_start_time(hub: HubProcess) -> None:
    admin, person = Batch(hub.admin()), Batch(hub.ready_user("why-paula"))
    admin.call("PUT", "queue", json={"paused": True})
    try:
        job = person.submit("p.ipynb", notebook("x = 1")).json()
        assert job["state"] == "queued" and job["reason"]
        seen = person.job(job["id"])
        assert (seen["reason_code"], seen["estimated_start"]) == ("paused", None)
        assert seen["reason"].startswith("waiting for a batch slot: position ")
        assert "the queue is paused by a batch admin" in seen["reason"]
        listed = cli(person.user, "list")
        row = next(line for line in listed.stdout.splitlines() if line.startswith(job["id"]))
        assert row.split()[1] == "queued" and row.rstrip().endswith("paused")
        shown = cli(person.user, "show", job["id"])
        assert "paused: waiting for a batch slot" in shown.stderr
        assert "expected start: not known yet" in shown.stderr
    finally:
        admin.call("PUT", "queue", json={"paused": False})
        person.call("POST", f"jobs/{job['id']}/cancel")


def test_a_gpu_job_behind_running_gpu_jobs_expects_the_first_end(hub: HubProcess) -> None:
    holder, person, admin = (
        Batch(hub.ready_user("why-hold")),
        Batch(hub.ready_user("why-next")),
        Batch(hub.admin()),
    )
    # Both fake GPUs are taken by runs with different time limits.
    held = [
        holder.submit(f"hold{i}.ipynb", HOLD, profile="gpu-1", time_limit=limit).json()["id"]
        for i, limit in enumerate((900, 1200))
    ]
    waiting = None
    try:
        running = [holder.wait(job_id, ("running",), timeout=120) for job_id in held]
        first_end = min(job["started_at"] + job["time_limit"] for job in running)
        waiting = person.submit("next.ipynb", notebook("x = 1"), profile="gpu-1").json()["id"]
        seen = until(lambda: person.job(waiting), lambda j: j["reason_code"] == "resources")
        assert seen["state"] == "queued" and seen["reason_code"] == "resources", seen
        # squeue --start: the run that ends first frees the GPU.
        assert abs(seen["estimated_start"] - first_end) <= 2, (seen, first_end)
        words = seen["reason"]
        assert words.startswith("waiting for 1 GPU of type fake: position 1 in line; held by ")
        assert re.search(r"2 runs of other users \(the first ends in ~1[45] min\)", words), words
        assert holder.user.name not in words  # others' names are not the reader's to see
        assert f"2 runs of {holder.user.name}" in admin.job(waiting)["reason"]
        listed = cli(person.user, "list")
        row = next(line for line in listed.stdout.splitlines() if line.startswith(waiting))
        assert " resources (start " in row
        person.call("POST", f"jobs/{waiting}/cancel")
        # A GPU server waiting in the same line says the same on its spawn page.
        lab = hub.ready_user("why-lab")
        r = lab.api("POST", f"/hub/api/users/{lab.name}/servers/g", json={"profile": "gpu-1"})
        assert r.status_code == 202, r.text
        try:
            message = first_progress_message(lab, "g", "held by")
            assert message.startswith("Waiting for 1 GPU of type fake: position 1 in line; ")
            assert re.search(r"2 runs of other users \(the first ends in ~1[45] min\)", message)
            assert re.search(r"expected to start in about 1[45] min$", message), message
        finally:
            lab.stop_server("g")
    finally:
        if waiting:
            person.call("POST", f"jobs/{waiting}/cancel")
        for job_id in held:
            holder.call("POST", f"jobs/{job_id}/cancel")
        # The GPUs are back only once the servers are gone: later tests count on both.
        for job_id in held:
            holder.user.wait_server(f"batch-{job_id}", ready=False, timeout=120)
