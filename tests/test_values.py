"""The values file: defaults validate, typos and wrong types stop start-up naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hub_config.values import ValuesError, get, load_values, parse_bytes

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_defaults_load_and_give_a_cpu_profile_first() -> None:
    values = load_values()
    assert get(values, "profiles")[0]["name"] == "cpu"
    assert get(values, "hub.bind_url") == "http://127.0.0.1:8000"


def test_override_merges_key_by_key(tmp_path: Path) -> None:
    values = load_values(write(tmp_path, {"hub": {"bind_url": "http://127.0.0.1:9999"}}))
    assert get(values, "hub.bind_url") == "http://127.0.0.1:9999"
    assert get(values, "hub.hub_ip") == "127.0.0.1"  # untouched default survives


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"hub": {"bindurl": "x"}}, "'hub.bindurl'"),
        ({"hubb": {}}, "'hubb'"),
        ({"batch": {"port": "eighty"}}, "'batch.port'"),
        ({"spawner": {"kind": "docker"}}, "'spawner.kind'"),
        ({"profiles": [{"name": "gpu", "gpus": 1, "gpu_count": 2}]}, "'profiles[0].gpu_count'"),
    ],
)
def test_bad_key_is_named_with_what_is_allowed(tmp_path: Path, data: dict, named: str) -> None:
    with pytest.raises(ValuesError) as raised:
        load_values(write(tmp_path, data))
    assert named in str(raised.value)


def test_unknown_key_message_lists_allowed_keys(tmp_path: Path) -> None:
    with pytest.raises(ValuesError, match="allowed keys here: .*bind_url"):
        load_values(write(tmp_path, {"hub": {"bindurl": "x"}}))


def test_hub_refuses_to_start_with_a_typo(tmp_path: Path) -> None:
    """`make run VALUES=bad.yaml` stops at once and says which key is wrong."""
    bad = write(tmp_path, {"spawner": {"local": {"isolaton": "on"}}})
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "jupyterhub"),
            "-f",
            str(ROOT / "hub_config" / "jupyterhub_config.py"),
        ],
        env={
            "PATH": "/usr/bin:/bin",
            "BATCHHUB_VALUES": str(bad),
            "BATCHHUB_STATE_DIR": str(tmp_path / "state"),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "'spawner.local.isolaton'" in result.stderr
    assert "isolation" in result.stderr  # what is allowed


def test_sizes_parse_to_bytes() -> None:
    assert parse_bytes("4G") == 4 * 1024**3
    assert parse_bytes("512Mi") == 512 * 1024**2
    assert parse_bytes(1000) == 1000


def test_the_chart_ships_the_same_schema_the_hub_uses() -> None:
    import json

    from hub_config.schema import CHART_SCHEMA, SOURCE

    shipped = json.loads(CHART_SCHEMA.read_text())
    assert shipped == yaml.safe_load(SOURCE.read_text())
    assert shipped["additionalProperties"] is False
