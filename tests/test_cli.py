"""The `batchhub` command against a real batchhub: units of time, the list, pipes, its config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.batch import Batch, notebook
from tests.hub import HubProcess, HubUser

CLI = [sys.executable, "-m", "batch_service.cli"]


def cli(
    user: HubUser, *args: str, env: dict[str, str] | None = None, url: bool = True
) -> subprocess.CompletedProcess:
    """Run the command as a person would, with the token in the environment."""
    environment = {**os.environ, "JUPYTERHUB_API_TOKEN": user.token or "", **(env or {})}
    environment.pop("BATCHHUB_URL", None)
    command = [*CLI, *(["--url", user.hub.url] if url else []), *args]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=120)


def test_time_limits_take_the_pages_units(hub: HubProcess, tmp_path: Path) -> None:
    user = hub.ready_user("cli-units")
    path = tmp_path / "n.ipynb"
    path.write_bytes(notebook("x = 1"))
    limits = {}
    for text in ("1h", "45m", "30", "0.5h", "600s"):
        result = cli(user, "submit", str(path), "--time-limit", text)
        assert result.returncode == 0, result.stderr
        job_id = result.stdout.strip()
        limits[text] = Batch(user).job(job_id)["time_limit"]
        Batch(user).call("POST", f"jobs/{job_id}/cancel")  # only its limit matters here
    assert limits == {"1h": 3600, "45m": 2700, "30": 1800, "0.5h": 1800, "600s": 600}
    bad = cli(user, "submit", str(path), "--time-limit", "soon")
    assert bad.returncode == 2
    assert "'soon' is not a duration" in bad.stderr and "a plain number means minutes" in bad.stderr
    # Beyond the profile's maximum: the service's own words.
    over = cli(user, "submit", str(path), "--time-limit", "1h30m")
    assert over.returncode == 1 and "maximum of 3600s" in over.stderr


def test_list_marks_live_kernels_and_gives_reasons(hub: HubProcess, tmp_path: Path) -> None:
    user = hub.ready_user("cli-list")
    batch = Batch(user)
    live = batch.wait(batch.submit("live.py", b"x = 1\n").json()["id"])
    cancelled = batch.submit("gone.py", b"y = 2\n").json()["id"]
    batch.call("POST", f"jobs/{cancelled}/cancel")
    result = cli(user, "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["JOB", "STATE", "LIVE", "POS", "PROFILE", "INPUT", "REASON"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert "until " in rows[live["id"]]  # the live kernel and when it ends
    assert rows[cancelled].split()[1] == "cancelled"
    assert rows[cancelled].rstrip().endswith("cancelled by cli-list")
    batch.call("POST", f"jobs/{live['id']}/release")


def test_a_closed_pipe_ends_the_command_quietly(hub: HubProcess) -> None:
    user = hub.ready_user("cli-pipe")
    for i in range(3):
        job_id = Batch(user).submit(f"n{i}.py", b"z = 3\n").json()["id"]
        Batch(user).call("POST", f"jobs/{job_id}/cancel")
    environment = {**os.environ, "JUPYTERHUB_API_TOKEN": user.token or ""}
    # Like `batchhub list | head -0`: the reader is gone before the command writes.
    proc = subprocess.Popen(
        [*CLI, "--url", hub.url, "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
    )
    proc.stdout.close()  # type: ignore[union-attr]
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0 and stderr == b""


def test_the_url_and_token_can_come_from_the_config_file(hub: HubProcess, tmp_path: Path) -> None:
    user = hub.ready_user("cli-config")
    config = tmp_path / "batchhub.yaml"
    config.write_text(yaml.safe_dump({"url": hub.url, "token": user.token}))
    config.chmod(0o600)
    env = {"XDG_CONFIG_HOME": str(tmp_path), "JUPYTERHUB_API_TOKEN": ""}
    result = cli(user, "list", env=env, url=False)
    assert result.returncode == 0 and result.stdout.strip() == "no jobs", result.stderr
    # A token in a file others may read is refused, with the fix.
    config.chmod(0o644)
    refused = cli(user, "list", env=env, url=False)
    assert refused.returncode == 1 and f"chmod 600 {config}" in refused.stderr
    # A typo is named, with what is allowed.
    config.write_text("urll: x\n")
    typo = cli(user, "list", env=env, url=False)
    assert "unknown key 'urll'; allowed: url, token" in typo.stderr
    # Only the URL in the file; the token from the environment.
    config.write_text(json.dumps({"url": hub.url}))
    result = cli(user, "list", env={"XDG_CONFIG_HOME": str(tmp_path)}, url=False)
    assert result.returncode == 0, result.stderr
