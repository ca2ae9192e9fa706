"""Admission over a real store: usage is charged at admission and settled when a run ends early."""

from __future__ import annotations

from pathlib import Path

from batch_service.admission import Admission
from batch_service.jobs import FINISHED_STATES, STARTING, JobService, Submission
from batch_service.store import Store
from batch_service.turns import TurnService
from batch_service.uploads import check_upload
from spawner.profiles import load_profiles
from tests.batch import notebook
from tests.test_store import ALICE

PROFILES = load_profiles([{"name": "gpu", "gpus": 2, "gpu_type": "a100"}])


def test_a_run_that_ends_early_is_charged_only_for_what_it_used(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    store.migrate()
    jobs = JobService(store, PROFILES)
    admission = Admission(
        store,
        TurnService(store, jobs.profiles),
        jobs.profiles,
        {"a100": 2},
        {"half_life_seconds": 10**9},
    )
    upload = check_upload("nb.ipynb", notebook("x = 1"), None, 10, 2**20)
    job = jobs.submit(ALICE, Submission("alice", upload, "gpu", 3600, {}))
    decision, _ = admission.decide(max_servers=4, now=1000.0)
    assert decision.start == (job["id"],)
    # Admitted: charged 2 GPUs x the 3600 s time limit.
    assert round(admission.load_usage().by_user["alice"]) == 2 * 3600
    jobs.mark(job["id"], ["queued"], state=STARTING, started_at=1000.0)
    jobs.mark(job["id"], [STARTING], state="succeeded", finished_at=1100.0)
    assert jobs.get(ALICE, job["id"])["state"] in FINISHED_STATES
    admission.decide(max_servers=4, now=1200.0)
    # It held its GPUs 100 s: the rest of the charge comes back, once.
    assert round(admission.load_usage().by_user["alice"]) == 2 * 100
    admission.decide(max_servers=4, now=1300.0)
    assert round(admission.load_usage().by_user["alice"]) == 2 * 100
