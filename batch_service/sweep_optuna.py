"""Optimisation sweeps: Optuna's ask-and-tell, each trial a run of the sweep.

Optuna keeps its studies and trials in the service's own database (SQLite or PostgreSQL),
through `optuna.storages.RDBStorage` on the store's URL, in its own tables (studies, trials,
trial_params, trial_values, version_info, ...), none of which is a table of this service.
The one name both would use is Alembic's `alembic_version`: Optuna looks there for its own
schema revision and would find this service's. So Optuna's own check is off, and this module
checks instead that the schema Optuna created is the one the pinned optuna writes
(`version_info.schema_version`).

One pass over a sweep (`OptunaTrials.advance`, in a worker thread, one sweep at a time):

1. each run that ended and was not yet acted on is told: its recorded objective if it
   succeeded with a finite number, else failed; then marked as acted on;
2. a trial Optuna handed out whose job was never stored (the service died in between) gets its
   job now, with the trial's parameters: no trial is lost;
3. new trials are asked while fewer than max_parallel runs are queued or running and fewer
   than max_trials have been asked;
4. with every trial asked and told and none running, the sweep is done.

The job of trial n has point hash of {"trial": n, ...}: the unique (sweep, point) index makes
a second job of one trial impossible, so none is repeated. The sampler is TPE with a seed: the
sweep's seed mixed with how many trials it has when the study is opened, so a restarted service
does not draw again what it drew before the restart.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

from sqlalchemy import select

from batch_service.jobs import ACTIVE_STATES, FINISHED_STATES, QUEUED, SUCCEEDED
from batch_service.store import Job, Store, Sweep
from batch_service.sweep_growth import NewPoint, SweepGrowth
from batch_service.sweep_points import Checker, point_hash
from batch_service.sweep_space import OptunaSpec, parse_optuna

log = logging.getLogger("batchhub.sweeps")
STUDY_PREFIX = "batchhub-sweep-"
# Optuna's tables in the service's database (not this service's models: migrations skip them).
OPTUNA_TABLES = frozenset(
    {
        "studies",
        "study_directions",
        "study_user_attributes",
        "study_system_attributes",
        "trials",
        "trial_user_attributes",
        "trial_system_attributes",
        "trial_params",
        "trial_values",
        "trial_intermediate_values",
        "trial_heartbeats",
        "version_info",
    }
)
DONE = "done"


class OptunaSchemaError(RuntimeError):
    """Optuna's tables were written by an optuna of another schema version."""


def trial_hash(number: int, parameters: dict[str, Any]) -> str:
    """A trial's point in its sweep: one job per trial, even when two trials draw alike."""
    return point_hash({"trial": number, "parameters": parameters})


