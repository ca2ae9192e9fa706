"""Sweeps in the store (SQLite and PostgreSQL): all points or nothing, resubmission, actions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from batch_service.errors import BatchError, Conflict, NotFound
from batch_service.job_changes import JobChanges
from batch_service.jobs import JobService
from batch_service.store import Job, JobFile, Store, Sweep
from batch_service.sweeps import SweepRequest, SweepService
from tests.batch import notebook
from tests.test_store import ADMIN_USER, ALICE, BOB, PROFILES, postgres_url, store_url, submission

__all__ = ["postgres_url", "store_url"]

NB = notebook("loss = (lr - 0.05) ** 2 * layers", parameters="lr = 0.1\nlayers = 2")
GRID = {"kind": "grid", "grid": {"lr": "0.1,0.01,0.001", "layers": "1:3"}}


@pytest.fixture
def sweeps(store_url: str, tmp_path: Path) -> Iterator[SweepService]:
    """A migrated store behind the sweep service."""
    store = Store(store_url, tmp_path / "files")
    store.migrate()
    yield SweepService(JobService(store, PROFILES), max_points=100)
    store.dispose()


def request(spec: dict = GRID, content: bytes = NB, **kw) -> SweepRequest:  # type: ignore[no-untyped-def]
    return SweepRequest(submission("alice", content), spec, **kw)


def stored(sweeps: SweepService) -> tuple[int, int, int]:
    with sweeps.store.session() as session:
        return (
            session.scalar(select(func.count()).select_from(Sweep)) or 0,
            session.scalar(select(func.count()).select_from(Job)) or 0,
            session.scalar(select(func.count()).select_from(JobFile)) or 0,
        )


def finish(sweeps: SweepService, state: str, n: int | None = None) -> None:
    with sweeps.store.session() as session:
        jobs = session.scalars(select(Job).where(Job.state == "queued").order_by(Job.id)).all()
        for job in jobs[:n]:
            job.state = state


def test_a_grid_is_stored_as_one_job_per_point_with_its_input(sweeps: SweepService) -> None:
    view = sweeps.create(ALICE, request(max_parallel=2))
    assert view["points"] == 9 and view["added"] == 9 and view["skipped"] == 0
    assert view["counts"]["queued"] == 9 and view["state"] == "active"
    assert stored(sweeps) == (1, 9, 9)
    _, jobs, _ = sweeps.points(ALICE, view["id"])
    assert {(j.parameters["lr"], j.parameters["layers"]) for j in jobs} == {
        (lr, layers) for lr in (0.1, 0.01, 0.001) for layers in (1, 2, 3)
    }
    # Every point's input is there to run.
    assert all(sweeps.jobs.job_files.find(j.id, "input").read() == NB for j in jobs)


@pytest.mark.parametrize(
    ("spec", "kw", "words"),
    [
        ({"kind": "grid", "grid": {"lr": "0:1000:1"}}, {}, "more than 100 values"),
        ({"kind": "grid", "grid": {"lr": "0:1:0"}}, {}, "step of a range may not be 0"),
        ({"kind": "grid", "grid": {"layers": "a,b"}}, {}, "must be of type int"),
        ({"kind": "table", "table": "lr,epochs\n1,2\n"}, {}, "'epochs' is not a parameter"),
        ({"kind": "random", "space": {"lr": {"low": 0}}, "samples": 3}, {}, "needs bounds"),
        ({"kind": "bayes"}, {}, "kind must be one of grid, table, random, optuna, explore"),
        ({"kind": "optuna"}, {}, "a search space needs bounds"),
        (GRID, {"max_parallel": 0}, "max_parallel must be between"),
        (GRID, {"failed_live_window": 10**6}, "beyond profile"),
        (GRID, {"record": ["not a name"]}, "is not an output name"),
    ],
)
def test_bad_input_stores_nothing(sweeps: SweepService, spec: dict, kw: dict, words: str) -> None:
    with pytest.raises(BatchError, match=words) as raised:
        sweeps.create(ALICE, request(spec, **kw))
    assert raised.value.status == 400
    assert stored(sweeps) == (0, 0, 0)
    assert not [p for p in sweeps.jobs.files.root.rglob("*") if p.is_file()]


def test_a_notebook_without_parameters_cell_has_nothing_to_sweep(sweeps: SweepService) -> None:
    with pytest.raises(BatchError, match=r"not a parameter of nb.ipynb \(its parameters: none"):
        sweeps.create(ALICE, request(content=notebook("x = 1")))


def test_resubmission_skips_points_queued_or_succeeded_and_requeues_failed(
    sweeps: SweepService,
) -> None:
    first = sweeps.create(ALICE, request())
    finish(sweeps, "succeeded", 4)
    finish(sweeps, "failed", 2)
    again = sweeps.create(ALICE, request())
    assert again["id"] == first["id"]
    assert again["added"] == 2 and again["skipped"] == 7
    assert again["counts"] == {**again["counts"], "succeeded": 4, "failed": 0, "queued": 5}
    # The failed attempts stay in the sweep's history; the points still number nine.
    assert again["points"] == 9
    assert stored(sweeps) == (1, 11, 11)
    # A bigger grid into the same sweep adds only its new points.
    bigger = {"kind": "grid", "grid": {"lr": "0.1,0.01,0.001,0.0001", "layers": "1:3"}}
    grown = sweeps.create(ALICE, request(bigger, into=first["id"]))
    assert grown["id"] == first["id"] and grown["added"] == 3 and grown["points"] == 12


def test_others_sweeps_are_unknown_and_admins_see_all(sweeps: SweepService) -> None:
    view = sweeps.create(ALICE, request())
    with pytest.raises(NotFound):
        sweeps.get(BOB, view["id"])
    with pytest.raises(NotFound):
        sweeps.cancel(BOB, view["id"])
    with pytest.raises(NotFound):
        sweeps.create(BOB, SweepRequest(submission("bob", NB), GRID, into=view["id"]))
    assert sweeps.list_sweeps(BOB)["total"] == 0
    assert sweeps.get(ADMIN_USER, view["id"])["owner"] == "alice"
    assert sweeps.list_sweeps(ADMIN_USER)["total"] == 1


def test_pause_cancel_and_retry(sweeps: SweepService) -> None:
    view = sweeps.create(ALICE, request())
    assert sweeps.set_paused(ALICE, view["id"], True)["state"] == "paused"
    assert sweeps.set_paused(ALICE, view["id"], False)["state"] == "active"
    finish(sweeps, "timed_out", 1)
    finish(sweeps, "running", 1)
    cancelled, stops = sweeps.cancel(ALICE, view["id"])
    assert cancelled["state"] == "cancelled" and len(stops) == 1
    assert cancelled["counts"]["cancelled"] == 8 and cancelled["counts"]["queued"] == 0
    with pytest.raises(Conflict):
        sweeps.set_paused(ALICE, view["id"], True)
    retried = sweeps.retry(ALICE, view["id"])
    assert retried["added"] == 1 and retried["state"] == "active"
    assert retried["counts"]["queued"] == 1 and retried["counts"]["timed_out"] == 0
    finish(sweeps, "succeeded")
    assert sweeps.get(ALICE, view["id"])["state"] == "done"
    with pytest.raises(Conflict, match="no failed points"):
        sweeps.retry(ALICE, view["id"])


def test_only_failed_points_keep_their_live_kernel_for_the_sweeps_window(
    sweeps: SweepService,
) -> None:
    from batch_service.runs import RunReports

    jobs = sweeps.jobs
    runs = RunReports(jobs.store, jobs.profiles, None, None, jobs.job_files)  # type: ignore[arg-type]
    view = sweeps.create(ALICE, request(failed_live_window=30))
    _, points, _ = sweeps.points(ALICE, view["id"])
    ended = {}
    for job, state in zip(points[:2], ("succeeded", "failed"), strict=True):
        jobs.mark(job.id, ["queued"], state="starting", admitted_at=1.0)
        events = [
            {"type": "started", "seq": 1, "kernel_id": "0f4c1a52-9d1e", "total_cells": 1},
            {"type": "finished", "seq": 2, "state": state, "kernel_alive": True},
        ]
        runs.apply_events(job.id, events)
        ended[state] = jobs.get(ALICE, job.id)
    # A succeeded point lets its kernel go at once (its server is then stopped).
    assert ended["succeeded"]["live_pending"] is False
    # A failed one keeps it, for the sweep's window.
    assert ended["failed"]["live_pending"] is True
    assert ended["failed"]["live_window"] == 30
    assert ended["failed"]["sweep_id"] == view["id"]


def test_a_list_counts_a_tables_rows_instead_of_carrying_them(sweeps: SweepService) -> None:
    table = {"kind": "table", "table": "lr,layers\n0.1,1\n0.2,2\n0.3,3\n"}
    view = sweeps.create(ALICE, request(table))
    assert sweeps.get(ALICE, view["id"])["spec"] == table
    assert sweeps.list_sweeps(ALICE)["sweeps"][0]["spec"] == {"kind": "table", "table_rows": 3}


def test_the_same_sweep_submitted_twice_at_once_is_one_sweep(sweeps: SweepService) -> None:
    import threading

    answers: list[Any] = []

    def submit() -> None:
        try:
            answers.append(sweeps.create(ALICE, request()))
        except Conflict as e:
            answers.append(e)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # One sweep with each point once; a submission that lost the race is told to submit again.
    assert stored(sweeps)[:2] == (1, 9)
    assert sum(isinstance(a, dict) for a in answers) >= 1
    again = sweeps.create(ALICE, request())
    assert again["added"] == 0 and again["skipped"] == 9


def test_retry_runs_each_point_with_its_own_input(sweeps: SweepService) -> None:
    first = sweeps.create(ALICE, request({"kind": "grid", "grid": {"lr": "0.1"}}))
    other = notebook("loss = lr * 2", parameters="lr = 0.1\nlayers = 2")
    sweeps.create(ALICE, request({"kind": "grid", "grid": {"lr": "0.2"}}, other, into=first["id"]))
    finish(sweeps, "failed")
    retried = sweeps.retry(ALICE, first["id"])
    assert retried["added"] == 2
    _, jobs, _ = sweeps.points(ALICE, first["id"])
    inputs = {j.parameters["lr"]: sweeps.jobs.job_files.find(j.id, "input").read() for j in jobs}
    assert inputs == {0.1: NB, 0.2: other}


def test_points_are_stored_as_a_submission_is_and_lists_learn_of_them(
    sweeps: SweepService,
) -> None:
    """Points are inserted without the ORM's flush: each row must still be what a submission
    of the same notebook and parameters stores (defaults included) but for what makes it a
    point, its input one file linked into every point's folder, and the job list's readers
    told of every new point (else the Batch page shows them only at its next full read)."""
    changes = JobChanges(sweeps.store)
    changes.take("page")  # a reader's first take is "read everything"
    view = sweeps.create(ALICE, request())
    _, points, _ = sweeps.points(ALICE, view["id"])
    assert changes.take("page") == {point.id for point in points}

    point = next(p for p in points if p.parameters == {"lr": 0.01, "layers": 2})
    alone = sweeps.jobs.submit(ALICE, submission(content=NB, parameters={"lr": 0.01, "layers": 2}))

    def row(table: Any, key: Any, job_id: str) -> dict[str, Any]:
        with sweeps.store.session() as session:
            return dict(session.execute(select(table).where(key == job_id)).one()._mapping)

    # What a sweep gives its points: the sweep, the point, its live window on failure.
    of_the_sweep = {"sweep_id", "point_hash", "live_window", "followed_up", "depth", "trial"}
    differs = {"id", "submitted_at"} | of_the_sweep
    in_sweep, single = row(Job.__table__, Job.id, point.id), row(Job.__table__, Job.id, alone["id"])
    assert {k: v for k, v in in_sweep.items() if k not in differs} == {
        k: v for k, v in single.items() if k not in differs
    }
    assert in_sweep["sweep_id"] == view["id"] and in_sweep["point_hash"]
    assert in_sweep["followed_up"] is False
    file_differs = {"job_id", "stored_at"}
    assert {
        k: v
        for k, v in row(JobFile.__table__, JobFile.job_id, point.id).items()
        if k not in file_differs
    } == {
        k: v
        for k, v in row(JobFile.__table__, JobFile.job_id, alone["id"]).items()
        if k not in file_differs
    }
    inodes = {sweeps.jobs.files.job_file(p.id, "input", "nb.ipynb").stat().st_ino for p in points}
    assert len(inodes) == 1


def test_where_the_store_cannot_link_each_point_gets_a_copy_of_its_input(
    sweeps: SweepService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some shared volumes have no hard links: every point still gets its whole input."""

    def no_links(source: object, target: object) -> None:
        raise OSError("hard links are not supported here")

    monkeypatch.setattr("batch_service.files.os.link", no_links)
    view = sweeps.create(ALICE, request())
    _, points, _ = sweeps.points(ALICE, view["id"])
    paths = [sweeps.jobs.files.job_file(p.id, "input", "nb.ipynb") for p in points]
    assert len(points) == 9 and all(path.read_bytes() == NB for path in paths)
    assert len({path.stat().st_ino for path in paths}) == 9
