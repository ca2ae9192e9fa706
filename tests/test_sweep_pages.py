"""Sweeps as a person uses them in Chromium: a 3x3 grid submitted from the Batch page, its
results table (glued values, sorting, filters), the plot, the CSV and JSON downloads, the
sweep's buttons, and both pages at desktop and phone width; an optimisation and an exploration
started from the same form."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.batch import Batch, notebook
from tests.hub import HubProcess
from tests.test_batch_pages import SHOTS, page_for
from tests.test_sweeps_adaptive import disc

pytestmark = pytest.mark.browser
MODEL = notebook(
    "import scrapbook as sb\nloss = (a - 2) ** 2 + b\nsb.glue('loss', loss)",
    parameters="a = 1\nb = 1",
)


def table_rows(page) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    """The results table as a person reads it: one dict per row, cell text by column key."""
    return page.eval_on_selector_all(
        "#results-table tbody tr[id^='point-']",
        """rows => rows.map(tr => Object.fromEntries(
            [...tr.querySelectorAll('td')].map(td => [td.dataset.key, td.innerText.trim()])))""",
    )


def wait_done(batch: Batch, sweep_id: str, timeout: float = 400) -> dict[str, Any]:
    """The sweep once none of its points waits or runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sweep = batch.call("GET", f"sweeps/{sweep_id}").json()
        if sweep["state"] in ("done", "cancelled"):
            return sweep
        time.sleep(1)
    raise AssertionError(f"sweep {sweep_id} did not finish: {sweep}")


def sweep_form(browser, hub: HubProcess, user, name: str, content: bytes):  # type: ignore[no-untyped-def]
    """The Batch page's form in sweep mode, the file chosen (its parameters a and b become
    rows) and the CPU profile picked."""
    ctx, page = page_for(browser, hub, user)
    page.goto(f"{hub.url}/services/batch/")
    page.check("#mode-sweep")
    page.set_input_files(
        "#job-file", files=[{"name": name, "mimeType": "application/json", "buffer": content}]
    )
    page.wait_for_selector("#sweep-values-b")
    page.select_option("#job-profile", "cpu")
    return ctx, page


def refused_on_submit(page, words: str) -> None:  # type: ignore[no-untyped-def]
    """Submitting the form is refused: its message, in red, comes to say `words` (the page's
    own check or the service's answer)."""
    page.click("#job-submit")
    page.wait_for_function(
        "words => document.getElementById('submit-message').textContent.includes(words)",
        arg=words,
        timeout=30_000,
    )
    assert "text-danger" in page.get_attribute("#submit-message", "class")


