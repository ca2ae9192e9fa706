"""The Batch pages as a person reads them, in Chromium: states, reasons, a failed cell's whole
traceback, confirmations, progress of a one-cell run, notifications, layout at two widths."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.batch import Batch, notebook
from tests.hub import HubProcess, HubUser
from tests.test_embedded_browser import log_in

pytestmark = pytest.mark.browser
SLOW = notebook("import time\nfor i in range(300):\n    time.sleep(0.1)")
# Where screenshots go when BATCHHUB_SCREENSHOTS names a folder (to look at them).
SHOTS = os.environ.get("BATCHHUB_SCREENSHOTS")
# Records every browser notification the page makes (the real Notification still runs).
SPY = """
window.__notes = [];
const Real = window.Notification;
if (Real) {
  window.Notification = function (title, options) {
    window.__notes.push({ title, body: (options || {}).body || "" });
    return new Real(title, options);
  };
  Object.defineProperty(window.Notification, "permission", { get: () => Real.permission });
  window.Notification.requestPermission = (...a) => Real.requestPermission(...a);
}
"""


def switch_on(page) -> None:  # type: ignore[no-untyped-def]
    """Turn the page's browser notifications on (a click, as browsers ask for one)."""
    pressed = "document.getElementById('notify-toggle').getAttribute('aria-pressed')"
    if page.evaluate(pressed) != "true":
        page.click("#notify-toggle")
    page.wait_for_function(f"{pressed} === 'true'")


def page_for(browser, hub: HubProcess, user: HubUser, **context):  # type: ignore[no-untyped-def]
    """A logged-in page of the user's own browser context."""
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    log_in(page, hub, user.name)
    page.wait_for_url("**/hub/**")
    return ctx, page


def test_a_failed_run_shows_the_failing_cells_source_and_whole_traceback(
    hub: HubProcess, browser
) -> None:
    user = hub.ready_user("pg-trace")
    batch = Batch(user)
    failing = notebook(
        "a = 1",
        "def inner(v):\n    return 1 / (v - 1)\n\ndef outer(v):\n    return inner(v)",
        "outer(a)",
    )
    bad = batch.wait(batch.submit("fails.ipynb", failing).json()["id"])
    good = batch.wait(batch.submit("fine.ipynb", notebook("b = 2")).json()["id"])
    assert (bad["state"], good["state"]) == ("failed", "succeeded")
    ctx, page = page_for(browser, hub, user)
    page.goto(f"{hub.url}/services/batch/jobs/{bad['id']}")
    page.wait_for_selector("#failure:not([hidden])", timeout=30_000)
    assert page.inner_text("#failure-source") == "outer(a)"
    traceback = page.inner_text("#failure-traceback")
    assert traceback.index("outer") < traceback.index("inner") < traceback.rindex("ZeroDivision")
    assert "[0;" not in traceback and "\x1b" not in traceback  # colours rendered, not raw
    assert page.locator("#failure-traceback span[class^='ansi-']").count() > 3
    assert "ZeroDivisionError: division by zero (cell 3)" in page.inner_text("#job-error")
    # A run that did not fail has no Error row and no failure section at all.
    page.goto(f"{hub.url}/services/batch/jobs/{good['id']}")
    page.wait_for_selector("#job-state[data-state='succeeded']")
    assert page.locator("#job-error-label").is_hidden() and page.locator("#failure").is_hidden()
    assert page.inner_text("#job-progress") == "1 of 1 cells done"
    ctx.close()
    for job in (bad, good):
        batch.call("POST", f"jobs/{job['id']}/release")


