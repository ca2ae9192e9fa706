"""Job definitions on the real store: saving with the submission's checks, firing on a moved
clock (every minute fires each minute, skips while its previous job is busy), no double or lost
firing across a restart, and the 400s that store nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from batch_service.definitions import DefinitionService, DefinitionSpec
from batch_service.errors import BatchError, NotFound
from batch_service.files import FileStore
from batch_service.firing import fire_due
from batch_service.identity import SUBMIT, Identity
from batch_service.jobs import JobService
from batch_service.schedules import MAX_PREVIEW, firings
from batch_service.store import Store
from batch_service.uploads import CheckedInput, check_upload
from spawner.profiles import load_profiles
from tests.batch import notebook
from tests.test_store import postgres_url, store_url  # noqa: F401  (SQLite and PostgreSQL)

PROFILES = load_profiles([{"name": "cpu"}, {"name": "staff-only", "groups": ["staff"]}])
ALICE = Identity("alice", frozenset({SUBMIT}))
BOB = Identity("bob", frozenset({SUBMIT}))
NB = notebook("y = x + 1", parameters="x = 1")
# 2030-01-07 10:00:30 UTC, a Monday: the schedules below count from here.
T0 = datetime(2030, 1, 7, 10, 0, 30, tzinfo=UTC).timestamp()


async def check(name: str, content: bytes, entry: str | None) -> CheckedInput:
    """The service's upload check, run in this process."""
    return check_upload(name, content, entry, 10, 2**20)


@pytest.fixture
def defs(store_url: str, tmp_path: Path) -> Iterator[DefinitionService]:  # noqa: F811
    """A migrated store behind the job and definition services."""
    store = Store(store_url, tmp_path / "files")
    store.migrate()
    jobs = JobService(store, PROFILES)
    yield DefinitionService(store, jobs, FileStore(tmp_path / "files"))
    store.dispose()


def create(defs: DefinitionService, who: Identity = ALICE, **kw) -> dict:  # type: ignore[no-untyped-def]
    upload = check_upload("report.ipynb", NB, None, 10, 2**20)
    spec = DefinitionSpec(**{"schedule": "* * * * *", "profile": "cpu", **kw})
    return defs.create(who, spec, upload, at=T0)


def count(defs: DefinitionService) -> int:
    return defs.list_definitions(Identity("root", frozenset({"custom:batch:admin"})))["total"]


async def test_every_minute_fires_each_minute_and_skips_while_the_previous_job_runs(
    defs: DefinitionService,
) -> None:
    d = create(defs, parameters={"x": 7})
    assert d["next_fire_at"] == T0 + 30  # 10:01:00
    assert (await fire_due(defs, check, T0)).submitted == []  # not yet
    first = await fire_due(defs, check, T0 + 30)
    assert len(first.submitted) == 1
    job = defs.jobs.get(ALICE, first.submitted[0])
    assert (job["state"], job["parameters"], job["owner"]) == ("queued", {"x": 7}, "alice")
    # The next minute: the first job still waits in line, so this firing is skipped.
    second = await fire_due(defs, check, T0 + 90)
    assert second.submitted == [] and second.skipped == [d["id"]]
    assert defs.get(ALICE, d["id"])["skipped"] == 1
    # Once it ran, the minute after fires again: two jobs in two firings, none piled up.
    assert defs.jobs.mark(job["id"], ["queued"], state="succeeded", finished_at=T0 + 100)
    third = await fire_due(defs, check, T0 + 150)
    assert len(third.submitted) == 1
    history = defs.jobs_of(ALICE, d["id"])
    assert [j["id"] for j in history["jobs"]] == [third.submitted[0], job["id"]]
    assert defs.get(ALICE, d["id"])["last_job_id"] == third.submitted[0]


async def test_queue_on_overlap_fires_even_while_the_previous_job_waits(
    defs: DefinitionService,
) -> None:
    create(defs, on_overlap="queue")
    a = await fire_due(defs, check, T0 + 30)
    b = await fire_due(defs, check, T0 + 90)
    assert len(a.submitted) == 1 and len(b.submitted) == 1 and b.skipped == []


async def test_a_restart_neither_doubles_nor_loses_a_firing_and_downtime_fires_once(
    defs: DefinitionService, tmp_path: Path
) -> None:
    d = create(defs, on_overlap="queue")
    assert len((await fire_due(defs, check, T0 + 30)).submitted) == 1
    # A second service over the same store at the same moment finds nothing left to fire.
    again = DefinitionService(defs.store, JobService(defs.store, PROFILES), defs.files)
    assert (await fire_due(again, check, T0 + 31)).submitted == []
    # Down for ten minutes: one firing when back, then the schedule goes on from then.
    back = await fire_due(again, check, T0 + 630)
    assert len(back.submitted) == 1
    assert again.get(ALICE, d["id"])["next_fire_at"] == T0 + 690
    assert defs.jobs_of(ALICE, d["id"])["total"] == 2


async def test_a_paused_definition_does_not_fire_and_resuming_does_not_catch_up(
    defs: DefinitionService,
) -> None:
    d = create(defs)
    defs.update(ALICE, d["id"], {"paused": True}, at=T0 + 1)
    assert (await fire_due(defs, check, T0 + 3600)).submitted == []
    resumed = defs.update(ALICE, d["id"], {"paused": False}, at=T0 + 3600)
    assert resumed["next_fire_at"] == T0 + 3630
    assert len((await fire_due(defs, check, T0 + 3630)).submitted) == 1


