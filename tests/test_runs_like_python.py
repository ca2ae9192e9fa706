"""Runs behave as papermill, `python file.py` and `python -m package` would, in the user's own
environment: exit codes, papermill's executed notebook, arguments, parameters of .py files,
PATH, HOME, the working directory and `pip install --user`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tests.batch import Batch, notebook, zip_bytes
from tests.conftest import ACCOUNT_PREFIX
from tests.hub import HubProcess
from tests.test_live_kernel import evaluate

BANNER_TAG = "papermill-error-cell-tag"


def run_all(batch: Batch, submissions: dict[str, dict]) -> dict[str, dict]:
    """Submit every case at once (they run side by side), then wait for each."""
    ids = {}
    for case, spec in submissions.items():
        r = batch.submit(**spec)
        assert r.status_code == 201, (case, r.text)
        ids[case] = r.json()["id"]
    return {case: batch.wait(job_id, timeout=240) for case, job_id in ids.items()}


def output_of(batch: Batch, job: dict) -> dict:
    """The executed notebook the service keeps."""
    r = batch.call("GET", f"jobs/{job['id']}/output")
    assert r.status_code == 200, r.text
    return r.json()


def release(batch: Batch, *jobs: dict) -> None:
    for job in jobs:
        batch.call("POST", f"jobs/{job['id']}/release")


def test_sys_exit_with_no_code_or_0_succeeds_and_exit_1_fails(hub: HubProcess) -> None:
    batch = Batch(hub.ready_user("rp-exit"))
    cases = {
        "bare": "sys.exit()",
        "zero": "sys.exit(0)",
        "raise": "raise SystemExit",
        "one": "sys.exit(1)",
    }
    jobs = run_all(
        batch,
        {
            case: {
                "name": f"{case}.ipynb",
                "content": notebook("import sys", code, "print('Cell should not execute.')"),
            }
            for case, code in cases.items()
        },
    )
    for case in ("bare", "zero", "raise"):
        job = jobs[case]
        assert job["state"] == "succeeded" and job["error"] is None, (case, job)
        out = output_of(batch, job)
        assert not any(BANNER_TAG in c["metadata"].get("tags", []) for c in out["cells"]), case
        assert out["cells"][2]["execution_count"] is None  # stopped there, as papermill does
    failed = jobs["one"]
    assert failed["state"] == "failed", failed
    assert failed["error"] == {"name": "SystemExit", "value": "1", "cell": 2}
    # papermill's banners: one at the top linking to the failing cell, one just before it.
    cells = output_of(batch, failed)["cells"]
    assert [BANNER_TAG in c["metadata"].get("tags", []) for c in cells] == [
        True,
        False,
        True,
        False,
        False,
    ]
    assert "In [2]" in cells[0]["source"] and 'id="papermill-error-cell"' in cells[2]["source"]
    assert all(job["live"] for job in jobs.values())
    release(batch, *jobs.values())


def test_the_executed_notebook_is_what_papermill_writes(hub: HubProcess) -> None:
    batch = Batch(hub.ready_user("rp-meta"))
    nb = json.loads(notebook("y = x + 1", "print('y is', y)", parameters="x = 1"))
    # Banners left by an earlier papermill run of this notebook: they would point at nothing.
    stale = {"cell_type": "markdown", "metadata": {"tags": [BANNER_TAG]}, "source": "old"}
    nb["cells"].insert(0, {**stale, "id": "stale-1"})
    nb["cells"].insert(3, {**stale, "id": "stale-2"})
    r = batch.submit(
        "report.ipynb", json.dumps(nb).encode(), parameters={"x": 41}, report_mode="true"
    )
    assert r.status_code == 201, r.text
    job = batch.wait(r.json()["id"])
    assert job["state"] == "succeeded" and job["report_mode"] is True, job
    out = output_of(batch, job)
    meta = out["metadata"]["papermill"]
    assert meta["parameters"] == {"x": 41} and meta["exception"] is None
    assert meta["output_path"] == job["output_path"] and meta["input_path"].endswith("report.ipynb")
    assert meta["duration"] > 0 and meta["start_time"] < meta["end_time"]
    assert out["metadata"]["language_info"]["name"] == "python"
    assert [c["metadata"].get("tags") for c in out["cells"]] == [
        ["parameters"],
        ["injected-parameters"],
        [],
        [],
    ]
    for cell in out["cells"]:
        cell_meta = cell["metadata"]["papermill"]
        assert cell_meta["status"] == "completed" and cell_meta["exception"] is False
        assert cell_meta["duration"] >= 0 and cell_meta["start_time"] <= cell_meta["end_time"]
        # report mode: code inputs hidden, as papermill --report-mode hides them
        assert cell["metadata"]["jupyter"]["source_hidden"] is True
    assert out["cells"][3]["outputs"][0]["text"] == "y is 42\n"
    release(batch, job)


async def test_the_kernel_has_the_users_own_environment(hub: HubProcess) -> None:
    user = hub.ready_user("rp-env")
    batch = Batch(user)
    nb = notebook(
        "import os, sys\n"
        "print('PATH', os.environ['PATH'])\n"
        "print('HOME', os.environ['HOME'])\n"
        "print('USER', os.environ['USER'])\n"
        "print('CWD', os.getcwd())\n"
        "print('FILES', sorted(os.listdir()))",
        "!python -c 'import sys; print(\"BANG\", sys.executable)'",
        "%%bash\npython3 -c 'import sys; print(\"BASH\", sys.executable)'",
    )
    r = batch.submit("env.ipynb", nb)
    assert r.status_code == 201, r.text
    job = batch.wait(r.json()["id"])
    assert job["state"] == "succeeded", job
    seen = dict(line.split(" ", 1) for line in batch.logs(job["id"]))
    account = ACCOUNT_PREFIX + user.name
    python_bin = str(Path(sys.executable).parent)
    path = seen["PATH"].split(":")
    assert path[0] == python_bin, path
    assert path[1] == f"{seen['HOME']}/.local/bin"
    assert not any(p.startswith("/root") for p in path), path
    assert seen["USER"] == account and Path(seen["HOME"]).name == account
    # A folder of the job, holding the input's files, is the working directory.
    assert seen["CWD"] == f"{seen['HOME']}/batch/{job['id']}"
    assert "env.ipynb" in seen["FILES"]
    # `python` in a shell is the kernel's Python, in `!` and in %%bash alike.
    assert Path(seen["BANG"]).parent == Path(python_bin)
    assert Path(seen["BASH"]).parent == Path(python_bin)
    release(batch, job)

    # pip install --user lasts for the user's later runs, as in their interactive server.
    install = notebook(
        "import base64, hashlib, zipfile\n"
        "files = {\n"
        "    'bh_greeting.py': \"def hello():\\n    return 'hello from .local'\\n\",\n"
        "    'bh_greeting-1.0.dist-info/METADATA': 'Metadata-Version: 2.1\\n"
        "Name: bh-greeting\\nVersion: 1.0\\n',\n"
        "    'bh_greeting-1.0.dist-info/WHEEL': 'Wheel-Version: 1.0\\nGenerator: t\\n"
        "Root-Is-Purelib: true\\nTag: py3-none-any\\n',\n"
        "}\n"
        "record = []\n"
        "with zipfile.ZipFile('bh_greeting-1.0-py3-none-any.whl', 'w') as wheel:\n"
        "    for name, text in files.items():\n"
        "        wheel.writestr(name, text)\n"
        "        digest = hashlib.sha256(text.encode()).digest()\n"
        "        encoded = base64.urlsafe_b64encode(digest).rstrip(b'=').decode()\n"
        "        record.append(f'{name},sha256={encoded},{len(text)}')\n"
        "    record.append('bh_greeting-1.0.dist-info/RECORD,,')\n"
        "    wheel.writestr('bh_greeting-1.0.dist-info/RECORD', '\\n'.join(record) + '\\n')",
        "!pip install --user --no-index --no-deps --disable-pip-version-check "
        "bh_greeting-1.0-py3-none-any.whl",
    )
    use = notebook("import bh_greeting\nprint(bh_greeting.hello())\nprint(bh_greeting.__file__)")
    first = batch.wait(batch.submit("install.ipynb", install).json()["id"])
    assert first["state"] == "succeeded", first
    assert any("Successfully installed bh-greeting-1.0" in line for line in batch.logs(first["id"]))
    release(batch, first)
    later = batch.wait(batch.submit("use.ipynb", use).json()["id"])
    assert later["state"] == "succeeded", later
    lines = batch.logs(later["id"])
    assert lines[0] == "hello from .local"
    assert lines[1].startswith(f"{seen['HOME']}/.local/lib/"), lines
    release(batch, later)


PACKAGE = zip_bytes(
    {
        "mlpkg/__init__.py": "",
        "mlpkg/__main__.py": "from .train import main\n\nresult = main()\n",
        "mlpkg/train.py": (
            "import argparse\n"
            "import sys\n"
            "\n"
            "from . import util\n"
            "\n"
            "\n"
            "def main():\n"
            "    parser = argparse.ArgumentParser(description='train a tiny model')\n"
            "    parser.add_argument('--epochs', type=int, default=1)\n"
            "    args = parser.parse_args()\n"
            "    print('argv', sys.argv[1:])\n"
            "    with open('data/values.txt') as values:\n"
            "        total = util.total(values.read().split())\n"
            "    print('epochs', args.epochs, 'total', total * args.epochs)\n"
            "    return {'epochs': args.epochs, 'argv0': sys.argv[0]}\n"
        ),
        "mlpkg/util.py": "def total(values):\n    return sum(int(v) for v in values)\n",
        "data/values.txt": "1 2 3\n",
    }
)


async def test_a_zipped_package_runs_as_python_dash_m_with_its_arguments(
    hub: HubProcess,
) -> None:
    user = hub.ready_user("rp-module")
    batch = Batch(user)

    def run(*args: str) -> dict:
        return {
            "name": "mlpkg.zip",
            "content": PACKAGE,
            "entry_point": "mlpkg",
            "args": json.dumps(list(args)),
        }

    jobs = run_all(
        batch,
        {
            "epochs": run("--epochs", "3"),
            "help": run("--help"),
            "bad": run("--epochs", "many"),
        },
    )
    job = jobs["epochs"]
    assert job["state"] == "succeeded", job
    assert job["args"] == ["--epochs", "3"]
    logs = batch.logs(job["id"])
    assert "argv ['--epochs', '3']" in logs and "epochs 3 total 18" in logs, logs
    # The run's globals stay live: __main__'s `result`, with the argv the module saw.
    seen = await evaluate(
        hub,
        user,
        job,
        "print(result['epochs'], result['argv0'].endswith('mlpkg/__main__.py'), __package__)",
    )
    assert seen.stdout.split() == ["3", "True", "mlpkg"]
    # argparse's --help exits with 0: a success, as `python -m mlpkg --help` is.
    helped = jobs["help"]
    assert helped["state"] == "succeeded", helped
    assert any("train a tiny model" in line for line in batch.logs(helped["id"]))
    bad = jobs["bad"]
    assert bad["state"] == "failed" and bad["error"]["name"] == "SystemExit", bad
    assert bad["error"]["value"] == "2"
    assert any("invalid int value: 'many'" in line for line in batch.logs(bad["id"]))
    release(batch, *jobs.values())


def test_a_py_file_gets_its_parameters_after_its_parameters_cell(hub: HubProcess) -> None:
    batch = Batch(hub.ready_user("rp-script"))
    percent = (
        b'import sys\n\n# %% tags=["parameters"]\ncount = 5\n\n'
        b'# %%\nprint("count", count)\nprint("argv", sys.argv[1:])\n'
    )
    light = b'# + tags=["parameters"]\ncount = 5\n# -\n\nprint("count", count)\n'
    unmarked = b'import sys\n\ncount = 5\nprint("count", count)\n'
    jobs = run_all(
        batch,
        {
            "percent": {
                "name": "train.py",
                "content": percent,
                "parameters": {"count": 7},
                "args": json.dumps(["a", "b c"]),
            },
            "light": {"name": "train.py", "content": light, "parameters": {"count": 7}},
            "unmarked": {"name": "train.py", "content": unmarked, "parameters": {"count": 7}},
        },
    )
    assert jobs["percent"]["warnings"] == [] and jobs["light"]["warnings"] == []
    assert "count 7" in batch.logs(jobs["percent"]["id"])
    assert "argv ['a', 'b c']" in batch.logs(jobs["percent"]["id"])
    assert "count 7" in batch.logs(jobs["light"]["id"])
    # Without a parameters cell the script's own assignment wins, as running it would;
    # the submission was told so, naming the line.
    expected = (
        "parameter 'count' is set again at train.py line 3; "
        'mark a parameters cell with `# %% tags=["parameters"]`'
    )
    assert jobs["unmarked"]["warnings"] == [expected]
    assert "count 5" in batch.logs(jobs["unmarked"]["id"])
    seen = batch.call(
        "POST",
        "inspect",
        files={"file": ("train.py", unmarked)},
        data={"parameters": json.dumps({"count": 7})},
    )
    assert seen.json()["warnings"] == [expected]
    marked = batch.call("POST", "inspect", files={"file": ("train.py", percent)}).json()
    assert [p["name"] for p in marked["parameters"]] == ["count"]
    release(batch, *jobs.values())


def test_the_executed_notebook_can_be_read_while_the_run_goes_on(hub: HubProcess) -> None:
    user = hub.ready_user("rp-saves")
    batch = Batch(user)
    # Saves come between cells, at most every 2 s: one falls after the second cell.
    nb = notebook("print('first part done')", "import time\ntime.sleep(2.5)", "time.sleep(20)")
    job = batch.job(batch.submit("long.ipynb", nb).json()["id"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = batch.job(job["id"])
        if job["progress"]["index"] >= 2:  # two cells done: the third runs
            break
        time.sleep(0.3)
    assert job["state"] == "running" and job["progress"]["index"] == 2, job
    user.wait_server(job["server_name"], ready=True)
    url = f"{hub.url}/user/{user.name}/{job['server_name']}/api/contents/{job['output_path']}"
    seen = None
    while time.monotonic() < deadline:
        r = user.api("GET", url)
        assert r.status_code == 200, r.text
        cells = r.json()["content"]["cells"]
        seen = [o.get("text") for o in cells[0]["outputs"]]
        if seen:
            break
        time.sleep(0.5)
    # Saved between cells, whole: the first cell's output is there while the third runs.
    assert seen == ["first part done\n"], seen
    assert batch.job(job["id"])["state"] == "running"
    batch.call("POST", f"jobs/{job['id']}/cancel")
