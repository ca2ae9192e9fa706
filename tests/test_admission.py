"""Admission over a real store: usage is charged at admission and settled when a run ends early."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from batch_service.admission import Admission
from batch_service.errors import BatchError
from batch_service.fair_share import FairSharePolicy
from batch_service.identity import SUBMIT, Identity
from batch_service.jobs import FINISHED_STATES, STARTING, JobService, Submission
from batch_service.store import Job, Store, Turn
from batch_service.turns import TurnService
from batch_service.uploads import check_upload
from spawner.profiles import load_profiles
from tests.batch import notebook
from tests.test_store import ADMIN_USER, ALICE

PROFILES = load_profiles(
    [{"name": "gpu", "gpus": 2, "gpu_type": "a100"}, {"name": "one", "gpus": 1, "gpu_type": "a100"}]
)


def member(name: str, *groups: str) -> Identity:
    return Identity(name, frozenset({SUBMIT}), groups)


def line(tmp_path: Path, gpus: int, policy: dict[str, Any]) -> tuple[JobService, Admission]:
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    store.migrate()
    jobs = JobService(store, PROFILES)
    turns = TurnService(store, jobs.profiles)
    admission = Admission(
        store, turns, jobs.profiles, {"a100": gpus}, FairSharePolicy(**policy).to_policy()
    )
    jobs.fair_groups = lambda: admission.config().named_groups  # as the app wires it
    return jobs, admission


def queue(jobs: JobService, who: Identity, profile: str = "one", **kw: Any) -> str:
    upload = check_upload("nb.ipynb", notebook("x = 1"), None, 10, 2**20)
    return jobs.submit(who, Submission(who.name, upload, profile, 600, {}, **kw))["id"]


def test_a_run_that_ends_early_is_charged_only_for_what_it_used(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    store.migrate()
    jobs = JobService(store, PROFILES)
    admission = Admission(
        store,
        TurnService(store, jobs.profiles),
        jobs.profiles,
        {"a100": 2},
        FairSharePolicy(half_life_seconds=10**9).to_policy(),
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


def test_a_job_sent_back_in_line_before_it_ran_is_not_charged_twice(tmp_path: Path) -> None:
    policy = {"group_weights": {"lab-a": 1}, "half_life_seconds": 1e9}
    jobs, admission = line(tmp_path, 2, policy)
    job_id = queue(jobs, member("ana", "lab-a"))
    assert admission.decide(max_servers=4, now=1000.0)[0].start == (job_id,)
    assert round(admission.load_usage().by_user["ana"]) == 600  # 1 GPU x its 600 s
    with jobs.store.session() as session:
        job = session.get(Job, job_id)
    # Its server vanished 10 s into its start: back in line, its charge given back but for the
    # 10 s it held the GPU, by the next pass, which admits it again: one charge in all, for her
    # and for her group.
    admission.refund(job, held=10)
    assert admission.decide(max_servers=4, now=1010.0)[0].start == (job_id,)
    usage = admission.load_usage()
    assert round(usage.by_user["ana"]) == 610 and round(usage.by_group["lab-a"]) == 610
    # A pass that admits nothing still saves a refund: the service restarted after it
    # finds it given back.
    admission.refund(job)
    assert admission.decide(max_servers=0, now=1020.0)[0].start == ()
    _, restarted = line(tmp_path, 2, policy)
    assert round(restarted.load_usage().by_user["ana"]) == 10


def test_a_group_that_the_policy_weights_takes_turns_as_one(tmp_path: Path) -> None:
    jobs, admission = line(tmp_path, 2, {"group_weights": {"lab-a": 1, "lab-b": 1}})
    # Two people of lab-a queue first, one of lab-b last: per group, lab-b gets a GPU.
    alice = queue(jobs, member("alice", "lab-a", "batch-users"))
    queue(jobs, member("bob", "lab-a"))
    carol = queue(jobs, member("carol", "lab-b"))
    decision, _ = admission.decide(max_servers=4, now=jobs.get(ALICE, alice)["submitted_at"])
    assert sorted(decision.start) == sorted([alice, carol])
    # The charge went to the groups as well as the people.
    usage = admission.load_usage()
    assert round(usage.by_group["lab-a"]) == round(usage.by_group["lab-b"]) == 600


def test_groups_the_policy_does_not_name_do_not_merge_turns(tmp_path: Path) -> None:
    jobs, admission = line(tmp_path, 2, {})
    alice = queue(jobs, member("alice", "lab-a"))
    bob = queue(jobs, member("bob", "lab-a"))
    queue(jobs, member("carol", "lab-b"))
    decision, _ = admission.decide(max_servers=4, now=jobs.get(ALICE, alice)["submitted_at"])
    assert sorted(decision.start) == sorted([alice, bob])  # first come, per person
    assert admission.load_usage().by_group == {}


def test_a_group_cap_holds_back_its_members_batch_jobs(tmp_path: Path) -> None:
    jobs, admission = line(tmp_path, 4, {"group_gpu_caps": {"lab-a": 2}})
    alice = queue(jobs, member("alice", "lab-a"), "gpu")
    bob = queue(jobs, member("bob", "lab-a"), "gpu")
    decision, _ = admission.decide(max_servers=4, now=jobs.get(ALICE, alice)["submitted_at"])
    assert decision.start == (alice,)
    assert "group lab-a holds the most GPUs it may hold" in decision.reasons[bob]
    jobs.mark(alice, ["queued"], state=STARTING, started_at=1.0)
    # Still held while alice's job runs: bob waits for the group, not for GPUs.
    decision, _ = admission.decide(max_servers=4, now=2.0)
    assert decision.start == ()


def test_a_job_counts_in_the_group_its_owner_chooses(tmp_path: Path) -> None:
    jobs, admission = line(tmp_path, 2, {"group_weights": {"lab-a": 1}})
    admission.set_weight("group", "lab-b", 2)  # an admin gives lab-b a share of its own
    dana = member("dana", "lab-a", "lab-b", "everyone")
    assert jobs.groups_for(dana) == ["lab-a", "lab-b"]
    job = queue(jobs, dana, group="lab-b")
    assert jobs.get(dana, job)["group"] == "lab-b"
    admission.decide(max_servers=4, now=jobs.get(dana, job)["submitted_at"])
    assert set(admission.load_usage().by_group) == {"lab-b"}


@pytest.mark.parametrize(
    ("group", "message"),
    [
        ("lab-z", "you are not a member of group 'lab-z'; your groups: everyone, lab-a"),
        (7, "you are not a member of group '7'"),
        ("x" * 10_000, "you are not a member of group 'xxx"),
        # Counting in a group nobody weighs would dodge one's own group's usage.
        (
            "everyone",
            "group 'everyone' has no fair share of its own (no weight or cap); "
            "yours that do: lab-a",
        ),
    ],
)
def test_a_group_one_may_not_count_in_is_refused_and_nothing_is_stored(
    tmp_path: Path, group: Any, message: str
) -> None:
    jobs, _ = line(tmp_path, 2, {"group_gpu_caps": {"lab-a": 4}})
    dana = member("dana", "lab-a", "everyone")
    with pytest.raises(BatchError) as refused:
        queue(jobs, dana, group=group)
    assert message in str(refused.value) and len(str(refused.value)) < 400
    assert jobs.list_jobs(dana)["total"] == 0


def test_a_live_kernel_is_charged_for_the_gpus_it_held_after_the_run(tmp_path: Path) -> None:
    jobs, admission = line(tmp_path, 2, {"half_life_seconds": 10**9})
    job = queue(jobs, ALICE, "gpu")
    admission.decide(max_servers=4, now=1000.0)
    jobs.mark(job, ["queued"], state=STARTING, started_at=1000.0)
    jobs.mark(job, [STARTING], state="succeeded", finished_at=1100.0, live=True, live_until=1700.0)
    admission.decide(max_servers=4, now=1200.0)
    assert round(admission.load_usage().by_user["alice"]) == 2 * 100  # the run only, so far
    # The owner looked at the live kernel for 5 minutes, then the scheduler let it go.
    jobs.mark(job, ["succeeded"], live=False, live_ended_at=1400.0)
    admission.decide(max_servers=4, now=1500.0)
    assert round(admission.load_usage().by_user["alice"]) == 2 * 100 + 2 * 300
    admission.decide(max_servers=4, now=1600.0)
    assert round(admission.load_usage().by_user["alice"]) == 2 * 100 + 2 * 300


def test_an_interactive_server_is_charged_for_as_long_as_it_held_its_gpus(
    tmp_path: Path,
) -> None:
    jobs, admission = line(tmp_path, 2, {"half_life_seconds": 10**9})
    turns = admission.turns
    erin = Identity("erin", frozenset({"access:servers!server=erin/gpu"}), ("lab-a",))
    turn = turns.ask(erin, "gpu", "gpu")
    decision, kinds = admission.decide(max_servers=4, now=time.time())
    assert decision.start == (turn["id"],) and kinds[turn["id"]] == "interactive"
    turns.admit(turn["id"])
    assert round(admission.load_usage().by_user["erin"]) == 2 * 3600  # charged on admission
    # The server ran two hours, then stopped: the turn ends and the rest is charged.
    with admission.store.session() as session:
        session.get(Turn, turn["id"]).admitted_at = 0.0  # type: ignore[union-attr]
    turns.forget(turn["id"])  # the hub no longer runs the server
    with admission.store.session() as session:
        session.get(Turn, turn["id"]).ended_at = 7200.0  # type: ignore[union-attr]
    assert turns.all() == []  # it holds no GPUs any more
    admission.decide(max_servers=4, now=time.time())
    assert round(admission.load_usage().by_user["erin"]) == 2 * 7200
    with admission.store.session() as session:
        assert session.get(Turn, turn["id"]) is None  # settled once, then gone
    admission.decide(max_servers=4, now=time.time())
    assert round(admission.load_usage().by_user["erin"]) == 2 * 7200


def test_gpus_of_a_server_still_stopping_go_to_no_one_until_the_hub_lets_it_go(
    tmp_path: Path,
) -> None:
    jobs, admission = line(tmp_path, 1, {})
    alice, bob = member("alice"), member("bob")
    first = queue(jobs, alice)
    assert admission.decide(max_servers=4, now=1000.0)[0].start == (first,)
    jobs.mark(first, ["queued"], state=STARTING, started_at=1000.0)
    jobs.cancel(alice, first)  # its server is asked to stop; stopping takes a while
    waiting = queue(jobs, bob)
    stopping = {first: "alice"}  # the hub still lists the server
    decision, _ = admission.decide(max_servers=4, now=1010.0, stopping=stopping)
    assert decision.start == ()
    assert waiting in decision.positions
    # Gone from the hub: its GPU is really back, so the next in line starts.
    assert admission.decide(max_servers=4, now=1020.0, stopping={})[0].start == (waiting,)


def test_a_queued_job_says_why_it_waits_and_when_it_may_start(tmp_path: Path) -> None:
    jobs, admission = line(tmp_path, 2, {"half_life_seconds": 10**9})
    bob = member("bob")
    running = queue(jobs, bob, "gpu")
    t0 = time.time()
    decision, _ = admission.decide(max_servers=4, now=t0)
    assert decision.start == (running,)
    # Its server came up and the runner said the run started 5 s later.
    jobs.mark(running, ["queued"], state=STARTING, admitted_at=t0, started_at=t0 + 5)
    waiting = queue(jobs, ALICE, "one")
    before = jobs.get(ALICE, waiting)
    assert (before["reason_code"], before["position"]) == ("new", 1)
    decision, _ = admission.decide(max_servers=4, now=t0 + 10)
    jobs.line.update(decision)
    seen = jobs.get(ALICE, waiting)
    assert seen["reason_code"] == "resources"
    # squeue --start: the run's start plus its time limit.
    assert seen["estimated_start"] == t0 + 5 + 600
    assert seen["reason"].startswith("waiting for 1 GPU of type a100: position 1 in line; held")
    assert "a run of another user (ends in ~10 min)" in seen["reason"]
    # Who holds the GPUs is named only to those who may see everyone's jobs.
    assert "a run of bob" in jobs.get(ADMIN_USER, waiting)["reason"]
    assert "bob" not in jobs.list_jobs(ALICE)["jobs"][0]["reason"]
    # A second job, submitted since the pass, stands behind the first until the next one.
    later = jobs.get(ALICE, queue(jobs, ALICE, "one"))
    assert (later["reason_code"], later["position"]) == ("new", 2)
    # Paused: nothing starts, so no start time can be promised.
    jobs.set_paused(ADMIN_USER, True)
    paused = jobs.get(ALICE, waiting)
    assert (paused["reason_code"], paused["estimated_start"]) == ("paused", None)
    assert "the queue is paused by a batch admin" in paused["reason"]
    # The job that runs waits for nothing.
    assert jobs.get(bob, running)["reason_code"] == "none"


def test_a_gpu_profile_this_machine_cannot_run_is_refused_at_submission(tmp_path: Path) -> None:
    jobs, _ = line(tmp_path, 1, {})
    jobs.gpu_capacity = {"a100": 1}  # as the app sets it from the GPU inventory
    with pytest.raises(BatchError) as refused:
        queue(jobs, ALICE, "gpu")
    assert refused.value.status == 400
    assert str(refused.value).startswith(
        "profile 'gpu' needs 2 GPUs of type a100 but this machine has 1"
    )
    assert jobs.list_jobs(ALICE)["total"] == 0
    assert jobs.get(ALICE, queue(jobs, ALICE, "one"))["state"] == "queued"