def distributions(spec: OptunaSpec) -> dict[str, Any]:
    """Optuna's distributions of the search space."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, Any] = {}
    for name, bound in spec.bounds.items():
        if bound.choices is not None:
            out[name] = CategoricalDistribution(list(bound.choices))
        elif bound.whole:
            out[name] = IntDistribution(int(bound.low or 0), int(bound.high or 0), log=bound.log)
        else:
            out[name] = FloatDistribution(
                float(bound.low or 0), float(bound.high or 0), log=bound.log
            )
    return out


def objective_value(job: Job, objective: str) -> float | None:
    """What a run is told as: its recorded objective if it succeeded with a finite number."""
    value = (job.recorded or {}).get(objective)
    if job.state != SUCCEEDED or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


class OptunaTrials:
    """Asks and tells Optuna for the service's optimisation sweeps."""

    def __init__(self, store: Store, growth: SweepGrowth) -> None:
        self.store = store
        self.growth = growth
        self._storage: Any = None
        self._studies: dict[str, Any] = {}
        self._lock = threading.Lock()

    def storage(self) -> Any:
        """Optuna's storage on the service's database (its tables created on first use)."""
        with self._lock:
            if self._storage is None:
                import optuna

                optuna.logging.set_verbosity(optuna.logging.WARNING)
                url = self.store.engine.url.render_as_string(hide_password=False)
                kwargs: dict[str, Any] = {}
                if url.startswith("sqlite"):
                    kwargs = {"connect_args": {"timeout": 30}}
                else:
                    kwargs = {"pool_pre_ping": True}
                storage = optuna.storages.RDBStorage(
                    url, engine_kwargs=kwargs, skip_compatibility_check=True
                )
                self._check_schema(storage)
                self._storage = storage
            return self._storage

    @staticmethod
    def _check_schema(storage: Any) -> None:
        from optuna.storages._rdb import models

        with storage.engine.connect() as connection:
            found = connection.execute(
                select(models.VersionInfoModel.schema_version)
            ).scalar_one_or_none()
        if found is not None and found != models.SCHEMA_VERSION:
            raise OptunaSchemaError(
                f"Optuna's tables have schema version {found}; this optuna writes "
                f"{models.SCHEMA_VERSION}: upgrade them with optuna's own tools first"
            )

    def study(self, sweep: Sweep, spec: OptunaSpec) -> Any:
        """The sweep's study (created on its first pass), kept between passes."""
        study = self._studies.get(sweep.id)
        if study is not None:
            return study
        import optuna

        storage = self.storage()
        name = STUDY_PREFIX + sweep.id
        try:
            asked = len(storage.get_all_trials(storage.get_study_id_from_name(name), False))
        except KeyError:
            asked = 0
        # A sampler seeded anew after a restart must not draw the same trials again.
        sampler = optuna.samplers.TPESampler(
            seed=(spec.seed * 1_000_003 + asked) % 2**31,
            n_startup_trials=spec.startup_trials,
            multivariate=True,
            constant_liar=True,
        )
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            sampler=sampler,
            direction=spec.direction,
            load_if_exists=True,
        )
        self._studies[sweep.id] = study
        return study

    def forget(self, sweep_id: str) -> None:
        """Drop the kept study of a sweep that is over."""
        self._studies.pop(sweep_id, None)

    def advance(self, sweep_id: str) -> int:
        """Tell what ended, recover trials without a job, ask new ones; returns how many
        runs were queued."""
        from optuna.trial import TrialState

        with self.store.session() as session:
            sweep = session.get(Sweep, sweep_id)
            if sweep is None or sweep.kind != "optuna":
                return 0
            jobs = session.scalars(
                select(Job).where(Job.sweep_id == sweep_id, Job.trial.is_not(None))
            ).all()
        spec = parse_optuna(sweep.spec, Checker(None, sweep.input_name), 10**9)
        study = self.study(sweep, spec)
        trials = {t.number: t for t in study.get_trials(deepcopy=False)}
        told = []
        for job in jobs:
            if job.state not in FINISHED_STATES or job.followed_up:
                continue
            trial = trials.get(job.trial or 0)
            if trial is not None and trial.state == TrialState.RUNNING:
                value = objective_value(job, spec.objective)
                if value is None:
                    study.tell(trial.number, state=TrialState.FAIL)
                else:
                    study.tell(trial.number, value)
            told.append(job.id)
        with_job = {job.trial for job in jobs}
        active = sum(job.state in (QUEUED, *ACTIVE_STATES) for job in jobs)
        new = [
            NewPoint(trial_hash(t.number, t.params), dict(t.params), trial=t.number)
            for t in trials.values()
            if t.state == TrialState.RUNNING and t.number not in with_job
        ]
        if sweep.state == "cancelled":
            # A cancelled sweep runs no more trials: those handed out without a job are over.
            for point in new:
                study.tell(point.trial, state=TrialState.FAIL)
            new = []
        elif sweep.state == "active":
            room = sweep.max_parallel - active - len(new)
            left = spec.max_trials - len(trials)
            space = distributions(spec)
            for _ in range(max(0, min(room, left))):
                trial = study.ask(space)
                new.append(
                    NewPoint(trial_hash(trial.number, trial.params), trial.params, trial.number)
                )
        final = study.get_trials(deepcopy=False)
        info = self.info(final, jobs, spec)
        added = self.growth.add(sweep_id, new, told, info)
        running = [t for t in final if t.state == TrialState.RUNNING]
        if sweep.state == "active" and len(final) >= spec.max_trials and not running and not active:
            self._finish(sweep_id)
        elif sweep.state == "cancelled":
            self.forget(sweep_id)
        return added

    def info(self, trials: list[Any], jobs: Any, spec: OptunaSpec) -> dict[str, Any]:
        """Trials by state and the best so far (its parameters, value and job)."""
        from optuna.trial import TrialState

        by_state = {"complete": 0, "failed": 0, "running": 0}
        best: dict[str, Any] | None = None
        job_of = {job.trial: job.id for job in jobs}
        sign = 1 if spec.direction == "minimize" else -1
        for trial in trials:
            if trial.state == TrialState.COMPLETE:
                by_state["complete"] += 1
                value = trial.value
                if best is None or sign * value < sign * best["value"]:
                    best = {
                        "trial": trial.number,
                        "value": value,
                        "parameters": dict(trial.params),
                        "job_id": job_of.get(trial.number),
                    }
            elif trial.state == TrialState.RUNNING:
                by_state["running"] += 1
            else:
                by_state["failed"] += 1
        return {
            "objective": spec.objective,
            "direction": spec.direction,
            "trials": len(trials),
            "max_trials": spec.max_trials,
            "trial_states": by_state,
            "best": best,
        }

    def _finish(self, sweep_id: str) -> None:
        with self.store.session() as session:
            sweep = session.get(Sweep, sweep_id, with_for_update=True)
            if sweep is not None and sweep.state == "active":
                sweep.state = DONE
        self.forget(sweep_id)
        log.info("optimisation sweep %s is done", sweep_id)
