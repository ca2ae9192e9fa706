"""How batchhub jobs read in JupyterLab's Jobs panel (batch_service/lab_scheduler.py)."""

from __future__ import annotations

from typing import Any

import pytest
from jupyter_scheduler.exceptions import SchedulerError

from batch_service.lab_scheduler import _parameter_value, _service_id, describe_job


def job(state: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "k3j9x2m4qp",
        "state": state,
        "input_name": "train.ipynb",
        "profile": "gpu-1",
        "parameters": {"lr": 0.1},
        "submitted_at": 1_800_000_000.5,
        "started_at": None,
        "finished_at": None,
        "error": None,
        "reason": "",
        **extra,
    }


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("queued", "QUEUED"),
        ("starting", "QUEUED"),
        ("running", "IN_PROGRESS"),
        ("succeeded", "COMPLETED"),
        ("failed", "FAILED"),
        ("timed_out", "FAILED"),
        ("cancelled", "STOPPED"),
    ],
)
def test_each_state_reads_as_the_jobs_panels_status(state: str, status: str) -> None:
    described = describe_job(job(state))
    assert (described.status.value, described.job_id, described.compute_type) == (
        status,
        "batch-k3j9x2m4qp",
        "gpu-1",
    )
    assert described.name == "train" and described.create_time == 1_800_000_000_500


def test_only_a_failure_carries_a_message_the_panel_shows_as_an_error() -> None:
    failed = job("failed", error={"name": "ZeroDivisionError", "value": "division by zero"})
    assert describe_job(failed).status_message == "ZeroDivisionError: division by zero"
    assert describe_job(job("queued", reason="waits for a GPU")).status_message is None


def test_parameter_text_is_read_as_json_where_it_parses() -> None:
    assert [_parameter_value(v) for v in ("3", "0.5", "true", "[1, 2]", "hello")] == [
        3,
        0.5,
        True,
        [1, 2],
        "hello",
    ]


def test_ids_without_batchhubs_prefix_are_refused() -> None:
    assert _service_id("batch-abc", "batch-") == "abc"
    with pytest.raises(SchedulerError):
        _service_id("definition-abc", "batch-")
