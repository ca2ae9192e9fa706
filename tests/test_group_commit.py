"""Group commit on the real store: submissions arriving together share one transaction, each is
acknowledged only once its row is committed, and a bad row costs only its own submission."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from batch_service.checks import CheckPool
from batch_service.errors import BatchError
from batch_service.files import stage_job_folder
from batch_service.group_commit import GroupCommit, Throttled, new_job_views
from batch_service.jobs import JobService
from batch_service.store import Job, JobFile, Store
from batch_service.uploads import CheckedInput
from tests.test_store import (  # noqa: F401  (postgres_url, store_url: SQLite and PostgreSQL)
    ALICE,
    BOB,
    NB,
    PROFILES,
    postgres_url,
    store_url,
    submission,
)


@pytest.fixture
def jobs(store_url: str, tmp_path: Path) -> Iterator[JobService]:  # noqa: F811
    """A migrated store behind the job service."""
    store = Store(store_url, tmp_path / "files")
    store.migrate()
    yield JobService(store, PROFILES)
    store.dispose()


# Group commits made by the running test: closed after it, so their threads end.
_MADE: list[GroupCommit] = []


def grouped(jobs: JobService, kicks: list[int]) -> GroupCommit:
    group = GroupCommit(
        jobs.store, jobs.job_files, new_job_views(jobs), on_stored=lambda: kicks.append(1)
    )
    _MADE.append(group)
    return group


@pytest.fixture(autouse=True)
def committers_end() -> Iterator[None]:
    yield
    while _MADE:
        _MADE.pop().close()


def stored_ids(jobs: JobService) -> set[str]:
    with jobs.store.session() as session:
        return set(session.scalars(Job.__table__.select().with_only_columns(Job.id)))


async def test_concurrent_submissions_are_all_stored_and_acknowledged_in_few_commits(
    jobs: JobService,
) -> None:
    kicks: list[int] = []
    group = grouped(jobs, kicks)
    n = 40
    people = [ALICE if i % 2 else BOB for i in range(n)]
    rows = [
        jobs.prepare(who, submission(who.name, parameters={"x": i})) for i, who in enumerate(people)
    ]
    views = await asyncio.gather(
        *(
            group.store_job(row, submission().input, who)
            for row, who in zip(rows, people, strict=True)
        )
    )
    # Every submission got its own job back, queued, with its parameters and a place in line.
    assert [v["id"] for v in views] == [r.id for r in rows]
    assert [v["parameters"] for v in views] == [{"x": i} for i in range(n)]
    assert {v["state"] for v in views} == {"queued"} and all(v["position"] for v in views)
    # All stored, each with its input, and readable by its owner.
    assert stored_ids(jobs) == {r.id for r in rows}
    for row, who in zip(rows, people, strict=True):
        assert jobs.get(who, row.id)["owner"] == who.name
        assert jobs.job_files.find(row.id, "input").read() == submission().input.content
    # Arriving together, they shared transactions.
    assert group.stored == n and group.commits < n
    assert kicks, "the scheduler was not asked for a pass"


async def test_acknowledgement_waits_for_the_commit(jobs: JobService, tmp_path: Path) -> None:
    group = grouped(jobs, [])
    row = jobs.prepare(ALICE, submission())
    # Another writer holds the jobs table: the group's commit has to wait for it.
    release = hold_writes(jobs.store, tmp_path / "jobs.sqlite")
    acknowledged = asyncio.create_task(group.store_job(row, submission().input, ALICE))
    await asyncio.sleep(1.0)
    assert not acknowledged.done(), "acknowledged before its row could be committed"
    assert row.id not in stored_ids(jobs)
    release()
    view = await asyncio.wait_for(acknowledged, 30)
    # Once acknowledged, the job is there for any new connection to read.
    jobs.store.engine.dispose()
    with jobs.store.engine.connect() as fresh:
        states = fresh.execute(select(Job.state).where(Job.id == view["id"])).all()
    assert [tuple(r) for r in states] == [("queued",)]


async def test_a_client_that_hangs_up_mid_store_still_gets_its_job_stored(
    jobs: JobService, tmp_path: Path
) -> None:
    """The handler's wait is cancelled (its client went away) while the commit waits for the
    database: the job is stored all the same, whole, and the next submission is too."""
    group = grouped(jobs, [])
    gone, next_one = (jobs.prepare(ALICE, submission(parameters={"x": i})) for i in (1, 2))
    release = hold_writes(jobs.store, tmp_path / "jobs.sqlite")
    waiting = asyncio.create_task(group.store_job(gone, submission().input, ALICE))
    await asyncio.sleep(0.5)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    release()
    view = await asyncio.wait_for(group.store_job(next_one, submission().input, ALICE), 30)
    assert view["id"] == next_one.id
    assert {gone.id, next_one.id} <= stored_ids(jobs)
    assert jobs.job_files.find(gone.id, "input").read() == submission().input.content
    # Stopping: what was handed over is stored, then the thread ends and refuses newcomers.
    group.close()
    assert group._thread is not None and not group._thread.is_alive()
    with pytest.raises(RuntimeError, match="stopping"):
        await group.store_job(jobs.prepare(ALICE, submission()), submission().input, ALICE)


def hold_writes(store: Store, sqlite_file: Path) -> Callable[[], None]:
    """Another connection takes the lock that writing a job needs (readers still read);
    returns what lets it go."""
    if store.url.startswith("sqlite"):
        other = sqlite3.connect(sqlite_file, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")

        def release_sqlite() -> None:
            other.execute("ROLLBACK")
            other.close()

        return release_sqlite
    holder = store.engine.connect()
    # EXCLUSIVE blocks every write to the table and lets plain reads through.
    holder.exec_driver_sql("LOCK TABLE jobs IN EXCLUSIVE MODE")

    def release_postgres() -> None:
        holder.rollback()
        holder.close()

    return release_postgres


async def test_a_bad_row_costs_only_its_own_submission(jobs: JobService) -> None:
    group = grouped(jobs, [])
    good = jobs.prepare(ALICE, submission(parameters={"x": 1}))
    bad = jobs.prepare(BOB, submission("bob"))
    bad.owner = None  # type: ignore[assignment]  (a NOT NULL column: its commit must fail)
    results = await asyncio.gather(
        group.store_job(good, submission().input, ALICE),
        group.store_job(bad, submission().input, BOB),
        return_exceptions=True,
    )
    assert results[0]["id"] == good.id
    assert isinstance(results[1], IntegrityError)
    assert stored_ids(jobs) == {good.id}
    # The refused job's input file is gone; the stored one's is kept.
    assert not jobs.files.job_folder(bad.id).exists()
    assert jobs.job_files.find(good.id, "input").size > 0


async def test_a_job_stored_in_a_group_is_the_row_a_single_submission_stores(
    jobs: JobService,
) -> None:
    """Groups insert their rows without the ORM's flush: every column must still come out as
    a flush writes it (defaults included), and the answer must be what a later read shows."""
    alone = jobs.submit(ALICE, submission(parameters={"x": 3}, time_limit=90))
    row = jobs.prepare(ALICE, submission(parameters={"x": 3}, time_limit=90))
    answered = await grouped(jobs, []).store_job(row, submission().input, ALICE)
    assert answered == jobs.get(ALICE, row.id)

    def stored(table: Any, key: str, job_id: str) -> dict[str, Any]:
        with jobs.store.session() as session:
            values = dict(session.execute(select(table).where(key == job_id)).one()._mapping)
        return {
            k: v
            for k, v in values.items()
            if k not in {"id", "job_id", "submitted_at", "stored_at"}
        }

    assert stored(Job.__table__, Job.id, row.id) == stored(Job.__table__, Job.id, alone["id"])
    assert stored(JobFile.__table__, JobFile.job_id, row.id) == stored(
        JobFile.__table__, JobFile.job_id, alone["id"]
    )


@pytest.fixture(scope="module")
def checks() -> Iterator[CheckPool]:
    """A real worker process, as the service checks and stages uploads."""
    pool = CheckPool(1)
    yield pool
    pool.shutdown()


async def test_inputs_staged_by_a_check_worker_are_placed_whole_and_failures_leave_nothing(
    jobs: JobService, checks: CheckPool
) -> None:
    staging = jobs.files.staging_root

    async def stage() -> CheckedInput:
        return await checks.check_and_stage("nb.ipynb", NB, None, 10, 2**20, staging)

    # The worker checked the upload and wrote it, fsynced, in a job folder of its own.
    staged = await stage()
    assert staged.staged is not None and staged.content == NB and staged.kind == "notebook"
    assert (Path(staged.staged.folder) / "input" / "nb.ipynb").read_bytes() == NB
    # Stored beside a submission the group commit writes itself: both inputs in place, whole.
    group = grouped(jobs, [])
    rows = [jobs.prepare(ALICE, submission(parameters={"x": i})) for i in range(2)]
    await asyncio.gather(
        group.store_job(rows[0], staged, ALICE), group.store_job(rows[1], submission().input, ALICE)
    )
    for row in rows:
        stored = jobs.job_files.find(row.id, "input")
        assert stored.read() == NB and stored.sha256 == hashlib.sha256(NB).hexdigest()
    assert list(staging.iterdir()) == []
    # A row that cannot be committed: its staged input goes with it.
    bad = jobs.prepare(BOB, submission("bob"))
    bad.owner = None  # type: ignore[assignment]
    with pytest.raises(IntegrityError):
        await group.store_job(bad, await stage(), BOB)
    assert not jobs.files.job_folder(bad.id).exists() and list(staging.iterdir()) == []
    # A folder that cannot be placed: that submission fails alone, its neighbour is stored.
    blocked, fine = (jobs.prepare(ALICE, submission(parameters={"x": i})) for i in (7, 8))
    (jobs.files.job_folder(blocked.id) / "in-the-way").mkdir(parents=True)
    results = await asyncio.gather(
        group.store_job(blocked, await stage(), ALICE),
        group.store_job(fine, await stage(), ALICE),
        return_exceptions=True,
    )
    assert isinstance(results[0], OSError) and results[1]["id"] == fine.id
    assert blocked.id not in stored_ids(jobs) and fine.id in stored_ids(jobs)
    assert jobs.job_files.find(fine.id, "input").read() == NB
    assert list(staging.iterdir()) == []
    # Refused by its check: nothing was staged.
    with pytest.raises(BatchError, match="not valid JSON|not a notebook"):
        await checks.check_and_stage("nb.ipynb", b"{nope", None, 10, 2**20, staging)
    assert list(staging.iterdir()) == []


def test_a_staged_input_is_written_whole_and_a_failed_staging_leaves_no_folder(
    tmp_path: Path,
) -> None:
    # Bigger than one write of a pipe or socket: every byte must land, in order.
    content = bytes(range(256)) * (3 * 2**20 // 256) + b"end"
    staged = stage_job_folder(tmp_path, "input", "data.ipynb", content)
    written = Path(staged.folder) / "input" / "data.ipynb"
    assert written.read_bytes() == content and staged.size == len(content)
    assert staged.sha256 == hashlib.sha256(content).hexdigest()
    # Its folders were made, then writing failed: the new folder goes, the first one stays.
    with pytest.raises(TypeError):
        stage_job_folder(tmp_path, "input", "nb.ipynb", "not bytes")  # type: ignore[arg-type]
    assert [p.name for p in tmp_path.iterdir()] == [Path(staged.folder).name]
    # A name that leaves the folder is refused before anything is made.
    with pytest.raises(BatchError):
        stage_job_folder(tmp_path, "input", "../escape.ipynb", content)
    assert [p.name for p in tmp_path.iterdir()] == [Path(staged.folder).name]


async def test_scheduler_passes_asked_for_by_submissions_are_spaced_and_the_last_kept() -> None:
    kicks: list[float] = []
    loop = asyncio.get_running_loop()
    kick = Throttled(lambda: kicks.append(loop.time()), 0.2)
    start = loop.time()
    kick()  # an idle service: a pass at once
    assert len(kicks) == 1
    for _ in range(50):  # a burst of stored groups within one window
        kick()
        await asyncio.sleep(0.002)
    assert len(kicks) == 1
    await asyncio.sleep(0.35)
    # The burst was folded into one pass at the end of the window, none lost, none early.
    assert len(kicks) == 2 and kicks[1] - start >= 0.2 - 0.01
