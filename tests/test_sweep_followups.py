"""Adaptive sweeps without a hub (SQLite and PostgreSQL): Optuna's trials as runs, exploration
proposals within bounds and budget, and a restart in the middle losing and repeating nothing.

Runs are ended here by writing their job rows as the service would (state and recorded values);
each pass is the service's own (`FollowUps.advance`)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, select

from batch_service import cli_sweep
from batch_service.errors import BatchError, Conflict
from batch_service.jobs import JobService
from batch_service.store import Base, Job, JobFile, Store, Sweep
from batch_service.store.db import alembic_config
from batch_service.sweep_followups import FollowUps
from batch_service.sweep_optuna import OPTUNA_TABLES, STUDY_PREFIX
from batch_service.sweep_points import Checker
from batch_service.sweep_space import (
    ALREADY_SEEN,
    OUT_OF_BOUNDS,
    OVER_BUDGET,
    TOO_DEEP,
    parse_explore,
    take_proposals,
)
from batch_service.sweeps import SweepRequest, SweepService
from tests.batch import notebook
from tests.test_store import ALICE, PROFILES, postgres_url, store_url, submission

__all__ = ["postgres_url", "store_url"]

NB = notebook("loss = (x - 2) ** 2", parameters="x = 1.0\ny = 0.0\nn = 1\nmode = 'a'")
OPTUNA = {
    "kind": "optuna",
    "space": {"x": {"low": 0, "high": 5}},
    "objective": "loss",
    "direction": "minimize",
    "max_trials": 12,
    "seed": 3,
    "startup_trials": 4,
}
CIRCLE = {
    "kind": "explore",
    "start": [{"x": 0, "y": 0}],
    "bounds": {"x": {"low": -4, "high": 4, "int": True}, "y": {"low": -4, "high": 4, "int": True}},
    "max_points": 60,
    "max_depth": 6,
}


@pytest.fixture
def service(store_url: str, tmp_path: Path) -> Iterator[tuple[SweepService, FollowUps]]:
    """A migrated store behind the sweep service and its follow-ups."""
    store = Store(store_url, tmp_path / "files")
    store.migrate()
    jobs = JobService(store, PROFILES)
    yield SweepService(jobs, max_points=100), FollowUps(jobs)
    store.dispose()


def create(sweeps: SweepService, spec: dict, max_parallel: int = 3) -> str:
    return sweeps.create(ALICE, SweepRequest(submission("alice", NB), spec, max_parallel))["id"]


def jobs_of(sweeps: SweepService, sweep_id: str) -> list[Job]:
    with sweeps.store.session() as session:
        return list(session.scalars(select(Job).where(Job.sweep_id == sweep_id)).all())


def run_queued(sweeps: SweepService, sweep_id: str, outcome: Callable[[Job], dict | None]) -> int:
    """End every queued run of the sweep: `outcome` gives its recorded values (None: failed)."""
    with sweeps.store.session() as session:
        queued = session.scalars(
            select(Job).where(Job.sweep_id == sweep_id, Job.state == "queued")
        ).all()
        for job in queued:
            values = outcome(job)
            job.state = "failed" if values is None else "succeeded"
            job.recorded = values or {}
            job.finished_at = job.submitted_at + 1
    return len(queued)


def state(sweeps: SweepService, sweep_id: str) -> str:
    return sweeps.get(ALICE, sweep_id)["state"]


# --- bounds and budget ---------------------------------------------------------------------
def test_proposals_are_kept_within_bounds_depth_and_budget() -> None:
    spec = parse_explore(CIRCLE, Checker(None, "nb.ipynb"), 100)
    seen = {"h"}
    taken, dropped = take_proposals(
        [{"x": 1}, {"x": 9}, {"x": 1}, {"z": 1}, {"x": 1.5}, "nonsense", {"y": -1}],
        {"x": 0, "y": 0},
        0,
        spec,
        seen,
        1,
    )
    # Each proposal names what changes; the rest is the proposer's point.
    assert [point for _, point in taken] == [{"x": 1, "y": 0}, {"x": 0, "y": -1}]
    assert dropped == {OUT_OF_BOUNDS: 3, ALREADY_SEEN: 1, "malformed": 1}
    _, deep = take_proposals([{"x": 1}], {"x": 0, "y": 0}, 6, spec, set(), 1)
    assert deep == {TOO_DEEP: 1}
    full, over = take_proposals(
        [{"x": 1}, {"x": 2}, {"x": 3}], {"x": 0, "y": 0}, 0, spec, set(), 58
    )
    assert len(full) == 2 and over == {OVER_BUDGET: 1}


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({**OPTUNA, "space": {"x": {"low": 0}}}, "needs bounds"),
        ({**OPTUNA, "space": {}}, "space is an object"),
        ({**OPTUNA, "max_trials": 101}, "max_trials 101 is more than 100 (max_points)"),
        ({**OPTUNA, "direction": "up"}, "direction must be minimize or maximize"),
        ({**OPTUNA, "space": {"lr": {"low": 0, "high": 1}}}, "'lr' is not a parameter of"),
        ({**OPTUNA, "space": {"n": {"low": 0.5, "high": 3}}}, "must be of type int"),
        ({**OPTUNA, "objective": "1x"}, "objective must name the recorded value"),
        ({k: v for k, v in OPTUNA.items() if k != "max_trials"}, "max_trials is required"),
        ({**CIRCLE, "bounds": {"x": {"low": 0, "high": 1}, "q": {"low": 0, "high": 1}}}, "'q'"),
        ({**CIRCLE, "max_points": 1000}, "max_points 1000 is more than this service's 100"),
        ({**CIRCLE, "start": [{"x": 9, "y": 0}]}, "start point 1: x=9 is outside its bounds"),
        ({**CIRCLE, "start": [{"n": 1}]}, "'n' has no bounds"),
        ({**CIRCLE, "surprise": 1}, "unknown field 'surprise' in a explore sweep"),
    ],
)
def test_bad_adaptive_specs_store_nothing(
    service: tuple[SweepService, FollowUps], spec: dict, words: str
) -> None:
    sweeps, _ = service
    with pytest.raises(BatchError) as refused:
        create(sweeps, spec)
    assert refused.value.status == 400 and words in refused.value.message
    with sweeps.store.session() as session:
        assert session.scalar(select(func.count()).select_from(Sweep)) == 0
        assert session.scalar(select(func.count()).select_from(Job)) == 0


# --- optimisation ---------------------------------------------------------------------------
def loss(job: Job) -> dict | None:
    # Trial 5 fails: it is told to Optuna as failed, and the budget counts it.
    if job.trial == 5:
        return None
    return {"loss": (job.parameters["x"] - 2) ** 2}


def test_an_optimisation_asks_at_most_max_parallel_and_tells_every_trial(
    service: tuple[SweepService, FollowUps],
) -> None:
    sweeps, followups = service
    sweep_id = create(sweeps, OPTUNA, max_parallel=3)
    assert followups.advance(sweep_id) == 3
    while state(sweeps, sweep_id) == "active":
        active = [j for j in jobs_of(sweeps, sweep_id) if j.state == "queued"]
        assert len(active) <= 3
        run_queued(sweeps, sweep_id, loss)
        followups.advance(sweep_id)
    jobs = jobs_of(sweeps, sweep_id)
    assert sorted(j.trial for j in jobs) == list(range(12))
    assert all(j.followed_up for j in jobs)
    # Every trial's input is the sweep's input.
    with sweeps.store.session() as session:
        assert session.scalar(select(func.count()).select_from(JobFile)) == 12
    view = sweeps.get(ALICE, sweep_id)
    assert view["state"] == "done" and view["counts"]["succeeded"] == 11
    info = view["info"]
    assert info["trials"] == 12 and info["trial_states"] == {
        "complete": 11,
        "failed": 1,
        "running": 0,
    }
    best = min((j for j in jobs if j.state == "succeeded"), key=lambda j: j.recorded["loss"])
    assert info["best"]["job_id"] == best.id and info["best"]["value"] == best.recorded["loss"]
    study = optuna.load_study(
        study_name=STUDY_PREFIX + sweep_id, storage=followups.optuna.storage()
    )
    assert [t.state.name for t in study.trials].count("FAIL") == 1
    with pytest.raises(Conflict):
        sweeps.retry(ALICE, sweep_id)


def test_a_restart_between_ask_and_job_loses_and_repeats_no_trial(
    service: tuple[SweepService, FollowUps],
) -> None:
    sweeps, followups = service
    sweep_id = create(sweeps, OPTUNA, max_parallel=2)
    followups.advance(sweep_id)
    run_queued(sweeps, sweep_id, loss)
    # The service died right after Optuna handed out a trial, before its job was stored, and
    # after the runs ended but before they were told.
    study = optuna.load_study(
        study_name=STUDY_PREFIX + sweep_id, storage=followups.optuna.storage()
    )
    orphan = study.ask({"x": optuna.distributions.FloatDistribution(0, 5)})
    again = FollowUps(sweeps.jobs)  # the restarted service
    again.advance(sweep_id)
    jobs = jobs_of(sweeps, sweep_id)
    assert sorted(j.trial for j in jobs) == [0, 1, 2, 3]
    (recovered,) = [j for j in jobs if j.trial == orphan.number]
    assert recovered.parameters == orphan.params and recovered.state == "queued"
    while state(sweeps, sweep_id) == "active":
        run_queued(sweeps, sweep_id, loss)
        again.advance(sweep_id)
    assert sorted(j.trial for j in jobs_of(sweeps, sweep_id)) == list(range(12))


def test_a_cancelled_optimisation_asks_nothing_and_ends_every_trial(
    service: tuple[SweepService, FollowUps],
) -> None:
    sweeps, followups = service
    sweep_id = create(sweeps, OPTUNA, max_parallel=2)
    followups.advance(sweep_id)
    study = optuna.load_study(
        study_name=STUDY_PREFIX + sweep_id, storage=followups.optuna.storage()
    )
    study.ask({"x": optuna.distributions.FloatDistribution(0, 5)})  # handed out, no job yet
    sweeps.cancel(ALICE, sweep_id)
    assert followups.advance(sweep_id) == 0
    assert len(jobs_of(sweeps, sweep_id)) == 2
    assert [t.state.name for t in study.trials] == ["FAIL"] * 3
    assert state(sweeps, sweep_id) == "cancelled"


def test_optunas_tables_sit_beside_ours_and_migrations_still_equal_the_models(
    service: tuple[SweepService, FollowUps],
) -> None:
    sweeps, followups = service
    followups.advance(create(sweeps, OPTUNA))
    sweeps.store.migrate()  # our migrations run with Optuna's tables present
    # The tables our migrations skip are exactly Optuna's, and none of them is ours.
    assert set(optuna.storages._rdb.models.BaseModel.metadata.tables) == OPTUNA_TABLES
    assert not OPTUNA_TABLES & set(Base.metadata.tables)

    def ours(name: str | None, type_: str, parent_names: Any) -> bool:
        return not (type_ == "table" and name in OPTUNA_TABLES)

    with sweeps.store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_name": ours})
        assert compare_metadata(context, Base.metadata) == []
        revision = MigrationContext.configure(connection).get_current_revision()
    head = ScriptDirectory.from_config(alembic_config(sweeps.store.url)).get_current_head()
    assert revision == head


# --- exploration ----------------------------------------------------------------------------
def stable(job: Job) -> dict:
    """Stable inside a circle of radius 2.5; a stable point proposes its four neighbours."""
    x, y = job.parameters["x"], job.parameters["y"]
    inside = math.hypot(x, y) < 2.5
    proposals = [{"x": x + 1}, {"x": x - 1}, {"y": y + 1}, {"y": y - 1}] if inside else []
    return {"stable": inside, "next_points": proposals}


def test_an_exploration_goes_outward_until_the_boundary_and_stops_by_itself(
    service: tuple[SweepService, FollowUps],
) -> None:
    sweeps, followups = service
    sweep_id = create(sweeps, CIRCLE, max_parallel=4)
    rounds = 0
    while state(sweeps, sweep_id) == "active":
        assert run_queued(sweeps, sweep_id, stable) or rounds == 0
        followups.advance(sweep_id)
        rounds += 1
        assert rounds < 50
    jobs = jobs_of(sweeps, sweep_id)
    points = {(j.parameters["x"], j.parameters["y"]): j for j in jobs}
    assert len(points) == len(jobs)  # no point ran twice
    inside = {p for p in points if math.hypot(*p) < 2.5}
    # Every stable point within reach was found, and each of its neighbours (the boundary).
    assert len(inside) == 21
    for x, y in inside:
        for n in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
            assert n in points
    assert all(j.depth == abs(x) + abs(y) for (x, y), j in points.items())
    view = sweeps.get(ALICE, sweep_id)
    assert view["state"] == "done" and view["info"]["points"] == len(points) <= 60
    assert view["info"]["dropped"][ALREADY_SEEN] > 0


def test_an_exploration_over_budget_drops_and_counts_and_still_ends(
    service: tuple[SweepService, FollowUps],
) -> None:
    sweeps, followups = service
    sweep_id = create(sweeps, {**CIRCLE, "max_points": 8, "max_depth": 1}, max_parallel=4)
    while state(sweeps, sweep_id) == "active":
        run_queued(sweeps, sweep_id, stable)
        followups.advance(sweep_id)
    info = sweeps.get(ALICE, sweep_id)["info"]
    assert info["points"] == 5 and info["deepest"] == 1
    assert info["dropped"][TOO_DEEP] > 0


# --- the CLI's options -----------------------------------------------------------------------
def cli_spec(*argv: str) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    cli_sweep.add_commands(parser.add_subparsers())
    return cli_sweep.spec_from(parser.parse_args(["sweep", "model.ipynb", *argv]))


def test_the_cli_makes_the_specs_the_service_checks(
    service: tuple[SweepService, FollowUps],
) -> None:
    spec = cli_spec(
        "--optimise", "loss", "--space", "x=0:5", "--space", "n=1:4:int",
        "--space", "mode=a,b", "--max-trials", "20", "--seed", "3", "--maximise",
    )  # fmt: skip
    assert spec == {
        "kind": "optuna",
        "space": {
            "x": {"low": 0, "high": 5},
            "n": {"low": 1, "high": 4, "int": True},
            "mode": {"choices": ["a", "b"]},
        },
        "objective": "loss",
        "direction": "maximize",
        "max_trials": 20,
        "seed": 3,
    }
    explore = cli_spec(
        "--explore", "--start", "x=0,y=0", "--space", "x=-4:4:int", "--space", "y=-4:4:int",
        "--max-points", "30", "--max-depth", "3",
    )  # fmt: skip
    assert explore["start"] == [{"x": 0, "y": 0}] and explore["max_depth"] == 3
    sweeps, followups = service
    for made in (spec, explore):
        sweep_id = create(sweeps, made, max_parallel=2)
        assert followups.advance(sweep_id) == (2 if made is spec else 0)
    with pytest.raises(cli_sweep.CliError, match="--optimise needs --max-trials"):
        cli_spec("--optimise", "loss", "--space", "x=0:5")
    with pytest.raises(cli_sweep.CliError, match="after low:high only :int and :log"):
        cli_spec("--optimise", "loss", "--space", "x=0:5:cubic", "--max-trials", "3")
