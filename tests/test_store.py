"""The job store on SQLite and on a real PostgreSQL: schema, transactions, paging, events."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from batch_service.errors import BatchError, NotFound
from batch_service.identity import ADMIN, SUBMIT, Identity
from batch_service.jobs import JobService, Submission
from batch_service.runs import RunReports
from batch_service.store import Base, Store
from batch_service.uploads import check_upload
from spawner.profiles import load_profiles
from tests.batch import notebook
from tests.postgres import postgres_server

PROFILES = load_profiles([{"name": "cpu"}, {"name": "gpu", "gpus": 1, "gpu_type": "a100"}])
ALICE = Identity("alice", frozenset({SUBMIT}))
BOB = Identity("bob", frozenset({SUBMIT}))
ADMIN_USER = Identity("root", frozenset({ADMIN}))
NB = notebook("y = x + 1", parameters="x = 1")


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """One real PostgreSQL server for this module."""
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs.sqlite'}"
        return
    url = request.getfixturevalue("postgres_url")
    store = Store(url)
    with store.engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    store.dispose()
    yield url


@pytest.fixture
def jobs(store_url: str, tmp_path: Path) -> Iterator[JobService]:
    """A migrated store behind the job service."""
    store = Store(store_url, tmp_path / "files")
    store.migrate()
    yield JobService(store, PROFILES)
    store.dispose()


def submission(owner: str = "alice", content: bytes = NB, **kw) -> Submission:  # type: ignore[no-untyped-def]
    upload = check_upload("nb.ipynb", content, None, 10, 2**20)
    return Submission(
        owner=owner,
        input=upload,
        profile=kw.pop("profile", "cpu"),
        time_limit=kw.pop("time_limit", None),
        parameters=kw.pop("parameters", {}),
        **kw,
    )


def test_migrations_build_exactly_the_models(jobs: JobService) -> None:
    jobs.store.migrate()  # a second upgrade is a no-op
    with jobs.store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_a_job_and_its_input_are_stored_together(jobs: JobService) -> None:
    job = jobs.submit(ALICE, submission(parameters={"x": 5}))
    assert jobs.get(ALICE, job["id"])["parameters"] == {"x": 5}
    stored = jobs.file(ALICE, job["id"], "input")
    assert (stored.name, stored.read()) == ("nb.ipynb", NB)
    with pytest.raises(NotFound):
        jobs.get(BOB, job["id"])
    assert jobs.get(ADMIN_USER, job["id"])["owner"] == "alice"


def test_a_crash_between_job_row_and_input_leaves_no_half_job(
    store_url: str, tmp_path: Path
) -> None:
    files = tmp_path / "files"
    store = Store(store_url, files)
    store.migrate()
    # A real process dies (os._exit) after the job row is flushed, before its input is written.
    script = textwrap.dedent(f"""
        import os
        from sqlalchemy import event
        from batch_service.store import JobFile, Store
        from batch_service.jobs import JobService
        from tests.test_store import ALICE, PROFILES, submission
        event.listen(JobFile, "before_insert", lambda *a: os._exit(3))
        JobService(Store({store_url!r}, {str(files)!r}), PROFILES).submit(ALICE, submission())
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parent.parent)
    assert result.returncode == 3
    assert JobService(store, PROFILES).list_jobs(ADMIN_USER)["total"] == 0
    # The input written before the crash belongs to no job: nothing a user ever sees.
    store.dispose()


def test_paging_filters_and_queue_positions(jobs: JobService) -> None:
    ids = [jobs.submit(ALICE, submission())["id"] for _ in range(5)]
    other = jobs.submit(BOB, submission(profile="gpu"))["id"]
    page = jobs.list_jobs(ALICE, limit=2, offset=0)
    assert page["total"] == 5 and len(page["jobs"]) == 2
    assert [j["id"] for j in page["jobs"]] == ids[::-1][:2]  # newest first
    everything = jobs.list_jobs(ADMIN_USER, limit=50)
    assert everything["total"] == 6
    assert [j["id"] for j in jobs.list_jobs(ADMIN_USER, profile="gpu")["jobs"]] == [other]
    assert jobs.get(ALICE, ids[0])["position"] == 1
    jobs.set_priority(ADMIN_USER, other, 10)
    assert jobs.get(BOB, other)["position"] == 1 and jobs.get(ALICE, ids[0])["position"] == 2
    with pytest.raises(BatchError):
        jobs.list_jobs(ALICE, owner="bob")


def test_runner_events_are_idempotent_by_seq_and_stamped_by_the_service(
    jobs: JobService,
) -> None:
    runs = RunReports(jobs.store, jobs.profiles, None, None, jobs.job_files)  # type: ignore[arg-type]
    job = jobs.submit(ALICE, submission())
    assert jobs.mark(job["id"], ["queued"], state="starting", admitted_at=time.time())
    before = time.time()
    events = [
        {
            "type": "started",
            "seq": 1,
            "time": 1.0,  # the runner's clock: ignored
            "kernel_id": "0f4c1a52-9d1e-4a0b-8c55-2b1f7d0e9a11",
            "total_cells": 2,
            "output_path": "../../hub/authorize/mallory",  # a claim: ignored
            "session_id": "s",
        },
        {"type": "output", "seq": 2, "time": 2.0, "index": 1, "lines": ["a", "b"]},
        {"type": "cell", "seq": 3, "time": 2.0, "index": 2, "total": 2, "status": "done"},
        {
            "type": "finished",
            "seq": 4,
            "time": 3.0,
            "state": "failed",
            "error_name": "E",
            "error_value": "v",
            "failed_cell": 2,
            "kernel_alive": True,
        },
    ]
    assert runs.apply_events(job["id"], events) is True
    runs.apply_events(job["id"], events)  # a retry after a lost answer
    seen = jobs.get(ALICE, job["id"])
    assert seen["state"] == "failed" and seen["kernel_id"] == events[0]["kernel_id"]
    # Kept, but not live until the scheduler sees the hub reach the server.
    assert seen["live"] is False and seen["live_kernel_url"] is None
    assert seen["error"] == {"name": "E", "value": "v", "cell": 2}
    assert before <= seen["started_at"] <= seen["finished_at"] <= time.time()
    assert seen["output_path"] is None
    assert [line["text"] for line in jobs.logs(ALICE, job["id"])["lines"]] == ["a", "b"]
    # A finished run's runner says nothing more.
    late = [{"type": "finished", "seq": 5, "state": "succeeded"}]
    runs.apply_events(job["id"], late)
    assert jobs.get(ALICE, job["id"])["state"] == "failed"


def test_concurrent_submissions_are_all_stored(jobs: JobService) -> None:
    ids: list[str] = []

    def submit_many() -> None:
        for _ in range(10):
            ids.append(jobs.submit(ALICE, submission())["id"])

    threads = [threading.Thread(target=submit_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 40
    assert jobs.list_jobs(ALICE)["total"] == 40


def test_only_finished_jobs_are_deleted_and_deleting_removes_everything(jobs: JobService) -> None:
    job = jobs.submit(ALICE, submission())
    with pytest.raises(BatchError, match="cancel it before deleting"):
        jobs.delete(ALICE, job["id"])
    jobs.cancel(ALICE, job["id"])
    jobs.delete(ALICE, job["id"])
    with pytest.raises(NotFound):
        jobs.file(ALICE, job["id"], "input")
