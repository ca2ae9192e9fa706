"""The queued line kept between scheduler passes is the line in the store, whatever wrote it."""

from __future__ import annotations

from operator import attrgetter
from pathlib import Path

from sqlalchemy import delete, insert, update

from batch_service.admission import Admission
from batch_service.clock import now
from batch_service.jobs import STARTING
from batch_service.store import Job, Store
from tests.test_admission import line, member, queue
from tests.test_store import ADMIN_USER

ALICE, BOB = member("alice"), member("bob")


def kept_and_read(store: Store, admission: Admission) -> tuple[list, list]:
    """The line as the running service keeps it, and as a service started now reads it."""
    config = admission.config()
    kept = sorted(admission.snapshot(config)[0], key=attrgetter("id"))
    fresh = Admission(store, admission.turns, admission.profiles, {"a100": 2}, admission.policy)
    return kept, sorted(fresh.snapshot(config)[0], key=attrgetter("id"))


def test_the_kept_line_follows_every_kind_of_write(tmp_path: Path) -> None:
    jobs, admission = line(tmp_path, gpus=2, policy={})
    store = admission.store
    first = [queue(jobs, ALICE) for _ in range(3)]
    kept, read = kept_and_read(store, admission)
    assert len(kept) == 3 and kept == read

    # Submissions, a cancel, an admission, a priority change: each seen by the next pass.
    second = queue(jobs, BOB)
    jobs.cancel(ALICE, first[0])
    jobs.mark(first[1], ["queued"], state=STARTING)
    jobs.set_priority(ADMIN_USER, first[2], 5)
    kept, read = kept_and_read(store, admission)
    assert [r.id for r in kept] == sorted([first[2], second]) and kept == read
    assert next(r for r in kept if r.id == first[2]).priority == 5

    # Statements that name no job (a bulk change by state), and bulk inserts and deletes.
    with store.session() as session:
        session.execute(update(Job).where(Job.owner == "bob").values(priority=3))
        row = {c: getattr(session.get(Job, second), c) for c in Job.__table__.columns.keys()}
        session.execute(insert(Job), [dict(row, id="bulk1"), dict(row, id="bulk2")])
        session.execute(delete(Job).where(Job.id == first[2]))
    kept, read = kept_and_read(store, admission)
    assert {r.id for r in kept} == {second, "bulk1", "bulk2"} and kept == read
    assert {r.priority for r in kept} == {3}


def test_a_write_rolled_back_changes_nothing_and_costs_no_full_read(tmp_path: Path) -> None:
    jobs, admission = line(tmp_path, gpus=2, policy={})
    store = admission.store
    job = queue(jobs, ALICE)
    admission.snapshot(admission.config())
    try:
        with store.session() as session:
            session.execute(update(Job).where(Job.id == job).values(state=STARTING))
            raise RuntimeError("the transaction fails")
    except RuntimeError:
        pass
    assert admission.changes.take("queued") == set()
    kept, read = kept_and_read(store, admission)
    assert [r.id for r in kept] == [job] and kept == read


def test_a_newcomer_is_placed_behind_the_line_without_walking_it(tmp_path: Path) -> None:
    jobs, admission = line(tmp_path, gpus=2, policy={})
    # "one" needs a GPU: with none free, all four wait in the a100 line.
    waiting = [queue(jobs, ALICE) for _ in range(4)]
    decision, _ = admission.decide(0, now(), preview=True)
    jobs.line.update(decision)
    jobs.line.work_out()
    assert [jobs.get(ALICE, j)["position"] for j in waiting] == [1, 2, 3, 4]

    # The next pass decides; nobody has read its line yet.
    decision, _ = admission.decide(0, now(), preview=True)
    jobs.line.update(decision)
    walks: list[int] = []
    walk = decision.waits._line._plan  # type: ignore[attr-defined]
    decision.waits._line._plan = lambda ordered: walks.append(1) or walk(ordered)  # type: ignore[attr-defined]
    newcomer = jobs.get(BOB, queue(jobs, BOB))
    # Behind the four already waiting, and its acknowledgement did not walk the whole line.
    assert (newcomer["position"], newcomer["reason_code"], walks) == (5, "new", [])
    # Someone who was in the line when it was decided is still looked up in it.
    assert jobs.get(ALICE, waiting[0])["position"] == 1 and walks == [1]
