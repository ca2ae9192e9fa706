"""The images' Python side, without a container engine: each image's pinned requirements
install into a fresh venv, the runner extension is enabled and importable there, and the
Dockerfiles pass hadolint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "images"
BIN = Path(sys.executable).parent


def fresh_venv(folder: Path) -> Path:
    """A new virtual environment from the interpreter running the tests."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(folder)], check=True)
    return folder / "bin"


@pytest.mark.parametrize("image", ["hub", "singleuser", "singleuser-gpu"])
def test_dockerfile_passes_hadolint(image: str) -> None:
    hadolint = shutil.which("hadolint") or str(BIN / "hadolint")
    result = subprocess.run(
        [hadolint, str(IMAGES / image / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("image", ["singleuser", "hub"])
def test_requirements_install_and_the_runner_is_enabled(image: str, tmp_path: Path) -> None:
    venv = fresh_venv(tmp_path / "venv")
    pip = [str(venv / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(IMAGES / image / "requirements.txt")], check=True)
    # The image installs batchhub itself on top, without dependencies (they are pinned above).
    subprocess.run([*pip, "--no-deps", str(ROOT)], check=True, cwd=tmp_path)
    imported = subprocess.run(
        [str(venv / "python"), "-c", "import batch_service.runner, spawner.profiles; print('ok')"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert imported.stdout.strip() == "ok", imported.stderr
    if image == "singleuser":
        listed = subprocess.run(
            [str(venv / "jupyter"), "server", "extension", "list"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        output = listed.stdout + listed.stderr
        line = next(ln for ln in output.splitlines() if "batch_service.runner" in ln)
        assert "enabled" in line and "OK" in output.split("batch_service.runner", 1)[1][:200]
        # JupyterLab's Jobs are set to batchhub's queue in the image's own config.
        configured = subprocess.run(
            [
                str(venv / "python"),
                "-c",
                "from jupyter_server.serverapp import ServerApp;"
                "import batch_service.lab_scheduler;"
                "a = ServerApp(); a.load_config_file();"
                "print(a.config.SchedulerApp.scheduler_class)",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert configured.stdout.strip() == "batch_service.lab_scheduler.BatchScheduler", (
            configured.stderr
        )
        # The Batch queue panel's handlers are on, and Create Job's Additional options are
        # batchhub's (the image's Dockerfile puts labextension/ beside jupyter-scheduler's).
        line = next(ln for ln in output.splitlines() if "batch_service.lab_queue" in ln)
        assert "enabled" in line
        page_config = venv.parent / "etc" / "jupyter" / "labconfig" / "page_config.json"
        disabled = json.loads(page_config.read_text())["disabledExtensions"]
        assert disabled == {"@jupyterlab/scheduler:IAdvancedOptions": True}
        # A batch server (BatchKubeSpawner points JUPYTER_CONFIG_PATH at this folder of the
        # image) runs the runner and none of the extensions a run never uses.
        batch_config = venv.parent / "etc" / "batchhub" / "batch-server"
        # The switches as the server merges them from every config folder, first one winning.
        merged = subprocess.run(
            [
                str(venv / "python"),
                "-c",
                "import json; from jupyter_core.paths import jupyter_config_path;"
                "from jupyter_server.extension.config import ExtensionConfigManager as M;"
                "print(json.dumps(M(read_config_path=jupyter_config_path())"
                ".get_jpserver_extensions()))",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "JUPYTER_CONFIG_PATH": str(batch_config)},
        )
        switches = json.loads(merged.stdout or "{}")
        assert switches.get("batch_service.runner") is True, merged.stderr
        off = ("jupyter_scheduler", "jupyterlab_jupytext", "batch_service.lab_queue")
        assert {name: switches.get(name) for name in off} == dict.fromkeys(off, False)
        lab = json.loads((batch_config / "labconfig" / "page_config.json").read_text())
        assert lab["disabledExtensions"]["batchhub-lab"] is True


def test_the_gpu_image_requirements_resolve(tmp_path: Path) -> None:
    venv = fresh_venv(tmp_path / "venv")
    report = tmp_path / "report.json"
    subprocess.run(
        [
            str(venv / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--dry-run",
            "--ignore-installed",
            "--report",
            str(report),
            "-r",
            str(IMAGES / "singleuser-gpu" / "requirements.txt"),
        ],
        check=True,
        cwd=IMAGES / "singleuser-gpu",
    )
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert {"torch", "jupyterlab", "papermill", "ipykernel"} <= names
