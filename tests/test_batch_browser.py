"""A person in Chromium: submit from the Batch page, watch the run, open its live kernel."""

from __future__ import annotations

import re

import pytest

from tests.batch import Batch, notebook
from tests.hub import HubProcess
from tests.test_embedded_browser import log_in

pytestmark = pytest.mark.browser

CASES = {
    "notebook": (
        "double.ipynb",
        notebook("y = x * 2\nprint('y is', y)", parameters="x = 1"),
        {"x": "21"},
        "print(y * 10)",
        "420",
        "succeeded",
    ),
    "failing": (
        "fails.ipynb",
        notebook("before = 'kept'", "raise ValueError('boom')"),
        {},
        "print(before.upper())",
        "KEPT",
        "failed",
    ),
    "script": (
        "sum.py",
        b"total = sum(range(5))\nprint('total', total)\n",
        {},
        "print(total + 100)",
        "110",
        "succeeded",
    ),
}


def run_in_lab(lab, code: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    """In a JupyterLab tab opened on a live kernel: add a cell at the end, run it, see output.

    Waits until JupyterLab has settled (a reset workspace reloads once, dropping ?reset from
    the URL) and the notebook's kernel is idle, so no keystroke goes to a page about to go.
    """
    lab.wait_for_url(lambda url: "reset" not in url, timeout=90_000)
    lab.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    lab.wait_for_selector(".jp-NotebookPanel-toolbar [data-status='idle']", timeout=90_000)
    cells = lab.locator(".jp-Notebook .jp-Cell")
    count = cells.count()
    cells.last.click()
    lab.keyboard.press("Escape")
    lab.keyboard.press("b")
    # Each step waits for JupyterLab to have taken the last (a loaded machine is slow to).
    lab.wait_for_function(
        "n => document.querySelectorAll('.jp-Notebook .jp-Cell').length > n", arg=count
    )
    lab.keyboard.press("Enter")
    active = ".jp-Notebook.jp-mod-editMode .jp-Cell.jp-mod-active"
    lab.wait_for_selector(f"{active} .cm-editor.cm-focused", timeout=30_000)
    lab.keyboard.type(code)
    lab.wait_for_function(
        "([sel, code]) => (document.querySelector(sel + ' .cm-content') || {}).innerText === code",
        arg=[active, code],
        timeout=30_000,
    )
    lab.keyboard.press("Shift+Enter")
    try:
        lab.wait_for_selector(f".jp-OutputArea-output:has-text('{expected}')", timeout=60_000)
    except Exception:
        dialog = lab.locator(".jp-Dialog")
        shown = dialog.inner_text() if dialog.count() else "no dialog"
        raise AssertionError(f"no output {expected!r} in JupyterLab ({shown})") from None


def submit_from_page(  # type: ignore[no-untyped-def]
    page, hub: HubProcess, name: str, content: bytes, values: dict, reload: bool = True
) -> str:
    """Fill the Batch page's form; return the new job's id."""
    if reload:
        page.goto(f"{hub.url}/services/batch/")
    page.wait_for_selector("#submit-form")
    media = "application/x-ipynb+json" if name.endswith(".ipynb") else "text/x-python"
    page.set_input_files("#job-file", files=[{"name": name, "mimeType": media, "buffer": content}])
    page.wait_for_selector("#params-box:not([hidden])")
    for key, value in values.items():
        page.fill(f"#param-{key}", value)
    page.select_option("#job-profile", "cpu")
    page.click("#job-submit")
    page.wait_for_selector("#submit-message.text-success", timeout=30_000)
    return re.search(r"Queued job (\w+)", page.inner_text("#submit-message")).group(1)


def test_someone_in_two_lab_groups_picks_which_one_a_job_counts_in(
    hub: HubProcess, browser
) -> None:
    user = hub.ready_user("br-hana")  # in lab-a and lab-b (SESSION_VALUES)
    context = browser.new_context()
    page = context.new_page()
    log_in(page, hub, user.name)
    page.goto(f"{hub.url}/services/batch/")
    options = page.locator("#job-group option").all_inner_texts()
    assert options == ["lab-a", "lab-b"]  # staff has no share of its own and is not offered
    page.select_option("#job-group", "lab-b")
    job_id = submit_from_page(page, hub, "sum.py", CASES["script"][1], {}, reload=False)
    assert Batch(user).job(job_id)["group"] == "lab-b"
    context.close()


def test_submitting_from_the_page_lists_the_job_with_its_parameters(
    hub: HubProcess, browser
) -> None:
    user = hub.ready_user("br-gina")
    context = browser.new_context()
    page = context.new_page()
    log_in(page, hub, user.name)
    page.goto(f"{hub.url}/services/batch/")
    nb = notebook("z = lr * 2", parameters="lr: float = 0.1\nname = 'a'")
    page.set_input_files(
        "#job-file", files=[{"name": "lr.ipynb", "mimeType": "application/json", "buffer": nb}]
    )
    page.wait_for_selector("#param-lr")
    assert page.input_value("#param-lr") == "0.1" and page.input_value("#param-name") == "a"
    assert "float" in page.inner_text("#params")
    page.fill("#param-lr", "0.5")
    page.click("#job-submit")
    page.wait_for_selector("#submit-message.text-success", timeout=30_000)
    job_id = re.search(r"Queued job (\w+)", page.inner_text("#submit-message")).group(1)
    row = page.locator(f"#job-{job_id}")
    row.wait_for(timeout=10_000)
    assert '"lr":0.5' in row.inner_text().replace(" ", "")
    # A value unlike the annotated type is refused with the parameter's name, nothing queued.
    page.fill("#param-lr", '"fast"')
    page.click("#job-submit")
    page.wait_for_selector("#submit-message.text-danger", timeout=30_000)
    assert "parameter 'lr' must be of type float" in page.inner_text("#submit-message")
    context.close()


@pytest.mark.parametrize("case", list(CASES))
def test_open_live_kernel_after_the_run(hub: HubProcess, browser, case: str) -> None:
    name, content, values, code, expected, final_state = CASES[case]
    user = hub.ready_user(f"br-{case}")
    context = browser.new_context()
    page = context.new_page()
    log_in(page, hub, user.name)
    job_id = submit_from_page(page, hub, name, content, values)
    page.click(f"#job-{job_id} a[href$='jobs/{job_id}']")
    page.wait_for_url(f"**/services/batch/jobs/{job_id}")
    page.wait_for_selector("#job-state")
    page.wait_for_function(
        "s => document.getElementById('job-state').textContent.startsWith(s)",
        arg=final_state,
        timeout=120_000,
    )
    progress = page.inner_text("#job-progress")
    done, total = re.search(r"(\d+) of (\d+) cells done", progress).groups()
    assert done == total or final_state == "failed"
    if final_state == "failed":
        assert "ValueError: boom" in page.inner_text("#job-error")
    link = page.locator("#open-live-kernel")
    link.wait_for(state="visible", timeout=30_000)
    job = user.api("GET", f"/services/batch/api/v1/jobs/{job_id}").json()
    user.wait_server(job["server_name"], ready=True)
    with context.expect_page() as opened:
        link.click()
    lab = opened.value
    run_in_lab(lab, code, expected)
    # JupyterLab's session for the notebook is the run's own kernel.
    sessions = lab.evaluate(
        """async (url) => {
            const xsrf = document.cookie.match(/_xsrf=([^;]+)/);
            const r = await fetch(url, {headers: xsrf ? {'X-XSRFToken': xsrf[1]} : {}});
            return await r.json();
        }""",
        f"{hub.url}/user/{user.name}/{job['server_name']}/api/sessions",
    )
    kernels = {s["kernel"]["id"] for s in sessions if s["path"] == job["output_path"]}
    assert kernels == {job["kernel_id"]}
    context.close()
    user.api("POST", f"/services/batch/api/v1/jobs/{job_id}/release")


def test_arguments_report_mode_and_warnings_on_the_pages(hub: HubProcess, browser) -> None:
    from tests.test_runs_like_python import PACKAGE

    user = hub.ready_user("br-ivan")
    context = browser.new_context()
    page = context.new_page()
    log_in(page, hub, user.name)
    page.goto(f"{hub.url}/services/batch/")
    # A zipped package: entry point, its command line, report mode.
    page.set_input_files(
        "#job-file",
        files=[{"name": "mlpkg.zip", "mimeType": "application/zip", "buffer": PACKAGE}],
    )
    page.wait_for_selector("#args-row:not([hidden])")
    page.fill("#job-entry-point", "mlpkg")
    page.fill("#job-args", '--epochs 3 "--note=two words"')
    page.check("#job-report-mode")
    page.select_option("#job-profile", "cpu")
    page.click("#job-submit")
    page.wait_for_selector("#submit-message.text-success", timeout=30_000)
    job_id = re.search(r"Queued job (\w+)", page.inner_text("#submit-message")).group(1)
    job = Batch(user).job(job_id)
    assert job["args"] == ["--epochs", "3", "--note=two words"] and job["report_mode"] is True
    page.goto(f"{hub.url}/services/batch/jobs/{job_id}")
    assert page.inner_text("#job-args") == "--epochs 3 '--note=two words'"
    assert "code hidden" in page.inner_text("#job-report-mode")
    Batch(user).call("POST", f"jobs/{job_id}/cancel")
    # A notebook without a parameters cell: the page says what papermill would do, and a
    # parameter added anyway is accepted with that warning, shown on the job's page too.
    page.goto(f"{hub.url}/services/batch/")
    page.set_input_files(
        "#job-file",
        files=[{"name": "plain.ipynb", "mimeType": "application/json", "buffer": notebook("1")}],
    )
    page.wait_for_selector("#job-warnings:not([hidden])")
    assert "no cell tagged 'parameters'" in page.inner_text("#job-warnings")
    page.click("#param-add")
    page.fill("#params .param-name", "msg")
    page.fill("#params .param-value", "Hello")
    page.select_option("#job-profile", "cpu")
    page.click("#job-submit")
    page.wait_for_selector("#submit-message.text-success", timeout=30_000)
    assert "Mind the warnings below" in page.inner_text("#submit-message")
    job_id = re.search(r"Queued job (\w+)", page.inner_text("#submit-message")).group(1)
    assert Batch(user).job(job_id)["parameters"] == {"msg": "Hello"}
    page.goto(f"{hub.url}/services/batch/jobs/{job_id}")
    assert "no cell tagged 'parameters'" in page.inner_text("#job-warnings")
    Batch(user).call("POST", f"jobs/{job_id}/cancel")
    context.close()


def test_each_live_kernel_opens_in_a_workspace_of_its_own_job(hub: HubProcess, browser) -> None:
    user = hub.ready_user("br-workspaces")
    batch = Batch(user)
    jobs = {}
    for name in ("first", "second"):
        job_id = batch.submit(f"{name}.py", f"which = {name!r}\n".encode()).json()["id"]
        jobs[name] = batch.wait(job_id)
    context = browser.new_context()
    page = context.new_page()
    log_in(page, hub, user.name)
    labs = {}
    for name, job in jobs.items():
        user.wait_server(job["server_name"], ready=True)
        page.goto(f"{hub.url}/services/batch/")
        with context.expect_page() as opened:
            page.click(f"#live-{job['id']}")
        lab = opened.value
        lab.wait_for_url(lambda url: "reset" not in url, timeout=90_000)
        lab.wait_for_selector(".jp-NotebookPanel-toolbar [data-status='idle']", timeout=90_000)
        labs[name] = lab
    second, job = labs["second"], jobs["second"]
    assert f"/lab/workspaces/{job['server_name']}/" in second.url
    # Only the second run's executed notebook is open: no tab restored from the first run.
    tabs = second.locator("#jp-main-dock-panel .lm-TabBar-tab").all_inner_texts()
    assert [t.strip() for t in tabs] == ["second.output.ipynb"], tabs
    labs["first"].close()
    second.bring_to_front()
    run_in_lab(second, "print('it is', which)", "it is second")
    context.close()
    for job in jobs.values():
        batch.call("POST", f"jobs/{job['id']}/release")
