"""Long lists on the Batch page come a page at a time: sweeps by 20, schedules by 50, jobs by 50,
each with Newer and Older, in Chromium. The queue is paused, so nothing the lists hold runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.batch import Batch, notebook
from tests.hub import HubProcess, deep_update
from tests.test_batch_pages import SHOTS, page_for

pytestmark = pytest.mark.browser


def made(batch: Batch, path: str, count: int, **fields: str) -> list[str]:
    """Ids of `count` sweeps or schedules, oldest first (each of its own notebook: the same sweep
    sent twice is the same sweep)."""
    ids = []
    for n in range(count):
        nb = notebook(f"y = x + {n}", parameters="x = 1")
        r = batch.call("POST", path, files={"file": (f"item-{n:02}.ipynb", nb)}, data=fields)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


def test_sweeps_and_schedules_page_through_newer_and_older(fresh_hub: HubProcess, browser) -> None:
    deep_update(fresh_hub.values, {"batch": {"paused": True}})
    fresh_hub.start()
    user = fresh_hub.ready_user("lst-ida")
    batch = Batch(user)
    spec = json.dumps({"kind": "grid", "grid": {"x": "1:2"}})
    sweeps = made(batch, "sweeps", 21, spec=spec, profile="cpu")
    schedules = made(batch, "definitions", 52, schedule="0 6 * * *", profile="cpu", paused="true")
    ctx, page = page_for(browser, fresh_hub, user, viewport={"width": 1280, "height": 900})
    page.goto(f"{fresh_hub.url}/services/batch/")

    # Sweeps: the newest 20, then the oldest one alone, then back.
    page.wait_for_selector(f"#sweep-{sweeps[-1]}", timeout=15_000)
    assert page.inner_text("#sweeps-info") == "1–20 of 21"
    assert page.is_disabled("#sweeps-prev") and page.locator(f"#sweep-{sweeps[0]}").count() == 0
    page.click("#sweeps-next")
    page.wait_for_selector(f"#sweep-{sweeps[0]}", timeout=10_000)
    assert page.locator("#sweeps-table tbody tr").count() == 1
    assert page.inner_text("#sweeps-info") == "21–21 of 21" and page.is_disabled("#sweeps-next")
    page.click("#sweeps-prev")
    page.wait_for_selector(f"#sweep-{sweeps[-1]}", timeout=10_000)

    # Schedules: 50, then the two oldest.
    page.wait_for_selector(f"#definition-{schedules[-1]}", timeout=15_000)
    assert page.inner_text("#schedules-info") == "1–50 of 52"
    page.click("#schedules-next")
    page.wait_for_selector(f"#definition-{schedules[0]}", timeout=10_000)
    assert page.locator("#schedules-table tbody tr").count() == 2
    # One of them deleted meanwhile: the page shows what is left of it.
    batch.call("DELETE", f"definitions/{schedules[1]}")
    page.wait_for_selector(f"#definition-{schedules[1]}", state="detached", timeout=10_000)
    assert page.inner_text("#schedules-info") == "51–51 of 51"
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "batch-lists-paged-1280.png"), full_page=True)

    # The jobs (the sweeps' points) fit one page of 50, which says so.
    jobs = batch.count()
    assert jobs == 42
    assert page.inner_text("#page-info") == f"1–{jobs} of {jobs}" and page.is_disabled("#page-next")
    ctx.close()
