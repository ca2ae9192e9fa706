"""Prometheus metrics of the batch service, read as Prometheus and an admin would."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.batch import Batch
from tests.conftest import METRICS_TOKEN
from tests.hub import HubProcess


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_prometheus_reads_queue_gpus_runs_and_decision_times(hub: HubProcess) -> None:
    url = f"{hub.url}/services/batch/metrics"
    user = hub.ready_user("mx-user")
    batch = Batch(user)
    job = batch.wait(batch.submit("m.py", b"x = 1\n").json()["id"])
    assert job["state"] == "succeeded"
    # Someone holds one of the two fake GPUs with an interactive server.
    holder = hub.ready_user("mx-gpu")
    assert holder.start_server("g", {"profile": "gpu-1"}).status_code in (201, 202)
    try:
        answer = requests.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.headers["Content-Type"].startswith("text/plain")
        got = samples(answer.text)
    finally:
        holder.stop_server("g")
    assert got[("batchhub_runs_total", (("outcome", "succeeded"), ("profile", "cpu")))] >= 1
    assert got[("batchhub_queue_wait_seconds_count", (("profile", "cpu"),))] >= 1
    assert got[("batchhub_admission_decision_seconds_count", ())] > 0
    assert got[("batchhub_gpus", (("gpu_type", "fake"),))] == 2
    held = (("gpu_type", "fake"), ("holder", "interactive_server"))
    assert got[("batchhub_gpus_held", held)] == 1
    assert got[("batchhub_jobs", (("state", "succeeded"),))] >= 1
    assert ("batchhub_queue_paused", ()) in got
    batch.call("POST", f"jobs/{job['id']}/release")


def test_only_admins_and_the_metrics_token_read_them(hub: HubProcess) -> None:
    url = f"{hub.url}/services/batch/metrics"
    assert requests.get(url, timeout=30).status_code in (401, 403)
    someone = hub.ready_user("mx-someone")
    refused = someone.api("GET", url)
    assert refused.status_code == 403 and "batch admins" in refused.json()["message"]
    assert hub.admin().api("GET", url).status_code == 200
    wrong = requests.get(url, headers={"Authorization": "Bearer not-the-token"}, timeout=30)
    assert wrong.status_code in (401, 403)
