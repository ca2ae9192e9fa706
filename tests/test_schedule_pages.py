"""Schedules on the Batch page as a person uses them in Chromium: the submit form's "on a
schedule" mode (presets, the service's preview in words with the next runs, refusals next to
their field and nothing stored), the list of schedules with its next and last run, pause (the
definition then does not fire), resume, the runs, edit, delete; and both at desktop and phone
width."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.batch import Batch, notebook
from tests.hub import HubProcess
from tests.test_batch_pages import SHOTS, page_for

pytestmark = pytest.mark.browser
NB = notebook("y = x + 1", parameters="x = 1")
FILE = {"name": "tick.ipynb", "mimeType": "application/json", "buffer": NB}


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / name), full_page=True)


def open_schedule_form(page, url: str) -> None:  # type: ignore[no-untyped-def]
    """The Batch page's form in schedule mode with the notebook chosen and inspected."""
    page.goto(f"{url}/services/batch/")
    page.check("#mode-schedule")
    page.set_input_files("#job-file", files=[FILE])
    # The parameters cell's values, typed from the notebook, as for a single job.
    page.wait_for_selector("#param-x")


def refused(page, field: str, words: str) -> None:  # type: ignore[no-untyped-def]
    """The service's message is shown next to the field (and above the button)."""
    page.click("#job-submit")
    page.wait_for_selector(f"#{field}.is-invalid", timeout=30_000)
    assert words in page.inner_text(f"#{field}-error")
    page.wait_for_selector("#submit-message.text-danger")
    assert words in page.inner_text("#submit-message")