def form_shots(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """Screenshots of the filled form at desktop and phone width, then back to desktop."""
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        if SHOTS:
            page.screenshot(path=str(Path(SHOTS) / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def fits_both_widths(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """The page at desktop and phone width: screenshots, and nothing wider than the screen
    once the plot has followed the new width."""
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        if SHOTS:
            page.screenshot(path=str(Path(SHOTS) / f"{name}-{width}.png"), full_page=True)
        page.wait_for_function(
            "document.documentElement.scrollWidth <= window.innerWidth + 1", timeout=10_000
        )


@pytest.fixture(scope="module")
def grid(hub: HubProcess, browser):  # type: ignore[no-untyped-def]
    """A 3x3 grid submitted from the Batch page's form (after one refused try), run to its end."""
    user = hub.ready_user("swp-ana")
    batch = Batch(user)
    ctx, page = sweep_form(browser, hub, user, "model.ipynb", MODEL)
    # One row per parameter of the notebook's parameters cell; the job's value table is hidden.
    assert page.is_hidden("#params-box")
    # A step of 0 is refused by the service, its words shown next to the form; nothing stored.
    page.fill("#sweep-values-a", "1:3:0")
    page.fill("#sweep-values-b", "1, 2, 3")
    refused_on_submit(page, "step of a range may not be 0")
    assert batch.call("GET", "sweeps").json()["total"] == 0 and batch.count() == 0
    page.fill("#sweep-values-a", "1:3")
    assert page.inner_text("#sweep-size") == "3 × 3 = 9 points, each a job."
    page.fill("#sweep-max-parallel", "3")
    page.click("#job-submit")
    page.wait_for_selector("#sweep-link", timeout=60_000)
    assert "9 points queued" in page.inner_text("#submit-message")
    sweep_id = page.inner_text("#sweep-link").split()[-1]
    # The list of sweeps shows it with its points counted by state.
    page.wait_for_selector(f"#sweep-{sweep_id}", timeout=10_000)
    assert "9 points" in page.inner_text(f"#sweep-{sweep_id}")
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "batch-sweep-form-1280.png"), full_page=True)
    sweep = wait_done(batch, sweep_id)
    yield {"user": user, "batch": batch, "ctx": ctx, "page": page, "sweep": sweep}
    ctx.close()


def test_the_results_table_has_a_row_per_point_with_its_glued_value(grid) -> None:  # type: ignore[no-untyped-def]
    page, sweep = grid["page"], grid["sweep"]
    assert sweep["counts"]["succeeded"] == 9, sweep
    page.click("#sweep-link")
    page.wait_for_url(f"**/services/batch/sweeps/{sweep['id']}")
    page.wait_for_selector("#sweep-app[data-rows='9']", timeout=30_000)
    assert page.get_attribute("#sweep-state", "data-state") == "done"
    assert "9 succeeded" in page.inner_text("#sweep-counts")
    rows = table_rows(page)
    assert len(rows) == 9
    seen = set()
    for row in rows:
        a, b = int(row["param.a"]), int(row["param.b"])
        assert row["state"] == "succeeded" and row["error"] == ""
        assert float(row["value.loss"]) == (a - 2) ** 2 + b
        assert row["output"].split() == ["ipynb", "html"]
        seen.add((a, b))
    assert seen == {(a, b) for a in (1, 2, 3) for b in (1, 2, 3)}
    # Nine rows need no pages.
    assert page.is_hidden("#results-pages")
    # Nothing to act on in a finished sweep without failures.
    for button in ("#sweep-pause", "#sweep-resume", "#sweep-cancel", "#sweep-retry"):
        assert page.is_hidden(button), button


def test_sorting_and_filtering_the_table(grid) -> None:  # type: ignore[no-untyped-def]
    page, sweep = grid["page"], grid["sweep"]
    page.goto(f"{grid['user'].hub.url}/services/batch/sweeps/{sweep['id']}")
    page.wait_for_selector("#sweep-app[data-rows='9']", timeout=30_000)
    losses = lambda: [float(r["value.loss"]) for r in table_rows(page)]  # noqa: E731
    page.click("th[data-key='value.loss'] button")
    assert losses() == sorted(losses()) and len(set(losses())) > 1
    assert page.get_attribute("th[data-key='value.loss']", "aria-sort") == "ascending"
    page.click("th[data-key='value.loss'] button")
    assert losses() == sorted(losses(), reverse=True)
    assert page.get_attribute("th[data-key='value.loss']", "aria-sort") == "descending"
    page.click("th[data-key='param.b'] button")
    assert [int(r["param.b"]) for r in table_rows(page)] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    # The state filter: none failed, all succeeded.
    page.select_option("#results-state", "failed")
    assert table_rows(page) == []
    assert page.inner_text("#no-points") == "No point matches the filter."
    assert page.inner_text("#results-count") == "0 of 9 points shown"
    page.select_option("#results-state", "succeeded")
    assert len(table_rows(page)) == 9
    # The text filter matches any cell: one job's id finds its row.
    job_id = table_rows(page)[4]["job"]
    page.fill("#results-filter", job_id)
    assert [r["job"] for r in table_rows(page)] == [job_id]
    page.fill("#results-filter", "")
    page.select_option("#results-state", "")
    assert len(table_rows(page)) == 9


def test_the_plot_draws_every_point(grid) -> None:  # type: ignore[no-untyped-def]
    page, sweep = grid["page"], grid["sweep"]
    page.goto(f"{grid['user'].hub.url}/services/batch/sweeps/{sweep['id']}")
    page.wait_for_selector("#plot[data-points='9']", timeout=30_000)
    chart = "Chart.getChart(document.getElementById('plot'))"
    # Two parameters: each point placed by a and b, coloured by the loss.
    assert page.input_value("#plot-value") == "loss"
    assert (page.input_value("#plot-x"), page.input_value("#plot-y")) == ("a", "b")
    data = page.evaluate(f"{chart}.data.datasets.flatMap(d => d.data)")
    assert sorted((p["x"], p["y"], p["v"]) for p in data) == sorted(
        (a, b, (a - 2) ** 2 + b) for a in (1, 2, 3) for b in (1, 2, 3)
    )
    # One colour per loss (1 to 4), each point in the colour of its own loss.
    colours = page.evaluate(
        f"{chart}.data.datasets.map(d => [d.backgroundColor, d.data.map(p => p.v)])"
    )
    assert len(colours) == 4 and all(len(set(losses)) == 1 for _, losses in colours)
    assert len({colour for colour, _ in colours}) == 4
    assert page.is_visible("#plot-scale")
    # One parameter: loss against a, a scatter of the same nine points.
    page.select_option("#plot-y", "")
    page.wait_for_function(f"{chart}.options.scales.y.title.text === 'loss'")
    data = page.evaluate(f"{chart}.data.datasets[0].data")
    assert sorted((p["x"], p["y"]) for p in data) == sorted(
        (a, (a - 2) ** 2 + b) for a in (1, 2, 3) for b in (1, 2, 3)
    )
    assert page.get_attribute("#plot", "data-points") == "9" and page.is_hidden("#plot-scale")
    # The canvas has pixels drawn on it.
    inked = page.evaluate(
        """() => { const c = document.getElementById('plot');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"""
    )
    assert inked > 1000


def test_the_downloads_are_the_table(grid) -> None:  # type: ignore[no-untyped-def]
    page, sweep = grid["page"], grid["sweep"]
    page.goto(f"{grid['user'].hub.url}/services/batch/sweeps/{sweep['id']}")
    page.wait_for_selector("#sweep-app[data-rows='9']", timeout=30_000)
    shown = {
        r["job"]: (int(r["param.a"]), int(r["param.b"]), r["state"], float(r["value.loss"]))
        for r in table_rows(page)
    }
    with page.expect_download() as download:
        page.click("#download-csv")
    assert download.value.suggested_filename == f"sweep-{sweep['id']}.csv"
    table = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert {
        t["job_id"]: (int(t["param.a"]), int(t["param.b"]), t["state"], float(t["value.loss"]))
        for t in table
    } == shown
    assert len(table) == 9
    with page.expect_download() as download:
        page.click("#download-json")
    body = json.loads(Path(download.value.path()).read_text())
    assert {
        r["job_id"]: (r["parameters"]["a"], r["parameters"]["b"], r["state"], r["recorded"]["loss"])
        for r in body["rows"]
    } == shown


@pytest.mark.parametrize("width", [1280, 390])
def test_the_sweep_page_fits_desktop_and_phone(grid, browser, width: int) -> None:  # type: ignore[no-untyped-def]
    user, sweep = grid["user"], grid["sweep"]
    ctx, page = page_for(browser, user.hub, user, viewport={"width": width, "height": 900})
    for name, path, ready in (
        ("sweep", f"/services/batch/sweeps/{sweep['id']}", "#plot[data-points='9']"),
        ("batch-sweeps", "/services/batch/", f"#sweep-{sweep['id']}"),
    ):
        page.goto(user.hub.url + path)
        page.wait_for_selector(ready, timeout=30_000)
        # Nothing sticks out sideways: the page never scrolls horizontally.
        assert page.evaluate("document.documentElement.scrollWidth") <= width, path
        if SHOTS:
            page.screenshot(path=str(Path(SHOTS) / f"{name}-{width}.png"), full_page=True)
    if width == 390:
        # On a phone each point is a card of labelled fields, sorted from a select box.
        page.goto(f"{user.hub.url}/services/batch/sweeps/{sweep['id']}")
        page.wait_for_selector("#sweep-app[data-rows='9']", timeout=30_000)
        label = page.eval_on_selector(
            "#results-table tbody tr td[data-key='value.loss']",
            "e => getComputedStyle(e, '::before').content",
        )
        assert label == '"recorded loss"'
        page.select_option("#results-sort", "value.loss:desc")
        losses = [float(r["value.loss"]) for r in table_rows(page)]
        assert losses == sorted(losses, reverse=True)
    ctx.close()


def test_a_table_and_random_samples_from_the_form_and_the_sweeps_buttons(
    hub: HubProcess,
    browser,  # type: ignore[no-untyped-def]
) -> None:
    user = hub.ready_user("swp-ben")
    batch = Batch(user)
    slow = notebook("import time\ntime.sleep(90)", parameters="a = 1\nb = 1")
    ctx, page = sweep_form(browser, hub, user, "slow.ipynb", slow)
    # A table (JSON file) with a column the notebook does not have: the service's words.
    page.select_option("#sweep-kind", "table")
    table = json.dumps([{"a": 1, "c": 2}]).encode()
    page.set_input_files(
        "#sweep-table-file",
        files=[{"name": "points.json", "mimeType": "application/json", "buffer": table}],
    )
    refused_on_submit(page, "'c' is not a parameter of slow.ipynb")
    # Random samples need both bounds.
    page.select_option("#sweep-kind", "random")
    page.fill("#sweep-low-a", "0")
    refused_on_submit(page, "needs bounds")
    assert batch.call("GET", "sweeps").json()["total"] == 0 and batch.count() == 0
    page.fill("#sweep-high-a", "10")
    page.locator("#sweep-space tbody tr").first.locator(".sweep-int").check()
    page.fill("#sweep-samples", "3")
    page.fill("#sweep-seed", "7")
    page.fill("#sweep-max-parallel", "1")
    page.click("#job-submit")
    page.wait_for_selector("#sweep-link", timeout=60_000)
    assert "3 points queued" in page.inner_text("#submit-message")
    page.click("#sweep-link")
    page.wait_for_selector("#sweep-app[data-rows='3']", timeout=30_000)
    sweep_id = page.url.rsplit("/", 1)[1]
    spec = batch.call("GET", f"sweeps/{sweep_id}").json()["spec"]
    assert spec == {
        "kind": "random",
        "space": {"a": {"low": 0, "high": 10, "int": True}},
        "samples": 3,
        "seed": 7,
    }
    # Only a was drawn (b keeps the notebook's value): whole numbers within the bounds.
    assert page.locator("th[data-key='param.b']").count() == 0
    assert all(0 <= int(r["param.a"]) <= 10 for r in table_rows(page))
    # Pause: nothing more starts; resume; cancel (asked first) ends every point.
    page.click("#sweep-pause")
    page.wait_for_selector("#sweep-state[data-state='paused']", timeout=15_000)
    assert "no point starts until you resume it" in page.inner_text("#sweep-state-note")
    assert batch.call("GET", f"sweeps/{sweep_id}").json()["state"] == "paused"
    page.click("#sweep-resume")
    page.wait_for_selector("#sweep-state[data-state='active']", timeout=15_000)
    page.click("#sweep-cancel")
    assert "queued points are dropped" in page.inner_text("#confirm-dialog")
    page.click("#confirm-ok")
    page.wait_for_selector("#sweep-state[data-state='cancelled']", timeout=15_000)
    page.wait_for_function(
        "[...document.querySelectorAll('#results-table tbody tr')]"
        ".every(tr => tr.dataset.state === 'cancelled')",
        timeout=15_000,
    )
    assert batch.call("GET", f"sweeps/{sweep_id}").json()["counts"]["cancelled"] == 3
    ctx.close()


def test_a_long_table_comes_a_hundred_rows_at_a_time(hub: HubProcess, browser) -> None:  # type: ignore[no-untyped-def]
    user = hub.ready_user("swp-cal")
    batch = Batch(user)
    # 110 points that never run: paused at once, then cancelled (at most one had started).
    r = batch.call(
        "POST",
        "sweeps",
        files={"file": ("model.ipynb", MODEL)},
        data={
            "spec": json.dumps({"kind": "grid", "grid": {"a": "1:11", "b": "1:10"}}),
            "profile": "cpu",
            "max_parallel": "1",
        },
    )
    assert r.status_code == 201, r.text
    sweep_id = r.json()["id"]
    assert batch.call("POST", f"sweeps/{sweep_id}/pause").status_code == 200
    assert batch.call("POST", f"sweeps/{sweep_id}/cancel").status_code == 200
    ctx, page = page_for(browser, hub, user)
    page.goto(f"{hub.url}/services/batch/sweeps/{sweep_id}")
    page.wait_for_selector("#sweep-app[data-rows='110'][data-shown='100']", timeout=30_000)
    assert len(table_rows(page)) == 100
    assert page.inner_text("#results-page") == "rows 1–100 of 110"
    assert page.is_visible("#results-pages") and page.is_disabled("#results-prev")
    page.click("#results-next")
    assert len(table_rows(page)) == 10 and page.inner_text("#results-page") == "rows 101–110 of 110"
    assert page.is_disabled("#results-next")
    # Sorting sorts all 110 and starts again at the first page.
    page.click("th[data-key='param.a'] button")
    page.click("th[data-key='param.a'] button")
    rows = table_rows(page)
    assert len(rows) == 100 and [int(r["param.a"]) for r in rows[:10]] == [11] * 10
    assert page.inner_text("#results-page") == "rows 1–100 of 110"
    # The plot has nothing to draw, and says why.
    assert page.get_attribute("#sweep-app", "data-plot-points") == "0"
    assert "sb.glue" in page.inner_text("#plot-note") and page.is_hidden("#plot-choices")
    ctx.close()


def test_an_optimisation_from_the_form_and_its_best_trial_on_the_sweep_page(
    hub: HubProcess,
    browser,  # type: ignore[no-untyped-def]
) -> None:
    user = hub.ready_user("swp-dee")
    batch = Batch(user)
    ctx, page = sweep_form(browser, hub, user, "model.ipynb", MODEL)
    # An optimisation takes the bounds rows of random samples, a value to optimise and trials.
    page.select_option("#sweep-kind", "optuna")
    assert page.is_visible("#sweep-objective") and page.is_visible("#sweep-low-a")
    assert page.is_hidden("#sweep-samples")
    assert page.inner_text("#sweep-size") == "At most 20 trials, each a job."
    page.fill("#sweep-low-a", "0")
    page.fill("#sweep-high-a", "4")
    page.locator("#sweep-space tbody tr").first.locator(".sweep-int").check()
    # Without the value to optimise: said on the page, nothing sent.
    refused_on_submit(page, "name the recorded value to optimise")
    # A name that is not an identifier: the service's words.
    page.fill("#sweep-objective", "the loss")
    refused_on_submit(page, "objective must name")
    assert batch.call("GET", "sweeps").json()["total"] == 0 and batch.count() == 0
    page.fill("#sweep-objective", "loss")
    page.fill("#sweep-trials", "2")
    assert page.inner_text("#sweep-size") == "At most 2 trials, each a job."
    page.fill("#sweep-seed", "3")
    page.fill("#sweep-max-parallel", "2")
    form_shots(page, "optuna-form")
    page.click("#job-submit")
    page.wait_for_selector("#sweep-link", timeout=60_000)
    assert "2 trials queued; Optuna asks for the next as runs end" in page.inner_text(
        "#submit-message"
    )
    sweep_id = page.inner_text("#sweep-link").split()[-1]
    sweep = batch.call("GET", f"sweeps/{sweep_id}").json()
    assert sweep["spec"] == {
        "kind": "optuna",
        "space": {"a": {"low": 0, "high": 4, "int": True}},
        "objective": "loss",
        "direction": "minimize",
        "max_trials": 2,
        "seed": 3,
    }
    page.click("#sweep-link")
    page.wait_for_selector("#sweep-spec:has-text('an optimisation')", timeout=30_000)
    assert "minimise loss over a in at most 2 trials" in page.inner_text("#sweep-spec")
    sweep = wait_done(batch, sweep_id)
    assert sweep["info"]["trial_states"] == {"complete": 2, "failed": 0, "running": 0}
    # The best trial as the page shows it: the smallest loss the runs recorded, and its job.
    page.wait_for_selector("#sweep-state[data-state='done']", timeout=30_000)
    page.wait_for_selector("#sweep-best-job", timeout=15_000)
    loss = {r["job"]: r["value.loss"] for r in table_rows(page)}
    lowest = min(loss.values(), key=float)
    best_text = page.inner_text("#sweep-best")
    assert f"loss = {lowest}" in best_text, (best_text, loss)
    assert "2 of at most 2 trials asked: 2 told a value, 0 failed, 0 running" in best_text
    assert loss[page.inner_text("#sweep-best-job")] == lowest, (best_text, loss)
    fits_both_widths(page, "optuna-page")
    ctx.close()


def test_an_exploration_from_the_form_and_what_it_reached_on_the_sweep_page(
    hub: HubProcess,
    browser,  # type: ignore[no-untyped-def]
) -> None:
    user = hub.ready_user("swp-eli")
    batch = Batch(user)
    ctx, page = sweep_form(browser, hub, user, "explore.ipynb", disc("a", "b"))
    # An exploration takes the bounds rows with a start column, a budget and a depth; no seed.
    assert page.is_hidden("#sweep-start-a")
    page.select_option("#sweep-kind", "explore")
    assert page.is_visible("#sweep-start-a") and page.is_visible("#sweep-max-depth")
    assert page.is_hidden("#sweep-seed") and page.is_hidden("#sweep-objective")
    assert page.inner_text("#sweep-size") == "At most 20 points, each a job, the start included."
    for name in ("a", "b"):
        page.fill(f"#sweep-low-{name}", "-1")
        page.fill(f"#sweep-high-{name}", "1")
    for row in page.locator("#sweep-space tbody tr").all():
        row.locator(".sweep-int").check()
    # Without a start value: said on the page, nothing sent.
    refused_on_submit(page, "give the start value of at least one parameter")
    # A start outside the bounds: the service's words.
    page.fill("#sweep-start-a", "5")
    page.fill("#sweep-start-b", "0")
    refused_on_submit(page, "start point 1: a=5 is outside its bounds")
    assert batch.call("GET", "sweeps").json()["total"] == 0 and batch.count() == 0
    page.fill("#sweep-start-a", "0")
    page.fill("#sweep-max-depth", "1")
    page.fill("#sweep-max-parallel", "4")
    form_shots(page, "explore-form")
    page.click("#job-submit")
    page.wait_for_selector("#sweep-link", timeout=60_000)
    assert "the start point is queued" in page.inner_text("#submit-message")
    sweep_id = page.inner_text("#sweep-link").split()[-1]
    sweep = batch.call("GET", f"sweeps/{sweep_id}").json()
    bound = {"low": -1, "high": 1, "int": True}
    assert sweep["spec"] == {
        "kind": "explore",
        "start": [{"a": 0, "b": 0}],
        "bounds": {"a": bound, "b": bound},
        "max_points": 20,
        "max_depth": 1,
    }
    sweep = wait_done(batch, sweep_id)
    # The start and its four neighbours; each neighbour's proposals go back to the start
    # (already run), out of the bounds, or a second step from the start (too deep).
    rows = batch.call("GET", f"sweeps/{sweep_id}/results").json()["rows"]
    reached = {(r["parameters"]["a"], r["parameters"]["b"]) for r in rows}
    assert reached == {(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)}, reached
    page.click("#sweep-link")
    # The state comes with the page; what it was made from and reached, once its script ran.
    page.wait_for_selector("#sweep-explored:has-text('proposed by the runs')", timeout=30_000)
    assert "an exploration from 1 start point, at most 20 points" in page.inner_text("#sweep-spec")
    assert page.inner_text("#sweep-explored").splitlines() == [
        "5 of at most 20 points, 1 of at most 1 step from the start",
        "20 proposed by the runs, 16 not followed: 4 already run, 4 outside the bounds, "
        "8 too many steps from the start",
    ]
    # What each point recorded as yes or no, drawn by both parameters: a map of the region.
    page.wait_for_selector("#plot[data-points='5']", timeout=10_000)
    assert page.input_value("#plot-value") == "stable"
    assert page.input_value("#plot-x") == "a" and page.input_value("#plot-y") == "b"
    assert "the colour is stable (dark: false, yellow: true)" in page.inner_text("#plot-note")
    assert page.inner_text("#plot-scale").split() == ["stable", "false", "true"]
    fits_both_widths(page, "explore-page")
    ctx.close()
