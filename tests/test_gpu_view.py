"""Who holds the GPUs: counts and times for everyone, names for batch readers and the holder,
and an admin who ends a holder from the view (the API, then the page in Chromium)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.batch import Batch, notebook
from tests.hub import HubProcess
from tests.test_batch_pages import SHOTS, page_for


def view_until(batch: Batch, ok: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict:
    """The GPU view once ok(view) holds (it follows the scheduler's passes)."""
    deadline = time.monotonic() + timeout
    view = batch.call("GET", "gpus").json()
    while not ok(view) and time.monotonic() < deadline:
        time.sleep(0.3)
        view = batch.call("GET", "gpus").json()
    assert ok(view), view
    return view


def held(view: dict[str, Any]) -> int:
    return sum(t["held"] for t in view["types"])


def test_everyone_sees_who_holds_the_gpus_and_an_admin_ends_a_holder(hub: HubProcess) -> None:
    owner, lab_user, onlooker = (hub.ready_user(n) for n in ("gv-ivy", "gv-jon", "gv-kim"))
    ivy, kim, admin = Batch(owner), Batch(onlooker), Batch(hub.admin())
    job = ivy.wait(ivy.submit("gpu.ipynb", notebook("kept = 1"), profile="gpu-1").json()["id"])
    assert job["live"] is True
    assert lab_user.start_server("g", {"profile": "gpu-1"}).status_code in (201, 202)
    try:
        # Held from the spawn on; a GPU is named once the spawner gave it out.
        seen = view_until(kim, lambda v: held(v) == 2 and all(g["holder"] for g in v["gpus"]))
        assert seen["types"] == [{"type": "fake", "total": 2, "held": 2, "free": 0}]
        holders = {g["holder"]["kind"]: g["holder"] for g in seen["gpus"]}
        assert set(holders) == {"live kernel", "interactive server"}
        # Others' names stay hidden; times do not.
        assert all(h["owner"] is None and h["job_id"] is None for h in holders.values())
        assert holders["live kernel"]["until"] == pytest.approx(job["live_until"], abs=1)
        assert holders["interactive server"]["until"] is None
        assert all(h["since"] for h in holders.values())
        mine = [g["holder"] for g in Batch(owner).call("GET", "gpus").json()["gpus"]]
        assert {"owner": "gv-ivy", "job_id": job["id"], "mine": True}.items() <= next(
            h for h in mine if h["kind"] == "live kernel"
        ).items()
        named = {
            g["holder"]["owner"]: g["holder"] for g in admin.call("GET", "gpus").json()["gpus"]
        }
        assert named["gv-jon"]["server"] == "g" and named["gv-ivy"]["job_id"] == job["id"]
        # The GPUs are the ones the hub's spawner gave each server, one each.
        uuids = [uuid for h in named.values() for uuid in h["gpus"]]
        assert sorted(uuids) == sorted(g["uuid"] for g in seen["gpus"])

        assert (
            kim.call("POST", "gpus/end", json={"owner": "gv-jon", "server": "g"}).status_code == 403
        )
        ended = admin.call("POST", "gpus/end", json={"owner": "gv-jon", "server": "g"})
        assert ended.status_code == 200 and ended.json()["ended"] == "stopped the server"
        lab_user.wait_server("g", ready=False, timeout=30)
        ended = admin.call(
            "POST", "gpus/end", json={"owner": "gv-ivy", "server": job["server_name"]}
        )
        assert ended.json()["ended"] == "released the live kernel"
        assert ivy.job(job["id"])["live"] is False
        view_until(kim, lambda v: held(v) == 0)
    finally:
        if lab_user.server_model("g"):
            lab_user.stop_server("g")


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 390])
def test_the_gpu_page_shows_holders_and_an_admin_ends_one(
    hub: HubProcess, browser, width: int
) -> None:
    person = hub.ready_user(f"gv-page-{width}")
    batch = Batch(person)
    job = batch.wait(batch.submit("gpu.ipynb", notebook("kept = 1"), profile="gpu-1").json()["id"])
    view_until(batch, lambda v: held(v) == 1)
    ctx, page = page_for(browser, hub, hub.admin(), viewport={"width": width, "height": 900})
    try:
        page.goto(f"{hub.url}/services/batch/gpus")
        row = page.locator("#gpu-table tbody tr", has_text=person.name)
        row.wait_for(timeout=30_000)
        assert "live kernel of" in row.inner_text()
        assert "1 free of 2" in page.inner_text("#gpu-types")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert page.locator("#batchhub-nav-gpus").is_visible() or width < 992  # nav collapses
        if SHOTS:
            page.screenshot(path=str(Path(SHOTS) / f"gpus-{width}.png"), full_page=True)
        row.get_by_role("button", name=f"Release kernel of {person.name}").click()
        page.click("#confirm-ok")
        page.wait_for_selector("#gpu-message.alert-success", timeout=30_000)
        page.wait_for_function(
            "document.getElementById('gpu-types').innerText.includes('2 free of 2')",
            timeout=30_000,
        )
        assert batch.job(job["id"])["live"] is False
    finally:
        ctx.close()
