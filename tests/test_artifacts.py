"""Artifacts: files a run writes under its job folder are kept with the job after its server."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest

from tests.batch import Batch, notebook
from tests.hub import HubProcess

# The run writes these under its job folder (its working directory); the cpu profile's cap in
# the tests' values is 1 MiB, so the 2 MiB file does not fit.
WRITES = notebook(
    "import os, hashlib\n"
    "os.makedirs('results', exist_ok=True)\n"
    "open('results/table.csv', 'w').write('epoch,loss\\n1,0.5\\n2,0.25\\n')\n"
    "open('model.bin', 'wb').write(bytes((i * 7) % 256 for i in range(300_000)))\n"
    "open('big.bin', 'wb').write(b'x' * (2 * 2**20))\n"
    "os.symlink('/etc/passwd', 'passwd-link')\n"
    "print('wrote files')"
)
EXPECTED = {
    "results/table.csv": b"epoch,loss\n1,0.5\n2,0.25\n",
    "model.bin": bytes((i * 7) % 256 for i in range(300_000)),
}


@pytest.fixture(scope="module")
def run(hub: HubProcess) -> tuple[Batch, dict]:
    """One finished run that wrote files, its server already gone."""
    batch = Batch(hub.ready_user("art-olga"))
    r = batch.submit("writes.ipynb", WRITES)
    assert r.status_code == 201, r.text
    job = batch.wait(r.json()["id"], timeout=180)
    assert job["state"] == "succeeded", job
    assert batch.call("POST", f"jobs/{job['id']}/release").status_code == 200
    batch.user.wait_server(job["server_name"], ready=False, timeout=60)
    return batch, job


def test_files_a_run_wrote_are_downloadable_after_its_server_is_gone(run) -> None:  # type: ignore[no-untyped-def]
    batch, job = run
    listing = batch.call("GET", f"jobs/{job['id']}/artifacts").json()
    kept = {a["path"]: a for a in listing["artifacts"]}
    assert set(kept) == set(EXPECTED)  # no input, no executed notebook, no symlink target
    for path, content in EXPECTED.items():
        assert kept[path]["size"] == len(content)
        assert kept[path]["sha256"] == hashlib.sha256(content).hexdigest()
        r = batch.call("GET", f"jobs/{job['id']}/artifacts/{path}")
        assert r.status_code == 200 and r.content == content
    assert listing["kept_bytes"] == sum(len(c) for c in EXPECTED.values())


def test_the_zip_of_all_artifacts_holds_exactly_the_files(run) -> None:  # type: ignore[no-untyped-def]
    batch, job = run
    r = batch.call("GET", f"jobs/{job['id']}/artifacts.zip")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        assert archive.testzip() is None
        assert {name: archive.read(name) for name in archive.namelist()} == EXPECTED


def test_a_file_over_the_profile_cap_is_dropped_and_the_run_and_page_say_so(run) -> None:  # type: ignore[no-untyped-def]
    batch, job = run
    listing = batch.call("GET", f"jobs/{job['id']}/artifacts").json()
    assert [d["path"] for d in listing["dropped"]] == ["big.bin"]
    assert "artifact cap of profile 'cpu' (1.0 MiB)" in listing["dropped"][0]["reason"]
    assert listing["cap"] == 2**20
    lines = batch.logs(job["id"])
    assert any("big.bin" in line and "not kept" in line for line in lines), lines
    assert batch.call("GET", f"jobs/{job['id']}/artifacts/big.bin").status_code == 404


def test_artifacts_are_private_and_the_runner_door_is_only_for_the_jobs_server(
    run, hub: HubProcess
) -> None:  # type: ignore[no-untyped-def]
    batch, job = run
    other = Batch(hub.ready_user("art-piet"))
    for path in ("artifacts", "artifacts.zip", "artifacts/model.bin"):
        assert other.call("GET", f"jobs/{job['id']}/{path}").status_code == 404
    # The owner's own API token is not the job's server: it may not add artifacts.
    r = batch.call("PUT", f"jobs/{job['id']}/runner/artifacts/extra.bin", data=b"x")
    assert r.status_code == 404
    assert "extra.bin" not in str(batch.call("GET", f"jobs/{job['id']}/artifacts").json())


@pytest.mark.browser
def test_the_job_page_lists_the_files_and_what_was_dropped(run, hub: HubProcess, browser) -> None:  # type: ignore[no-untyped-def]
    import os

    from tests.test_embedded_browser import log_in

    batch, job = run
    shots = os.environ.get("BATCHHUB_SCREENSHOTS")
    for width, height, label in ((1280, 900, "desktop"), (390, 844, "phone")):
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        log_in(page, hub, batch.user.name)
        page.goto(f"{hub.url}/services/batch/jobs/{job['id']}")
        page.wait_for_selector("#artifacts:not([hidden])", timeout=30_000)
        rows = page.locator("#artifacts-table tbody tr").all_inner_texts()
        assert [r.split("\t")[0] for r in rows] == ["model.bin", "results/table.csv"]
        assert "big.bin" in page.inner_text("#artifacts-dropped")
        href = page.get_attribute("#artifacts-zip", "href")
        assert href.endswith(f"jobs/{job['id']}/artifacts.zip")
        if shots:
            page.screenshot(path=f"{shots}/job-artifacts-{label}.png", full_page=True)
        context.close()
