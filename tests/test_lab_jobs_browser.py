"""JupyterLab's Create Job, in Chromium, on the embedded default: right-click a notebook in the
file browser, Create Job with a profile and a parameter; the job is batchhub's (the Batch API
has it), the Jobs panel shows it succeed, and its output downloads into the file browser."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.batch import Batch, notebook
from tests.hub import HubProcess
from tests.test_embedded_browser import log_in
from tests.test_lab_jobs import NB, put_notebook

pytestmark = pytest.mark.browser
SHOTS = os.environ.get("BATCHHUB_SCREENSHOTS")


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """Keep a screenshot when BATCHHUB_SCREENSHOTS names a folder."""
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def open_create_job(page, hub: HubProcess, user: str, notebook: str) -> None:  # type: ignore[no-untyped-def]
    """JupyterLab's file browser: right-click the notebook, Create Job."""
    page.goto(f"{hub.url}/user/{user}/lab?reset")
    # JupyterLab asks once whether to fetch news: no (and the toast would cover the form).
    no_news = page.get_by_role("button", name="No", exact=True)
    item = page.locator(f'.jp-DirListing-item[title*="{notebook}"]').first
    item.wait_for(timeout=120_000)
    if no_news.count():
        no_news.first.click()
    item.click(button="right")
    page.locator(".lm-Menu-item", has_text=re.compile(r"^Create Job$")).first.click()
    page.get_by_role("heading", name="Create Job").wait_for(timeout=60_000)


def choose(page, label: str, option: str) -> None:  # type: ignore[no-untyped-def]
    """Pick an option of one of the form's drop-downs (Material UI selects)."""
    page.get_by_label(label).click()
    page.get_by_role("option", name=option, exact=True).click()


def test_create_job_in_jupyterlab_queues_a_batch_job_that_succeeds_and_downloads(
    hub: HubProcess, browser
) -> None:
    user = hub.ready_user("lab-br")
    assert user.start_server(timeout=120).status_code in (201, 202)
    put_notebook(user, "double.ipynb", NB)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        log_in(page, hub, user.name)
        open_create_job(page, hub, user.name, "double.ipynb")
        choose(page, "Compute type", "cpu")
        page.get_by_title("Add new parameter").click()
        page.locator('input[name="parameter-0-name"]').fill("x")
        page.locator('input[name="parameter-0-value"]').fill("21")
        page.locator('input[name="parameter-0-value"]').press("Tab")
        shot(page, "lab-create-job-1280")
        page.get_by_role("button", name="Create", exact=True).click()
        # The Jobs panel opens on the list, with the new job in it.
        row = page.locator("tr", has_text="double").first
        row.wait_for(timeout=60_000)
        batch = Batch(user)
        jobs = batch.call("GET", "jobs").json()["jobs"]
        assert [(j["input_name"], j["profile"], j["parameters"]) for j in jobs] == [
            ("double.ipynb", "cpu", {"x": 21})
        ]
        job = batch.wait(jobs[0]["id"])
        assert job["state"] == "succeeded"
        page.get_by_role("button", name="Reload").first.click()
        row.get_by_text("Completed").wait_for(timeout=60_000)
        shot(page, "lab-jobs-panel-1280")
        # Download: the executed notebook lands in the user's folder, under jobs/.
        row.get_by_title('Download output files for "double"').click()
        folder = f"jobs/double-batch-{job['id']}"
        listing = None
        for _ in range(120):
            r = user.api("GET", f"/user/{user.name}/api/contents/{folder}")
            found = {f["name"] for f in r.json()["content"]} if r.status_code == 200 else set()
            if "double.ipynb" in found and {n.rsplit(".", 1)[1] for n in found} >= {"html"}:
                listing = r.json()
                break
            page.wait_for_timeout(500)
        assert listing is not None, "the job's files never reached the file browser"
        names = sorted(f["name"] for f in listing["content"])
        executed = [n for n in names if n.endswith(".ipynb") and n != "double.ipynb"]
        assert len(executed) == 1 and any(n.endswith(".html") for n in names), names
        nb = user.api("GET", f"/user/{user.name}/api/contents/{folder}/{executed[0]}").json()
        printed = [
            "".join(o.get("text", "")) for c in nb["content"]["cells"] for o in c.get("outputs", [])
        ]
        assert any("y is 42" in text for text in printed), printed
        # Phone width: the same dialog and panel, read at 390 pixels.
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
        small = phone.new_page()
        log_in(small, hub, user.name)
        open_create_job(small, hub, user.name, "double.ipynb")
        # On a phone the file browser is folded away to read the form (JupyterLab's own tab).
        small.locator("#jp-left-stack").wait_for()
        small.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()
        small.get_by_label("Job name").wait_for()
        shot(small, "lab-create-job-390")
        small.get_by_role("button", name="Cancel", exact=True).click()
        small.locator("tr", has_text="double").first.get_by_text("Completed").wait_for(
            timeout=60_000
        )
        shot(small, "lab-jobs-panel-390")
        phone.close()
    finally:
        context.close()
        user.stop_server()


SLOW = notebook(
    "import time",
    "y = x * 2",
    "time.sleep(8)",
    "print('y is', y)",
    parameters="x = 1",
)