async def test_a_firing_that_cannot_submit_says_why_and_tries_at_the_next_moment(
    defs: DefinitionService,
) -> None:
    staff = Identity("carol", frozenset({SUBMIT}), ("staff",))
    d = create(defs, who=staff, profile="staff-only", on_overlap="queue")
    # Her groups are kept with the definition: it fires as her, with them.
    assert len((await fire_due(defs, check, T0 + 30)).submitted) == 1
    # The file went missing from the store: the firing fails with a reason, nothing queues.
    defs.files.definition_file(d["id"], "report.ipynb").unlink()
    report = await fire_due(defs, check, T0 + 90)
    assert report.failed == [d["id"]]
    assert "could not be read" in defs.get(staff, d["id"])["last_error"]


def test_schedule_is_read_in_its_time_zone(defs: DefinitionService) -> None:
    d = create(defs, schedule="0 9 * * 1-5", timezone="Europe/Berlin")
    # 09:00 in Berlin in January is 08:00 UTC; Monday 10:00 UTC is past it, so Tuesday.
    assert d["next_fire_at"] == datetime(2030, 1, 8, 8, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        ("0 * * * *", "Every hour"),
        ("0 6 * * *", "At 06:00, every day"),
        ("0 9 * * 1", "At 09:00, only on Monday"),
        ("30 7 * * 1-5", "At 07:30, Monday through Friday"),
        ("*/15 * * * *", "Every 15 minutes"),
    ],
)
def test_a_schedule_is_shown_in_words(defs: DefinitionService, schedule: str, words: str) -> None:
    d = create(defs, schedule=schedule)
    assert d["schedule_text"] == words
    assert defs.list_definitions(ALICE)["definitions"][0]["schedule_text"] == words


def test_firings_keep_the_wall_clock_time_across_summer_time() -> None:
    # Mondays at 09:00 in Berlin: 08:00 UTC in January, 07:00 UTC once summer time starts.
    after = datetime(2030, 3, 18, 12, 0, tzinfo=UTC).timestamp()
    times = firings("0 9 * * 1", "Europe/Berlin", after, 3)
    assert [datetime.fromtimestamp(t, UTC).strftime("%m-%d %H:%M") for t in times] == [
        "03-25 08:00",
        "04-01 07:00",
        "04-08 07:00",
    ]
    # 02:30 does not happen on the day summer time begins: that day it fires at 03:30.
    nightly = firings("30 2 * * *", "Europe/Berlin", after + 12 * 86400, 2)
    assert [datetime.fromtimestamp(t, UTC).strftime("%m-%d %H:%M") for t in nightly] == [
        "03-31 01:30",
        "04-01 00:30",
    ]
    assert len(firings("* * * * *", "UTC", after, 10**6)) == MAX_PREVIEW


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"schedule": "61 * * * *"}, "not a valid cron expression"),
        ({"schedule": "* * * *"}, "has 4 fields"),
        ({"schedule": "* * * * * *"}, "has 6 fields"),
        ({"schedule": "0 0 30 2 *"}, "never fires"),
        ({"schedule": "x" * 500}, "longer than"),
        ({"timezone": "Mars/Olympus_Mons"}, "unknown time zone"),
        ({"timezone": "../../etc/passwd"}, "unknown time zone"),
        ({"profile": "staff-only"}, "not available to you"),
        ({"profile": "nope"}, "unknown profile"),
        ({"time_limit": 10**8}, "beyond profile"),
        ({"on_overlap": "pile"}, "on_overlap"),
        ({"parameters": ["x"]}, "parameters"),
    ],
)
def test_bad_input_is_refused_with_a_message_and_stores_nothing(
    defs: DefinitionService, fields: dict, words: str
) -> None:
    with pytest.raises(BatchError) as refused:
        create(defs, **fields)
    assert refused.value.status == 400 and words in refused.value.message
    # The field it is about, so that the Batch page shows the words next to it.
    (name,) = fields
    assert refused.value.field == (None if name in ("on_overlap", "parameters") else name)
    assert count(defs) == 0
    assert not (defs.files.root / "definitions").exists() or not any(
        (defs.files.root / "definitions").iterdir()
    )


def test_another_users_definition_is_not_found(defs: DefinitionService) -> None:
    d = create(defs)
    for call in (
        lambda: defs.get(BOB, d["id"]),
        lambda: defs.update(BOB, d["id"], {"paused": True}),
        lambda: defs.delete(BOB, d["id"]),
        lambda: defs.jobs_of(BOB, d["id"]),
    ):
        with pytest.raises(NotFound):
            call()
    assert defs.list_definitions(BOB)["total"] == 0
    with pytest.raises(BatchError):
        defs.list_definitions(BOB, owner="alice")
    defs.delete(ALICE, d["id"])
    assert count(defs) == 0 and not any((defs.files.root / "definitions").iterdir())


def test_bad_changes_are_refused_and_change_nothing(defs: DefinitionService) -> None:
    d = create(defs)
    for changes in ({"schedule": "every day"}, {"timezone": "Nowhere"}, {"colour": "red"}, {}):
        with pytest.raises(BatchError):
            defs.update(ALICE, d["id"], changes)
    assert defs.get(ALICE, d["id"]) == d
