"""Parameter sweeps on a real batchhub: a 3x3 grid runs with max_parallel held, values glued
with scrapbook come back as a results table (JSON and CSV alike), resubmission skips what
succeeded, bad input stores nothing, and another user's sweep is unknown."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.batch import Batch, notebook
from tests.hub import HubProcess

MODEL = notebook(
    "import time\nimport scrapbook as sb\ntime.sleep(1)\nloss = (a - 2) ** 2 + b\n"
    "sb.glue('loss', loss)\nsb.glue('label', f'a={a}')",
    parameters="a = 1\nb = 1",
)
GRID = {"kind": "grid", "grid": {"a": "1:3", "b": "1,2,3"}}
ACTIVE = ("starting", "running")


def create(batch: Batch, spec: Any, content: bytes = MODEL, **fields: Any) -> Any:
    data = {"spec": json.dumps(spec), "profile": "cpu", **{k: str(v) for k, v in fields.items()}}
    return batch.call("POST", "sweeps", files={"file": ("model.ipynb", content)}, data=data)


@pytest.fixture(scope="module")
def people(hub: HubProcess) -> dict[str, Batch]:
    """Two users of the sweep tests."""
    return {"ana": Batch(hub.ready_user("sw-ana")), "ben": Batch(hub.ready_user("sw-ben"))}


@pytest.fixture(scope="module")
def finished_grid(people: dict[str, Batch]) -> dict[str, Any]:
    """A 3x3 grid with max_parallel 2, run to its end while its jobs are watched."""
    ana = people["ana"]
    r = create(ana, GRID, max_parallel=2)
    assert r.status_code == 201, r.text
    sweep = r.json()
    assert sweep["points"] == 9 and sweep["added"] == 9 and sweep["max_parallel"] == 2
    most, held_words = 0, set()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        jobs = ana.call("GET", "jobs?limit=500").json()["jobs"]
        mine = [j for j in jobs if j["sweep_id"] == sweep["id"]]
        most = max(most, sum(j["state"] in ACTIVE for j in mine))
        held_words |= {j["reason"] for j in mine if j["reason_code"] == "sweep_limit"}
        sweep = ana.call("GET", f"sweeps/{sweep['id']}").json()
        if sweep["state"] == "done":
            break
        time.sleep(0.2)
    return {"sweep": sweep, "most": most, "held_words": held_words}


def test_a_grid_runs_every_point_never_more_than_max_parallel_at_once(
    finished_grid: dict[str, Any],
) -> None:
    sweep = finished_grid["sweep"]
    assert sweep["state"] == "done", sweep
    assert sweep["counts"]["succeeded"] == 9
    assert finished_grid["most"] == 2
    # The points waiting their turn said why.
    assert finished_grid["held_words"] == {"waiting: the sweep runs at most 2 at once"}


def test_results_hold_the_glued_values_and_the_csv_is_the_same_table(
    people: dict[str, Batch], finished_grid: dict[str, Any]
) -> None:
    ana, sweep_id = people["ana"], finished_grid["sweep"]["id"]
    rows = ana.call("GET", f"sweeps/{sweep_id}/results").json()["rows"]
    assert len(rows) == 9
    for row in rows:
        a, b = row["parameters"]["a"], row["parameters"]["b"]
        assert row["state"] == "succeeded" and row["error"] == ""
        assert row["recorded"] == {"loss": (a - 2) ** 2 + b, "label": f"a={a}"}
        assert row["duration"] >= 1 and row["links"]["output"]
        # Succeeded points let their kernel go at once.
        assert row["links"]["live_kernel"] is None
    assert {(r["parameters"]["a"], r["parameters"]["b"]) for r in rows} == {
        (a, b) for a in (1, 2, 3) for b in (1, 2, 3)
    }
    job = ana.job(rows[0]["job_id"])
    assert job["live"] is False and job["live_pending"] is False
    download = ana.call("GET", f"sweeps/{sweep_id}/results?format=csv")
    assert download.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in download.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(download.text)))
    assert [
        (int(t["param.a"]), int(t["param.b"]), t["state"], json.loads(t["value.loss"]))
        for t in table
    ] == [
        (r["parameters"]["a"], r["parameters"]["b"], r["state"], r["recorded"]["loss"])
        for r in rows
    ]
    assert [t["job_id"] for t in table] == [r["job_id"] for r in rows]
    output = ana.call("GET", rows[0]["links"]["output"].split("/api/v1/", 1)[1])
    assert output.status_code == 200


def test_resubmitting_skips_points_that_succeeded(
    people: dict[str, Batch], finished_grid: dict[str, Any]
) -> None:
    ana = people["ana"]
    before = ana.count()
    again = create(ana, GRID, max_parallel=2)
    assert again.status_code == 201, again.text
    assert again.json()["id"] == finished_grid["sweep"]["id"]
    assert again.json()["added"] == 0 and again.json()["skipped"] == 9
    assert ana.count() == before


@pytest.mark.parametrize(
    ("spec", "fields", "words"),
    [
        ({"kind": "grid", "grid": {"a": "0:1000000", "b": "0:1000000"}}, {}, "max_points"),
        ({"kind": "grid", "grid": {"a": "1:3:0"}}, {}, "step of a range may not be 0"),
        ({"kind": "grid", "grid": {"a": "x,y"}}, {}, "parameter 'a' must be of type int"),
        ({"kind": "table", "table": "a,c\n1,2\n"}, {}, "'c' is not a parameter of model.ipynb"),
        ({"kind": "random", "space": {"a": {"low": 1}}, "samples": 5}, {}, "needs bounds"),
        ({"kind": "bayes"}, {}, "kind must be one of grid, table, random, optuna, explore"),
        ({"kind": "optuna", "space": {}, "objective": "loss"}, {}, "search space needs bounds"),
        (
            {
                "kind": "optuna",
                "space": {"a": {"low": 0, "high": 4, "int": True}},
                "objective": "loss",
                "direction": "down",
                "max_trials": 5,
            },
            {},
            "direction must be minimize or maximize",
        ),
        (
            {
                "kind": "optuna",
                "space": {"a": {"low": 0, "high": 4, "int": True}},
                "objective": "loss",
                "max_trials": 10**6,
            },
            {},
            "(max_points)",
        ),
        (
            {"kind": "explore", "start": [{"a": 1}], "bounds": {"zz": {"low": 0, "high": 1}}},
            {},
            "'zz' is not a parameter of model.ipynb",
        ),
        (GRID, {"max_parallel": 0}, "max_parallel must be between"),
        (GRID, {"nonsense": 1}, "unknown field 'nonsense'"),
        ("{not json", {}, "spec"),
    ],
)
def test_bad_input_is_a_400_with_words_and_stores_nothing(
    people: dict[str, Batch], spec: Any, fields: dict[str, Any], words: str
) -> None:
    ben = people["ben"]
    r = (
        ben.call(
            "POST",
            "sweeps",
            files={"file": ("model.ipynb", MODEL)},
            data={"spec": spec, "profile": "cpu"},
        )
        if isinstance(spec, str)
        else create(ben, spec, **fields)
    )
    assert r.status_code == 400, r.text
    assert words in r.json()["message"]
    assert ben.count() == 0
    assert ben.call("GET", "sweeps").json()["total"] == 0


def test_another_users_sweep_is_unknown(
    people: dict[str, Batch], finished_grid: dict[str, Any]
) -> None:
    ben, sweep_id = people["ben"], finished_grid["sweep"]["id"]
    for method, path in (
        ("GET", f"sweeps/{sweep_id}"),
        ("GET", f"sweeps/{sweep_id}/results"),
        ("POST", f"sweeps/{sweep_id}/cancel"),
        ("POST", f"sweeps/{sweep_id}/retry"),
    ):
        assert ben.call(method, path).status_code == 404, path
    assert ben.call("GET", "sweeps").json()["total"] == 0


def test_the_cli_sweeps_and_prints_the_results(
    hub: HubProcess, people: dict[str, Batch], finished_grid: dict[str, Any], tmp_path: Path
) -> None:
    user = people["ana"].user
    path = tmp_path / "model.ipynb"
    path.write_bytes(MODEL)
    env = dict(os.environ, JUPYTERHUB_API_TOKEN=user.token or "")

    def cli(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "batch_service.cli", "--url", hub.url, *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)

    # The same grid as the API's: every point is already done, so it ends at once.
    ran = cli("sweep", str(path), "-g", "a=1:3", "-g", "b=1,2,3", "--max-parallel", "2", "--follow")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split()[0] == finished_grid["sweep"]["id"]
    assert "0 points queued, 9 already in the sweep" in ran.stderr
    assert "9/9 done, 0 running, 0 failed" in ran.stderr
    results = cli("sweep", "results", finished_grid["sweep"]["id"], "--csv")
    assert results.returncode == 0, results.stderr
    assert results.stdout.splitlines()[0].startswith("job_id,param.a,param.b,state")
    assert len(results.stdout.splitlines()) == 10
    bad = cli("sweep", str(path), "-g", "a=1:3:0")
    assert bad.returncode == 1 and "step of a range may not be 0" in bad.stderr


def test_a_failed_point_keeps_its_kernel_and_cancel_stops_the_running_ones(
    people: dict[str, Batch],
) -> None:
    ana = people["ana"]
    model = notebook(
        "import time\nif a == 0:\n    raise ValueError('unstable at a=0')\ntime.sleep(120)",
        parameters="a = 1",
    )
    r = create(ana, {"kind": "grid", "grid": {"a": "0,1"}}, model, max_parallel=2)
    assert r.status_code == 201, r.text
    sweep_id = r.json()["id"]
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        rows = ana.call("GET", f"sweeps/{sweep_id}/results").json()["rows"]
        if rows[0]["links"]["live_kernel"] and rows[1]["state"] == "running":
            break
        time.sleep(0.3)
    failed, running = rows
    assert failed["state"] == "failed", rows
    assert failed["error"] == "ValueError: unstable at a=0"
    # The failed point's kernel stays for the sweep's window (120 s by default), to debug.
    job = ana.job(failed["job_id"])
    assert job["live"] is True and job["live_window"] == 120
    assert running["state"] == "running"
    cancelled = ana.call("POST", f"sweeps/{sweep_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert ana.job(running["job_id"])["state"] == "cancelled"
    ana.user.wait_server(f"batch-{running['job_id']}", ready=False)
    # Retry queues the failed point again as a new attempt; the old one stays its history.
    retried = ana.call("POST", f"sweeps/{sweep_id}/retry").json()
    assert retried["added"] == 1 and retried["state"] == "active"
    again = ana.call("GET", f"sweeps/{sweep_id}/results").json()["rows"]
    assert again[-1]["parameters"] == {"a": 0} and again[-1]["job_id"] != failed["job_id"]
    ana.call("POST", f"sweeps/{sweep_id}/cancel")
    ana.call("POST", f"jobs/{failed['job_id']}/release")
