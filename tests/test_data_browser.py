"""A person in Chromium uploads a dataset with the Data page (tus-js-client), reloading midway."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from tests.batch import Batch
from tests.hub import HubProcess
from tests.test_embedded_browser import log_in
from tests.tus import files_dir, make_file

pytestmark = pytest.mark.browser
SHOTS = os.environ.get("BATCHHUB_SCREENSHOTS")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def biggest_upload(hub: HubProcess) -> int:
    sizes = [p.stat().st_size for p in (files_dir(hub) / "uploads").iterdir()]
    return max(sizes, default=0)


def throttle(context, page, bytes_per_second: int) -> None:  # type: ignore[no-untyped-def]
    """Chromium's own network throttling, so the reload lands mid-upload on any machine."""
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": bytes_per_second,
        },
    )


def start_upload(page, hub: HubProcess, name: str, source: Path) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{hub.url}/services/batch/data")
    page.fill("#data-name", name)
    page.set_input_files("#data-files", str(source))
    page.click("#data-upload")


def test_a_200_mb_upload_survives_a_page_reload_and_arrives_whole(
    hub: HubProcess, browser, tmp_path: Path
) -> None:
    user = hub.ready_user("br-uma")
    source = tmp_path / "images.bin"
    size = 200 * 2**20
    make_file(source, size)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, hub, user.name)
    throttle(context, page, 40 * 2**20)
    start_upload(page, hub, "images", source)
    page.wait_for_selector("#upload-stats:has-text('MiB/s')", timeout=60_000)
    deadline = time.monotonic() + 120
    while biggest_upload(hub) < size // 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert biggest_upload(hub) >= size // 2
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/data-uploading-desktop.png", full_page=True)
    page.reload()  # the tab goes away mid-upload
    pending = Batch(user).call("GET", "datasets/images").json()
    assert pending["state"] == "uploading" and 0 < pending["uploads"][0]["offset"] < size

    throttle(context, page, 200 * 2**20)
    start_upload(page, hub, "images", source)
    page.wait_for_selector("#upload-message:has-text('Resuming images.bin')", timeout=30_000)
    page.wait_for_selector("#upload-message.text-success", timeout=180_000)
    assert "ready at /data/images" in page.inner_text("#upload-message")
    ready = Batch(user).call("GET", "datasets/images").json()
    assert ready["sha256"] == sha256(source) and ready["size"] == size
    page.wait_for_selector("#dataset-images[data-state=ready]")
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/data-desktop.png", full_page=True)
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
        small = phone.new_page()
        log_in(small, hub, user.name)
        small.goto(f"{hub.url}/services/batch/data")
        small.wait_for_selector("#dataset-images")
        small.screenshot(path=f"{SHOTS}/data-phone.png", full_page=True)
        phone.close()
    context.close()
    Batch(user).call("DELETE", "datasets/images")


def test_the_nav_bar_links_to_the_data_page(hub: HubProcess, browser) -> None:
    user = hub.ready_user("br-vic")
    context = browser.new_context()
    page = context.new_page()
    log_in(page, hub, user.name)
    page.goto(f"{hub.url}/hub/home")
    page.click("#batchhub-nav-data")
    page.wait_for_selector("#data-app")
    assert page.inner_text("#datasets-empty") == "No datasets yet."
    context.close()


def test_a_whole_folder_uploads_from_the_page_and_keeps_its_layout(
    hub: HubProcess, browser, tmp_path: Path
) -> None:
    user = hub.ready_user("br-wes")
    folder = tmp_path / "survey"
    (folder / "2024").mkdir(parents=True)
    (folder / "2024" / "answers.csv").write_text("q,a\n1,yes\n")
    (folder / "codebook.txt").write_text("q: question\n")
    context = browser.new_context()
    page = context.new_page()
    log_in(page, hub, user.name)
    page.goto(f"{hub.url}/services/batch/data")
    page.fill("#data-name", "survey")
    page.select_option("#data-readers", "everyone")
    page.set_input_files("#data-folder", str(folder))
    page.click("#data-upload")
    page.wait_for_selector("#upload-message.text-success", timeout=60_000)
    ready = Batch(user).call("GET", "datasets/survey").json()
    assert ready["files"] == 2 and ready["readers"] == "everyone"
    stored = files_dir(hub) / "datasets" / ready["id"]
    assert (stored / "2024" / "answers.csv").read_text() == "q,a\n1,yes\n"
    assert (stored / "codebook.txt").read_text() == "q: question\n"
    # Another person sees it listed (everyone may read it) but may not delete it.
    other = Batch(hub.ready_user("br-xia"))
    assert "survey" in str(other.call("GET", "datasets").json())
    assert other.call("DELETE", "datasets/survey").status_code == 403
    context.close()
    Batch(user).call("DELETE", "datasets/survey")