def test_cancel_release_and_delete_ask_first_and_an_ended_kernel_says_so(
    hub: HubProcess, browser
) -> None:
    user = hub.ready_user("pg-confirm")
    batch = Batch(user)
    slow = batch.wait(batch.submit("slow.ipynb", SLOW).json()["id"], ("running",))
    done = batch.wait(batch.submit("quick.py", b"x = 1\n").json()["id"])
    ctx, page = page_for(browser, hub, user)
    page.goto(f"{hub.url}/services/batch/")
    # Cancel: "Keep it" keeps the run going; confirming cancels it.
    page.click(f"#cancel-{slow['id']}")
    page.wait_for_selector("#confirm-dialog[open]")
    assert "Its run stops now" in page.inner_text("#confirm-dialog")
    page.click("#confirm-cancel")
    time.sleep(2)
    assert batch.job(slow["id"])["state"] == "running"
    page.click(f"#cancel-{slow['id']}")
    page.click("#confirm-ok")
    assert batch.wait(slow["id"], ("cancelled",), timeout=30)["state"] == "cancelled"
    # A cancelled job that never stored an output links none.
    row = page.locator(f"#job-{slow['id']}[data-state='cancelled']")
    row.wait_for(timeout=10_000)
    assert row.locator("a[href$='/output'], a[href$='/output.html']").count() == 0
    assert page.locator(f"#job-{done['id']} a[href$='/output.html']").count() == 1
    # Its live-kernel link says why there is none.
    gone = user.session.get(f"{hub.url}/services/batch/jobs/{slow['id']}/live")
    assert gone.status_code == 410 and "Cancelled by pg-confirm" in gone.text
    # Release asks too; afterwards the kernel's link explains that it ended.
    page.click(f"#release-{done['id']}")
    assert "Its variables are lost" in page.inner_text("#confirm-dialog")
    page.click("#confirm-ok")
    page.wait_for_selector(f"#job-{done['id']} .bh-live", state="detached", timeout=15_000)
    page.goto(f"{hub.url}/services/batch/jobs/{done['id']}/live")
    assert "has ended" in page.inner_text("#kernel-ended")
    page.click("#job-link")
    page.wait_for_url(f"**/services/batch/jobs/{done['id']}")
    # Delete, from the job's own page.
    page.wait_for_selector("#delete:not([hidden])")
    page.click("#delete")
    page.click("#confirm-ok")
    page.wait_for_url(f"{hub.url}/services/batch/")
    assert batch.call("GET", f"jobs/{done['id']}").status_code == 404
    ctx.close()


def test_a_one_cell_run_shows_running_until_its_cell_is_done(hub: HubProcess, browser) -> None:
    user = hub.ready_user("pg-onecell")
    batch = Batch(user)
    nb = notebook("import time\ntime.sleep(12)\nprint('slept')")
    job_id = batch.submit("one.ipynb", nb).json()["id"]
    ctx, page = page_for(browser, hub, user)
    page.goto(f"{hub.url}/services/batch/jobs/{job_id}")
    page.wait_for_function(
        "document.getElementById('job-progress').textContent === 'running cell 1 of 1'",
        timeout=90_000,
    )
    # Nothing is done yet: the done bar is empty, the stripe marks the one cell at work.
    assert page.eval_on_selector("#job-progress-bar", "e => e.style.width") == "0%"
    assert page.eval_on_selector("#job-progress-running", "e => e.style.width") == "100%"
    assert page.title().startswith("running 0/1")
    page.wait_for_function(
        "document.getElementById('job-progress').textContent === '1 of 1 cells done'",
        timeout=60_000,
    )
    assert page.eval_on_selector("#job-progress-bar", "e => e.style.width") == "100%"
    ctx.close()
    batch.call("POST", f"jobs/{job_id}/release")


def test_the_list_reads_at_a_glance_with_the_hubs_nav_bar(hub: HubProcess, browser) -> None:
    admin = hub.admin()
    user = hub.ready_user("pg-glance")
    batch = Batch(user)
    ok = batch.wait(batch.submit("ok.py", b"x = 1\n").json()["id"])["id"]
    bad = batch.wait(batch.submit("bad.py", b"raise ValueError('no')\n").json()["id"])["id"]
    Batch(admin).call("PUT", "queue", json={"paused": True})
    try:
        waiting = batch.submit("waits.py", b"y = 2\n").json()["id"]
        ctx, page = page_for(browser, hub, admin)
        page.goto(f"{hub.url}/services/batch/")
        page.wait_for_selector(f"#job-{waiting}")
        colours = {
            state: page.eval_on_selector(
                f"#job-{job_id} .bh-state", "e => getComputedStyle(e).backgroundColor"
            )
            for state, job_id in (("succeeded", ok), ("failed", bad), ("queued", waiting))
        }
        assert len(set(colours.values())) == 3, colours
        # The admin's priority box for a queued job has a label saying what it is.
        label = page.locator(f"label[for='priority-{waiting}']")
        assert label.inner_text() == "Priority" and page.is_visible(f"#priority-{waiting}")
        # The hub's own nav bar: Admin, the Services menu, Batch, Authorize Users.
        nav = page.inner_text("#thenavbar")
        for item in ("Home", "Token", "Admin", "Services", "Batch", "Authorize Users"):
            assert item in nav, nav
        page.click("#thenavbar .dropdown-toggle")
        assert page.locator(".dropdown-menu a[href$='/services/batch/']").is_visible()
        ctx.close()
    finally:
        Batch(admin).call("PUT", "queue", json={"paused": False})
    batch.wait(waiting)
    for job_id in (ok, bad, waiting):
        batch.call("POST", f"jobs/{job_id}/release")


