"""From "Create" in JupyterLab's Create Job to the job stored, beside a submission from the
Batch page: milliseconds from the click to the answer that says the job is stored (the lab's
POST scheduler/jobs answers after the service's 201; the Batch page's POST jobs is the 201).

Both in headless Chromium (Debian's), one notebook with one parameter on the cpu profile,
samples interleaved (bench/_table.py: lab and page in turns, who goes first alternating, after a
discarded warm-up turn); the queue is paused so nothing runs meanwhile.

    .venv/bin/python bench/lab_create_job.py [--samples 7]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# Run as `python bench/<script>.py`: the repository root holds the bench and tests packages.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._hub import bench_hub  # noqa: E402
from bench._table import Figure, arguments, interleaved, report  # noqa: E402
from tests.batch import Batch  # noqa: E402
from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.test_embedded_browser import log_in  # noqa: E402
from tests.test_lab_jobs import NB, put_notebook  # noqa: E402
from tests.test_lab_jobs_browser import choose, open_create_job  # noqa: E402


def lab_sample(page, hub, user: str) -> float:  # type: ignore[no-untyped-def]
    """Fill Create Job, then time Create -> the lab's answer (the job is stored by then)."""
    open_create_job(page, hub, user, "double.ipynb")
    choose(page, "Compute type", "cpu")
    page.get_by_title("Add new parameter").click()
    page.locator('input[name="parameter-0-name"]').fill("x")
    page.locator('input[name="parameter-0-value"]').fill("21")
    page.locator('input[name="parameter-0-value"]').press("Tab")
    create = page.get_by_role("button", name="Create", exact=True)
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.split("?")[0].endswith("/scheduler/jobs")
    ) as answer:
        start = time.perf_counter()
        create.click()
    response = answer.value
    response.finished()
    elapsed = time.perf_counter() - start
    assert response.status == 200, response.text()
    return elapsed


def page_sample(page, hub) -> float:  # type: ignore[no-untyped-def]
    """Fill the Batch page's form, then time Submit -> the service's 201."""
    page.goto(f"{hub.url}/services/batch/")
    page.set_input_files(
        "#job-file",
        files=[{"name": "double.ipynb", "mimeType": "application/json", "buffer": NB}],
    )
    page.wait_for_selector("#params .param-value")
    page.fill("#params .param-value", "21")
    page.select_option("#job-profile", "cpu")
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.split("?")[0].endswith("/api/v1/jobs")
    ) as answer:
        start = time.perf_counter()
        page.click("#job-submit")
    response = answer.value
    response.finished()
    elapsed = time.perf_counter() - start
    assert response.status == 201, response.text()
    return elapsed


def main() -> None:
    """Interleave samples of both and report them to the common table."""
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser()
    arguments(parser)
    parser.set_defaults(samples=7)
    args = parser.parse_args()
    with bench_hub() as hub:
        admin = Batch(hub.admin())
        admin.call("PUT", "queue", json={"paused": True})
        user = hub.ready_user("bench-lab")
        user.start_server(timeout=180)
        put_notebook(user, "double.ipynb", NB)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            log_in(page, hub, user.name)
            page.wait_for_url("**/user/**")
            # The first turn (JupyterLab's first load) is discarded as the warm-up.
            lab_ms, page_ms = interleaved(
                lambda: lab_sample(page, hub, user.name) * 1000,
                lambda: page_sample(page, hub) * 1000,
                samples=args.samples,
            )
            browser.close()
        jobs = Batch(user).call("GET", "jobs?state=queued&limit=500").json()["jobs"]
        for job in jobs:
            Batch(user).call("POST", f"jobs/{job['id']}/cancel")
        user.stop_server()
    report(
        [
            Figure(
                "JupyterLab Create -> job stored",
                "ms",
                lab_ms,
                page_ms,
                "Batch page Submit -> job stored",
            )
        ]
    )


if __name__ == "__main__":
    main()
