"""How batchhub jobs read in JupyterLab's Jobs panel (batch_service/lab_scheduler.py)."""

from __future__ import annotations

from typing import Any

import pytest
from jupyter_scheduler.exceptions import SchedulerError

from batch_service.lab_scheduler import _parameter_value, _service_id, describe_job
from batch_service.lab_tags import time_limit_from_tags, time_limit_tags


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


def test_a_zip_with_a_notebook_entry_point_is_checked_as_that_notebook() -> None:
    from batch_service.errors import BatchError
    from batch_service.uploads import check_upload
    from tests.batch import notebook, zip_bytes

    nb = notebook("print(open('data.csv').read())", parameters="rows: int = 10")
    folder = zip_bytes({"my run.ipynb": nb, "data.csv": "a\n1\n"})
    checked = check_upload("proj.zip", folder, "my run.ipynb", 10, 2**20)
    assert (checked.kind, checked.entry_point) == ("module", "my run.ipynb")
    assert [p.name for p in checked.parameters or []] == ["rows"]
    for entry, words in (("../x.ipynb", "outside"), ("missing.ipynb", "not in")):
        with pytest.raises(BatchError, match=words):
            check_upload("proj.zip", folder, entry, 10, 2**20)
    broken = zip_bytes({"nb.ipynb": "{not json"})
    with pytest.raises(BatchError):
        check_upload("proj.zip", broken, "nb.ipynb", 10, 2**20)


def test_the_time_limit_tag_becomes_seconds_and_back() -> None:
    assert time_limit_from_tags(None) is None and time_limit_from_tags([]) is None
    assert time_limit_from_tags(["batchhub-time-limit=5400"]) == 5400
    assert time_limit_tags(5400) == ["batchhub-time-limit=5400"]
    assert describe_job(job("queued", time_limit=7200)).tags == ["batchhub-time-limit=7200"]


@pytest.mark.parametrize(
    ("tags", "words"),
    [
        (["batchhub-time-limit=1h"], "whole number of seconds"),
        (["batchhub-time-limit=-5"], "whole number of seconds"),
        (["batchhub-time-limit=" + "9" * 400], "whole number of seconds"),
        (["batchhub-time-limit=0"], "at least one second"),
        (["batchhub-time-limit=60", "batchhub-time-limit=120"], "one time limit"),
        (["project-x"], "no tags"),
        (["batchhub-time-limit=60"] * 50, "no other tags"),
    ],
)
def test_a_bad_time_limit_tag_is_a_clear_error(tags: list[str], words: str) -> None:
    with pytest.raises(SchedulerError, match=words):
        time_limit_from_tags(tags)
