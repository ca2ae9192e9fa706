"""The results of a 1,000-point sweep: the results API's answer (one row per point, with its
parameters, times and recorded values) and the sweep page drawn in Chromium (all 1,000 rows read,
sorted and filtered in the page, the first hundred drawn in the table, and the plot of all 1,000
points), each beside a baseline taken in the same run.

A 40x25 grid is submitted through the API while an admin holds the queue, so no point runs; its
jobs are then written as succeeded with times and recorded values straight into the service's
SQLite store through the store's own models (the results read nothing else). Baselines: the same
1,000 jobs read through the job list API (two pages of 500), and the page of one of its jobs
drawn in the same browser.

    .venv/bin/python bench/sweep_results_page.py [--samples 7]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests
from sqlalchemy import select

# Run as `python bench/<script>.py`: the repository root holds the bench and tests packages.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from batch_service.store import Job, Store  # noqa: E402
from bench._hub import bench_hub  # noqa: E402
from bench._table import Figure, arguments, interleaved, report  # noqa: E402
from tests.batch import Batch, notebook  # noqa: E402
from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.test_embedded_browser import log_in  # noqa: E402

MODEL = notebook(
    "import scrapbook as sb\nsb.glue('loss', (a - 20) ** 2 + b)", parameters="a = 1\nb = 1"
)
GRID = {"kind": "grid", "grid": {"a": "1:40", "b": "1:25"}}
POINTS = 1000


def finish_points(store: Store, sweep_id: str) -> None:
    """Every point of the sweep succeeded, with a run time and its recorded values."""
    t = time.time() - 3600
    with store.session() as session:
        jobs = session.scalars(select(Job).where(Job.sweep_id == sweep_id)).all()
        assert len(jobs) == POINTS, len(jobs)
        for i, job in enumerate(jobs):
            a, b = job.parameters["a"], job.parameters["b"]
            job.state = "succeeded"
            job.started_at = t + i
            job.finished_at = t + i + 20 + i % 13
            job.recorded = {"loss": (a - 20) ** 2 + b, "label": f"a={a}, b={b}"}


def timed(call: Callable[[], object]) -> Callable[[], float]:
    """A sampler: the call's wall time in ms."""

    def sample() -> float:
        t = time.perf_counter()
        call()
        return (time.perf_counter() - t) * 1000

    return sample


def main() -> None:
    """Make the sweep, then time the API and the page against their baselines."""
    parser = argparse.ArgumentParser()
    arguments(parser)
    parser.set_defaults(samples=7)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with bench_hub() as hub:
        user = hub.ready_user("bench-sweep")
        admin = Batch(hub.admin())
        batch = Batch(user)
        admin.call("PUT", "queue", json={"paused": True})
        files = {"file": ("model.ipynb", MODEL)}
        data = {"spec": json.dumps(GRID), "profile": "cpu", "max_parallel": "4"}
        r = batch.call("POST", "sweeps", files=files, data=data)
        assert r.status_code == 201, r.text
        sweep_id = r.json()["id"]
        store = Store(f"sqlite:///{hub.state_dir / 'state' / 'batch' / 'jobs.sqlite'}")
        finish_points(store, sweep_id)
        api = f"{hub.url}/services/batch/api/v1/"
        session = requests.Session()
        headers = {"Authorization": f"token {user.token}"}

        def results() -> None:
            r = session.get(f"{api}sweeps/{sweep_id}/results", headers=headers, timeout=60)
            assert r.status_code == 200 and len(r.json()["rows"]) == POINTS

        def job_list() -> None:
            for offset in (0, 500):
                query = f"jobs?limit=500&offset={offset}&owner={user.name}"
                r = session.get(api + query, headers=headers, timeout=60)
                assert r.status_code == 200 and len(r.json()["jobs"]) == 500

        api_ours, api_base = interleaved(timed(results), timed(job_list), args.samples)
        a_job = batch.call("GET", f"sweeps/{sweep_id}/results").json()["rows"][0]["job_id"]

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            log_in(page, hub, user.name)
            page.wait_for_url("**/hub/**")

            def drawn(path: str, ready: str) -> Callable[[], float]:
                """ms from the start of navigation until `ready` is on the page."""

                def sample() -> float:
                    page.goto(hub.url + path)
                    page.wait_for_selector(ready, state="attached", timeout=120_000)
                    return page.evaluate("performance.now()")

                return sample

            sweep_page = drawn(
                f"/services/batch/sweeps/{sweep_id}",
                f"#sweep-app[data-rows='{POINTS}'][data-shown='100'][data-plot-points='{POINTS}']",
            )
            job_page = drawn(f"/services/batch/jobs/{a_job}", "#job-state[data-state='succeeded']")
            page_ours, page_base = interleaved(sweep_page, job_page, args.samples)
            browser.close()
        admin.call("PUT", "queue", json={"paused": False})
    report(
        [
            Figure(
                f"sweep results API, {POINTS} points",
                "ms",
                api_ours,
                api_base,
                baseline_name=f"(the same {POINTS} jobs from the job list)",
            ),
            Figure(
                f"sweep page in Chromium, {POINTS} points (100 rows shown, plot of all)",
                "ms",
                page_ours,
                page_base,
                baseline_name="(the page of one job)",
            ),
        ]
    )
    print("Times are wall clock on loopback through the proxy (the API: request to last byte;")
    print("the page: navigation start to the table and plot drawn). Other work on the machine")
    print("shows in the spread.")


if __name__ == "__main__":
    main()