def open_additional_options(page) -> None:  # type: ignore[no-untyped-def]
    """The form's "Additional options" (folded by default) hold the time limit."""
    page.get_by_text("Additional options").click()
    page.get_by_label("Time limit", exact=True).wait_for()


def open_queue_panel(page) -> None:  # type: ignore[no-untyped-def]
    """The Batch queue panel in JupyterLab's right side bar."""
    page.locator('.jp-SideBar .lm-TabBar-tab[title="Batch queue"]').click()
    page.locator("#batchhub-queue").wait_for()


def test_time_limit_queue_position_progress_and_live_kernel_in_jupyterlab(
    hub: HubProcess, browser
) -> None:
    from tests.test_batch_browser import run_in_lab

    user = hub.ready_user("lab-tl")
    assert user.start_server(timeout=120).status_code in (201, 202)
    put_notebook(user, "slow.ipynb", SLOW)
    batch, admin = Batch(user), Batch(hub.admin())
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    # Paused, the new job waits in line (with its place and why) until the test resumes it.
    admin.call("PUT", "queue", json={"paused": True})
    try:
        log_in(page, hub, user.name)
        open_create_job(page, hub, user.name, "slow.ipynb")
        choose(page, "Compute type", "cpu")
        page.get_by_title("Add new parameter").click()
        page.locator('input[name="parameter-0-name"]').fill("x")
        page.locator('input[name="parameter-0-value"]').fill("21")
        open_additional_options(page)
        limit = page.get_by_label("Time limit", exact=True)
        create = page.get_by_role("button", name="Create", exact=True)
        # Not a number, then beyond the profile's maximum (cpu: one hour): a message, no Create.
        limit.fill("soon")
        page.get_by_role("alert").get_by_text("Enter a number of hours").wait_for()
        assert create.is_disabled()
        limit.fill("2")
        page.get_by_role("alert").get_by_text("At most 1 hour on CPU.").wait_for()
        assert create.is_disabled()
        shot(page, "lab-time-limit-error-1280")
        assert batch.count() == 0
        # 45 minutes is within it.
        page.get_by_label("Time limit unit").select_option("minutes")
        limit.fill("45")
        page.get_by_text("at most 1 hour.").wait_for()
        assert create.is_enabled()
        shot(page, "lab-time-limit-1280")
        create.click()
        page.locator("tr", has_text="slow").first.wait_for(timeout=60_000)
        jobs = batch.call("GET", "jobs").json()["jobs"]
        assert [(j["input_name"], j["parameters"], j["time_limit"]) for j in jobs] == [
            ("slow.ipynb", {"x": 21}, 45 * 60)
        ]
        job_id = jobs[0]["id"]
        # The job's detail view shows its time limit.
        page.locator("tr", has_text="slow").first.get_by_text("slow", exact=True).click()
        page.locator(".bh-TimeLimit", has_text="45 minutes").wait_for(timeout=30_000)
        page.locator(".bh-TimeLimit").scroll_into_view_if_needed()
        shot(page, "lab-job-detail-1280")
        open_queue_panel(page)
        row = page.locator(f'#batchhub-queue li[data-job-id="{job_id}"]')
        row.get_by_text(re.compile(r"^Number \d+ in line$")).wait_for(timeout=30_000)
        assert "the queue is paused" in row.locator(".bh-Job-reason").inner_text()
        assert "limit 45 minutes" in row.inner_text()
        shot(page, "lab-queue-queued-1280")
    finally:
        admin.call("PUT", "queue", json={"paused": False})
    try:
        # Running: its progress, cells done of all, while it sleeps in the third cell.
        row.get_by_text("Running").wait_for(timeout=90_000)
        row.get_by_text(re.compile(r"[1-9]\d* of \d+ cells done")).wait_for(timeout=60_000)
        assert row.locator("progress").count() == 1
        shot(page, "lab-queue-running-1280")
        job = batch.wait(job_id)
        assert job["state"] == "succeeded" and job["live"], job
        live = row.get_by_role("button", name="Open live kernel")
        live.wait_for(timeout=30_000)
        shot(page, "lab-queue-live-1280")
        user.wait_server(job["server_name"], ready=True)
        with context.expect_page() as opened:
            live.click()
        lab = opened.value
        # The notebook is on the run's kernel: the variable the run set is there.
        run_in_lab(lab, "print('still', y)", "still 42")
        # Phone width: the panel and the form's time limit, read at 390 pixels.
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
        small = phone.new_page()
        log_in(small, hub, user.name)
        open_create_job(small, hub, user.name, "slow.ipynb")
        small.locator("#jp-left-stack").wait_for()
        small.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()
        open_additional_options(small)
        small.get_by_label("Time limit unit").select_option("minutes")
        small.get_by_label("Time limit", exact=True).fill("30")
        small.get_by_label("Time limit", exact=True).scroll_into_view_if_needed()
        shot(small, "lab-time-limit-390")
        open_queue_panel(small)
        small.locator(f'#batchhub-queue li[data-job-id="{job_id}"]').get_by_role(
            "button", name="Open live kernel"
        ).wait_for(timeout=30_000)
        shot(small, "lab-queue-390")
        phone.close()
    finally:
        context.close()
        batch.call("POST", f"jobs/{job_id}/release")
        user.stop_server()
