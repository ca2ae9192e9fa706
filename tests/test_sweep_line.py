"""A sweep's points in the one line: max_parallel holds, a paused sweep offers none, points take
turns with a colleague's job, and the points held back say why."""

from __future__ import annotations

from pathlib import Path

from batch_service.identity import SUBMIT, Identity
from batch_service.jobs import QUEUED, RUNNING, STARTING, Submission
from batch_service.line import Line
from batch_service.sweeps import SweepRequest, SweepService
from batch_service.uploads import check_upload
from tests.batch import notebook
from tests.test_admission import line, queue
from tests.test_store import ADMIN_USER

CAROL = Identity("carol", frozenset({SUBMIT}))
NB = notebook("y = x", parameters="x = 1")


def sweep(sweeps: SweepService, points: str, max_parallel: int) -> str:
    upload = check_upload("nb.ipynb", NB, None, 10, 2**20)
    submission = Submission("carol", upload, "one", 600, {})
    spec = {"kind": "grid", "grid": {"x": points}}
    return sweeps.create(CAROL, SweepRequest(submission, spec, max_parallel=max_parallel))["id"]


def test_max_parallel_bounds_what_a_sweep_offers_and_the_rest_say_why(tmp_path: Path) -> None:
    jobs, admission = line(tmp_path, gpus=8, policy={})
    sweeps = SweepService(jobs)
    sweep_id = sweep(sweeps, "1:9", max_parallel=2)
    config = admission.config()
    requests, _, _ = admission.snapshot(config)
    assert len(requests) == 2
    assert len(admission.held_back) == 7
    assert set(admission.held_back.values()) == {"waiting: the sweep runs at most 2 at once"}
    # The first points in submission order are offered first.
    _, points, _ = sweeps.points(CAROL, sweep_id)
    assert {r.id for r in requests} == {points[0].id, points[1].id}

    # Two start: nothing more is offered until one ends.
    decision, _ = admission.decide(max_servers=8, now=1000.0)
    assert len(decision.start) == 2
    for job_id in decision.start:
        jobs.mark(job_id, [QUEUED], state=STARTING)
    assert list(admission.snapshot(config)[0]) == []
    jobs.mark(decision.start[0], [STARTING], state=RUNNING)
    jobs.mark(decision.start[1], [STARTING], state="succeeded")
    assert len(admission.snapshot(config)[0]) == 1

    # What a reader of the job list sees for a point held back.
    held = next(iter(admission.held_back))
    jobs.line = Line()
    jobs.line.held = admission.held_back
    view = jobs.get(CAROL, held)
    assert view["reason_code"] == "sweep_limit"
    assert view["reason"] == "waiting: the sweep runs at most 2 at once"
    assert view["position"] is None

    # Paused: none offered; resumed: its room again.
    sweeps.set_paused(CAROL, sweep_id, True)
    assert list(admission.snapshot(config)[0]) == []
    assert "paused" in next(iter(admission.held_back.values()))
    sweeps.set_paused(CAROL, sweep_id, False)
    assert len(admission.snapshot(config)[0]) == 1


def test_a_big_sweep_does_not_shut_out_a_colleague(tmp_path: Path) -> None:
    jobs, admission = line(tmp_path, gpus=1, policy={"half_life_seconds": 10**9})
    sweeps = SweepService(jobs)
    sweep(sweeps, "1:200", max_parallel=50)
    single = queue(jobs, Identity("dave", frozenset({SUBMIT})))
    started = []
    # One GPU: runs alternate between carol's sweep and dave's single run.
    for step in range(3):
        decision, _ = admission.decide(max_servers=8, now=1000.0 + step)
        assert len(decision.start) == 1
        job_id = decision.start[0]
        started.append(job_id)
        jobs.mark(job_id, [QUEUED], state=STARTING, admitted_at=1000.0 + step)
        jobs.mark(job_id, [STARTING], state="succeeded", finished_at=1000.5 + step)
    assert single in started[:2]


def test_two_users_sweeps_take_turns(tmp_path: Path) -> None:
    jobs, admission = line(tmp_path, gpus=1, policy={"half_life_seconds": 10**9})
    sweeps = SweepService(jobs)
    dave = Identity("dave", frozenset({SUBMIT}))
    sweep(sweeps, "1:20", max_parallel=10)
    upload = check_upload("nb.ipynb", NB, None, 10, 2**20)
    spec = {"kind": "grid", "grid": {"x": "1:20"}}
    sweeps.create(dave, SweepRequest(Submission("dave", upload, "one", 600, {}), spec, 10))
    owners = []
    for step in range(6):
        decision, _ = admission.decide(max_servers=8, now=1000.0 + step)
        (job_id,) = decision.start
        owners.append(jobs.get(ADMIN_USER, job_id)["owner"])
        jobs.mark(job_id, [QUEUED], state=STARTING, admitted_at=1000.0 + step)
        jobs.mark(job_id, [STARTING], state="succeeded", finished_at=1000.5 + step)
    # Equal use, equal turns: the two sweeps alternate on the one GPU.
    assert owners.count("carol") == owners.count("dave") == 3
    assert all(a != b for a, b in zip(owners, owners[1:], strict=False))