def test_the_browser_tells_the_owner_when_a_job_starts_and_ends(hub: HubProcess, browser) -> None:
    user = hub.ready_user("pg-notify")
    batch = Batch(user)
    ctx, page = page_for(browser, hub, user, permissions=["notifications"])
    ctx.add_init_script(SPY)
    page.goto(f"{hub.url}/services/batch/")
    switch_on(page)
    job_id = batch.submit("slow.py", b"import time\ntime.sleep(6)\n").json()["id"]
    page.wait_for_function("window.__notes.some(n => n.title.endsWith('started'))", timeout=90_000)
    page.wait_for_function(
        "window.__notes.some(n => n.title.endsWith('succeeded'))", timeout=90_000
    )
    notes = page.evaluate("window.__notes")
    assert [n["title"] for n in notes] == [f"Job {job_id} started", f"Job {job_id} succeeded"]
    assert "live kernel is ready" in notes[1]["body"]
    # The job's own page says the state in its title, for a glance at the tab.
    page.goto(f"{hub.url}/services/batch/jobs/{job_id}")
    page.wait_for_function("document.title.startsWith('succeeded')")
    ctx.close()
    batch.call("POST", f"jobs/{job_id}/release")


@pytest.fixture(scope="module")
def laid_out(hub: HubProcess):  # type: ignore[no-untyped-def]
    """A user with a failed job whose page has a long name, a reason and a traceback."""
    user = hub.ready_user("pg-fit")
    batch = Batch(user)
    failing = notebook("x = 1", "raise RuntimeError('a long message ' * 8)")
    name = "a-long-notebook-name-for-the-layout.ipynb"
    job = batch.wait(batch.submit(name, failing).json()["id"])
    yield user, job
    batch.call("POST", f"jobs/{job['id']}/release")


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("width", [1280, 390])
def test_the_pages_fit_desktop_and_phone_in_both_themes(
    hub: HubProcess, browser, laid_out, theme: str, width: int
) -> None:
    user, job = laid_out
    ctx, page = page_for(
        browser, hub, user, viewport={"width": width, "height": 900}, color_scheme=theme
    )
    for name, path, ready in (
        ("batch", "/services/batch/", f"#job-{job['id']}"),
        ("job", f"/services/batch/jobs/{job['id']}", "#failure:not([hidden])"),
    ):
        page.goto(hub.url + path)
        page.wait_for_selector(ready, timeout=30_000)
        assert page.evaluate("document.documentElement.getAttribute('data-bs-theme')") == theme
        # Nothing sticks out sideways: the page never scrolls horizontally.
        assert page.evaluate("document.documentElement.scrollWidth") <= width, path
        if SHOTS:
            page.screenshot(path=str(Path(SHOTS) / f"{name}-{theme}-{width}.png"), full_page=True)
    page.goto(f"{hub.url}/services/batch/")
    actions = page.locator(f"#job-{job['id']} td.bh-actions")
    actions.wait_for()
    box = actions.bounding_box()
    assert box is not None and box["x"] + box["width"] <= width
    if width == 390:
        # On a phone each job is a card of labelled fields.
        label = page.eval_on_selector(
            f"#job-{job['id']} td.bh-actions", "e => getComputedStyle(e, '::before').content"
        )
        assert label == '"Actions"'
    ctx.close()