def test_a_schedule_made_on_the_page_fires_pauses_resumes_and_is_deleted(
    hub: HubProcess, browser
) -> None:
    user = hub.ready_user("sch-ana")
    batch = Batch(user)
    ctx, page = page_for(browser, hub, user, viewport={"width": 1280, "height": 900})
    open_schedule_form(page, hub.url)
    assert page.inner_text("#job-submit") == "Save schedule"
    # What a definition cannot carry is not offered: no empty notebook, no report mode.
    assert page.is_hidden("#job-report-mode") and page.is_disabled("#job-empty")
    # The default preset, previewed by the service in the browser's zone (UTC here).
    page.wait_for_selector("#schedule-next")
    assert page.input_value("#schedule-cron") == "0 6 * * *"
    assert "At 06:00, every day" in page.inner_text("#schedule-preview")
    # Another preset, in another zone: its words and three next runs at 09:00 on Mondays.
    page.select_option("#schedule-preset", "0 9 * * 1")
    page.fill("#schedule-timezone", "Europe/Berlin")
    page.wait_for_function(
        "document.getElementById('schedule-preview').innerText.includes('Europe/Berlin')"
    )
    preview = page.inner_text("#schedule-preview")
    assert "At 09:00, only on Monday" in preview
    assert page.inner_text("#schedule-next").count("09:00") == 3, preview

    # An invalid cron: the preview's refusal next to the field, and so is the save's.
    page.fill("#schedule-cron", "61 * * * *")
    page.wait_for_selector("#schedule-cron.is-invalid", timeout=10_000)
    assert page.input_value("#schedule-preset") == ""  # typed: no preset matches
    assert "is not a valid cron expression" in page.inner_text("#schedule-cron-error")
    refused(page, "schedule-cron", "is not a valid cron expression")
    shot(page, "schedule-refused-1280.png")
    # An unknown zone, and a profile this user may not run with: the same.
    page.fill("#schedule-cron", "* * * * *")
    page.fill("#schedule-timezone", "Mars/Olympus_Mons")
    refused(page, "schedule-timezone", "unknown time zone 'Mars/Olympus_Mons'")
    page.fill("#schedule-timezone", "Europe/Berlin")
    page.evaluate(
        "const s = document.getElementById('job-profile');"
        "s.append(new Option('staff only', 'no-such-profile')); s.value = 'no-such-profile';"
    )
    refused(page, "job-profile", "unknown profile 'no-such-profile'")
    assert batch.call("GET", "definitions").json()["total"] == 0 and batch.count() == 0
    page.select_option("#job-profile", "cpu")

    # Every minute, so that the first run comes within a minute.
    page.fill("#schedule-name", "tick report")
    page.fill("#param-x", "5")
    # Queue a run even while the previous one goes: so only the pause can keep one away.
    page.check("#overlap-queue")
    page.click("#job-submit")
    page.wait_for_selector("#submit-message.text-success", timeout=30_000)
    assert "Saved schedule tick report" in page.inner_text("#submit-message")
    # Nothing of the refusals is left on the form.
    assert page.locator("#submit-form .is-invalid").count() == 0
    shot(page, "schedule-form-1280.png")
    (d,) = batch.call("GET", "definitions").json()["definitions"]
    assert (d["name"], d["schedule"], d["timezone"], d["profile"], d["parameters"]) == (
        "tick report",
        "* * * * *",
        "Europe/Berlin",
        "cpu",
        {"x": 5},
    )
    assert d["on_overlap"] == "queue" and d["paused"] is False
    row = f"#definition-{d['id']}"
    page.wait_for_selector(row, timeout=10_000)
    text = page.inner_text(row)
    for words in ("tick report", "tick.ipynb", "Every minute", "* * * * *", "Europe/Berlin"):
        assert words in text, text
    assert page.inner_text(f"#def-state-{d['id']}") == "active"
    assert "in less than a minute" in page.inner_text(f"{row} .def-next")

    # The first run: the service fires it at the next whole minute; the row links to it.
    deadline = d["next_fire_at"] + 40
    fired: list = []
    while time.time() < deadline and not fired:
        fired = batch.call("GET", f"definitions/{d['id']}/jobs").json()["jobs"]
        time.sleep(1)
    assert fired, "the definition did not fire at its first moment"
    job_id = fired[0]["id"]
    page.wait_for_function(
        f"document.querySelector('{row} a.def-last-job')?.innerText === '{job_id}'",
        timeout=10_000,
    )
    shot(page, "schedule-list-1280.png")

    # Pause: the API shows it paused, and the next moment passes without a run.
    page.click(f"#pause-{d['id']}")
    page.wait_for_selector(f"{row}[data-paused='true']", timeout=10_000)
    assert page.inner_text(f"#def-state-{d['id']}") == "paused"
    assert "none while paused" in page.inner_text(f"{row} .def-next")
    paused = batch.call("GET", f"definitions/{d['id']}").json()
    assert paused["paused"] is True and paused["next_fire_at"] is None
    # Past the minute it would have fired at, plus a look of the firing loop (10 s).
    time.sleep(max(0.0, (fired[0]["submitted_at"] // 60 + 1) * 60 + 20 - time.time()))
    assert batch.call("GET", f"definitions/{d['id']}/jobs").json()["total"] == 1

    # Its runs, each linking to its job page.
    page.click(f"#runs-{d['id']}")
    page.wait_for_selector(f"#run-{job_id} a[href$='/jobs/{job_id}']", timeout=10_000)
    assert page.inner_text("#schedule-runs-title") == "Runs of tick report"

    # Resume: active again, next run from now.
    page.click(f"#resume-{d['id']}")
    page.wait_for_selector(f"{row}[data-paused='false']", timeout=10_000)
    resumed = batch.call("GET", f"definitions/{d['id']}").json()
    assert resumed["paused"] is False and resumed["next_fire_at"] > time.time()

    # Delete, after a confirmation; kept when the person says no.
    page.click(f"#delete-def-{d['id']}")
    page.click("#confirm-cancel")
    assert batch.call("GET", f"definitions/{d['id']}").status_code == 200
    page.click(f"#delete-def-{d['id']}")
    page.click("#confirm-ok")
    page.wait_for_selector(row, state="detached", timeout=10_000)
    assert batch.call("GET", f"definitions/{d['id']}").status_code == 404
    page.wait_for_selector("#schedules-section", state="hidden", timeout=10_000)
    # The run it made stays, as a job of its own.
    assert batch.wait(job_id)["state"] == "succeeded"
    ctx.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_the_schedule_form_and_list_fit_desktop_and_phone(
    hub: HubProcess, browser, width: int
) -> None:
    user = hub.ready_user(f"sch-fit-{width}")
    batch = Batch(user)
    made = []
    for schedule, zone, paused in (
        ("0 6 * * 1-5", "America/New_York", "false"),
        ("30 7 1 * *", "Asia/Kolkata", "true"),
    ):
        r = batch.call(
            "POST",
            "definitions",
            files={"file": ("a-rather-long-report-name-for-the-layout.ipynb", NB)},
            data={"schedule": schedule, "timezone": zone, "profile": "cpu", "paused": paused},
        )
        assert r.status_code == 201, r.text
        made.append(r.json())
    ctx, page = page_for(browser, hub, user, viewport={"width": width, "height": 900})
    open_schedule_form(page, hub.url)
    page.wait_for_selector("#schedule-next")
    for d in made:
        page.wait_for_selector(f"#definition-{d['id']}", timeout=10_000)
    active, paused = (page.inner_text(f"#definition-{d['id']}") for d in made)
    assert "At 06:00, Monday through Friday" in active and "America/New_York" in active
    assert "none while paused" in paused and "paused" in paused
    # Nothing sticks out sideways: the page never scrolls horizontally.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    actions = page.locator(f"#definition-{made[0]['id']} td.bh-actions").bounding_box()
    assert actions is not None and actions["x"] + actions["width"] <= width
    if width == 390:
        # On a phone each schedule is a card of labelled fields.
        label = page.eval_on_selector(
            f"#definition-{made[0]['id']} td.bh-actions",
            "e => getComputedStyle(e, '::before').content",
        )
        assert label == '"Actions"'
    shot(page, f"schedule-page-{width}.png")
    # The edit card fits as well.
    page.click(f"#edit-def-{made[0]['id']}")
    page.wait_for_selector("#edit-next", timeout=10_000)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    shot(page, f"schedule-edit-{width}.png")
    ctx.close()
    if width == 1280:
        # An admin's page lists the admin's own schedules only, not this user's.
        ctx, page = page_for(browser, hub, hub.admin(), viewport={"width": width, "height": 900})
        page.goto(f"{hub.url}/services/batch/")
        page.wait_for_selector("#schedules-section[data-loaded='true']", state="attached")
        for d in made:
            assert page.locator(f"#definition-{d['id']}").count() == 0
        # Other tests of this hub may have given the admin schedules of their own.
        if Batch(hub.admin()).call("GET", "definitions").json()["total"] == 0:
            assert page.is_hidden("#schedules-section")
        ctx.close()
    for d in made:
        batch.call("DELETE", f"definitions/{d['id']}")


def test_a_schedule_is_edited_on_the_page_and_a_refused_change_changes_nothing(
    hub: HubProcess, browser
) -> None:
    user = hub.ready_user("sch-edit")
    batch = Batch(user)
    r = batch.call(
        "POST",
        "definitions",
        files={"file": ("tick.ipynb", NB)},
        data={"schedule": "0 6 * * *", "timezone": "UTC", "profile": "cpu", "name": "daily"},
    )
    assert r.status_code == 201, r.text
    d = r.json()
    ctx, page = page_for(browser, hub, user, viewport={"width": 1280, "height": 900})
    page.goto(f"{hub.url}/services/batch/")
    page.click(f"#edit-def-{d['id']}", timeout=10_000)
    # The card shows what the schedule is now, with the service's words for it.
    page.wait_for_selector("#edit-next", timeout=10_000)
    assert page.inner_text("#schedule-edit-title") == "Edit daily"
    assert (page.input_value("#edit-name"), page.input_value("#edit-cron")) == (
        "daily",
        "0 6 * * *",
    )
    assert page.input_value("#edit-timezone") == "UTC"
    assert "At 06:00, every day" in page.inner_text("#edit-preview")

    # A bad cron is refused next to its field while typing, and again on saving.
    page.fill("#edit-cron", "61 * * * *")
    page.wait_for_selector("#edit-cron.is-invalid", timeout=10_000)
    assert "is not a valid cron expression" in page.inner_text("#edit-cron-error")
    page.click("#edit-save")
    page.wait_for_selector("#edit-message.text-danger", timeout=10_000)
    assert "is not a valid cron expression" in page.inner_text("#edit-message")
    # So is a time limit that is no duration; nothing of either was stored.
    page.fill("#edit-cron", "30 7 * * 1-5")
    page.fill("#edit-time-limit", "forever")
    page.click("#edit-save")
    page.wait_for_selector("#edit-time-limit.is-invalid", timeout=10_000)
    assert "time_limit" in page.inner_text("#edit-time-limit-error")
    stored = batch.call("GET", f"definitions/{d['id']}").json()
    assert (stored["schedule"], stored["updated_at"]) == ("0 6 * * *", d["updated_at"])

    # Weekday mornings in Tokyo, 45 minutes a run, a new name: saved, and the row says so.
    page.fill("#edit-timezone", "Asia/Tokyo")
    page.fill("#edit-time-limit", "45")
    page.fill("#edit-name", "weekday report")
    page.wait_for_function(
        "document.getElementById('edit-preview').innerText.includes('Asia/Tokyo')"
    )
    page.click("#edit-save")
    page.wait_for_selector("#schedule-edit", state="hidden", timeout=10_000)
    assert "Saved weekday report: next run" in page.inner_text("#schedules-message")
    row = f"#definition-{d['id']}"
    page.wait_for_function(
        f"document.querySelector('{row}').innerText.includes('weekday report')", timeout=10_000
    )
    text = page.inner_text(row)
    assert "At 07:30, Monday through Friday" in text and "Asia/Tokyo" in text, text
    changed = batch.call("GET", f"definitions/{d['id']}").json()
    assert (changed["name"], changed["schedule"], changed["timezone"]) == (
        "weekday report",
        "30 7 * * 1-5",
        "Asia/Tokyo",
    )
    assert changed["time_limit"] == 45 * 60 and changed["paused"] is False
    # Its next run is the new schedule's: 07:30 in Tokyo is 22:30 UTC, on a weekday there.
    fire = time.gmtime(changed["next_fire_at"])
    assert (fire.tm_hour, fire.tm_min) == (22, 30) and fire.tm_wday in (6, 0, 1, 2, 3)
    batch.call("DELETE", f"definitions/{d['id']}")
    ctx.close()
