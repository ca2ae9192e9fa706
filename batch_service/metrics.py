"""Prometheus metrics of the batch service, at <service prefix>metrics.

What the queue holds is read from the store when Prometheus scrapes (queue length and the
oldest wait by profile, GPUs held by type and by what holds them, jobs by state); what happens
is counted as it happens (waits of started runs, runs by outcome, turns admitted, how long each
admission decision took). Readable by batch admins and by a token with custom:batch:metrics
(the hub service `batch-metrics` the values file can set up for Prometheus).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, or_, select
from tornado.ioloop import IOLoop

from batch_service.clock import now
from batch_service.errors import BatchError
from batch_service.events import JOB_ENDED, JOB_STARTED, TURN_ADMITTED, Moment
from batch_service.handlers import BaseHandler
from batch_service.jobs import ACTIVE_STATES, FINISHED_STATES, QUEUED, STATES
from batch_service.store import Job, Store, Turn
from batch_service.turns import ADMITTED, WAITING
from spawner.profiles import Profile

METRICS_SCOPE = "custom:batch:metrics"
# Waits from minutes to a day or more: the buckets people ask about.
WAIT_BUCKETS = (10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400, float("inf"))
DECISION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, float("inf"))


class QueueCollector:
    """Reads the queue and the GPU holdings from the store at each scrape."""

    def __init__(
        self,
        store: Store,
        profiles: Mapping[str, Profile],
        capacity: Mapping[str, int],
        paused: Callable[[], bool],
    ) -> None:
        self.store = store
        self.profiles = profiles
        self.capacity = dict(capacity)
        self.paused = paused

    def _gpus(self, profile_name: str) -> tuple[int, str]:
        profile = self.profiles.get(profile_name)
        if profile is None or not profile.gpus:
            return 0, ""
        return profile.gpus, profile.gpu_type or "any"

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The gauges, from a handful of aggregate queries."""
        t = now()
        with self.store.session() as session:
            queued = session.execute(
                select(Job.profile, func.count(), func.min(Job.submitted_at))
                .where(Job.state == QUEUED)
                .group_by(Job.profile)
            ).all()
            by_state = dict(
                session.execute(select(Job.state, func.count()).group_by(Job.state)).all()
            )
            holding = session.execute(
                select(Job.profile, Job.state, Job.live, func.count())
                .where(or_(Job.state.in_(ACTIVE_STATES), Job.live.is_(True)))
                .group_by(Job.profile, Job.state, Job.live)
            ).all()
            turns = session.execute(
                select(Turn.profile, Turn.state, func.count(), func.min(Turn.submitted_at))
                .where(Turn.state.in_([WAITING, ADMITTED]))
                .group_by(Turn.profile, Turn.state)
            ).all()
        length = GaugeMetricFamily(
            "batchhub_queue_length", "Queued batch jobs, by profile.", labels=["profile"]
        )
        oldest = GaugeMetricFamily(
            "batchhub_queue_oldest_wait_seconds",
            "How long the longest-waiting queued job (or GPU server in line) has waited.",
            labels=["profile", "kind"],
        )
        for profile, count, first in queued:
            length.add_metric([profile], count)
            oldest.add_metric([profile, "batch"], max(t - first, 0.0))
        line = GaugeMetricFamily(
            "batchhub_gpu_line_waiting",
            "Interactive GPU servers waiting in the GPU line, by profile.",
            labels=["profile"],
        )
        held: dict[tuple[str, str], int] = defaultdict(int)
        for profile, state, count, first in turns:
            gpus, kind = self._gpus(profile)
            if state == WAITING:
                line.add_metric([profile], count)
                oldest.add_metric([profile, "interactive"], max(t - first, 0.0))
            elif gpus:
                held[(kind, "interactive_server")] += gpus * count
        for profile, state, live, count in holding:
            gpus, kind = self._gpus(profile)
            if gpus:
                holder = "live_kernel" if state in FINISHED_STATES and live else "run"
                held[(kind, holder)] += gpus * count
        gpus_held = GaugeMetricFamily(
            "batchhub_gpus_held",
            "GPUs held, by GPU type and by what holds them "
            "(run, live_kernel after a run, interactive_server).",
            labels=["gpu_type", "holder"],
        )
        for kind in sorted({k for k, _ in held} | set(self.capacity)):
            for holder in ("run", "live_kernel", "interactive_server"):
                gpus_held.add_metric([kind, holder], held.get((kind, holder), 0))
        total = GaugeMetricFamily(
            "batchhub_gpus", "GPUs the line hands out, by type.", labels=["gpu_type"]
        )
        for kind, count in sorted(self.capacity.items()):
            total.add_metric([kind], count)
        jobs = GaugeMetricFamily("batchhub_jobs", "Jobs in the store, by state.", labels=["state"])
        for state in STATES:
            jobs.add_metric([state], by_state.get(state, 0))
        paused = self.paused()
        yield from (length, oldest, line, gpus_held, total, jobs)
        yield GaugeMetricFamily(
            "batchhub_queue_paused", "1 while an admin has paused the queue.", value=int(paused)
        )


class Metrics:
    """The service's registry: the store's gauges, counters fed by events, decision times."""

    def __init__(
        self,
        store: Store,
        profiles: Mapping[str, Profile],
        capacity: Mapping[str, int],
        paused: Callable[[], bool],
    ) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.registry.register(QueueCollector(store, profiles, capacity, paused))
        self.waits = Histogram(
            "batchhub_queue_wait_seconds",
            "From submission to the start of the run, by profile.",
            ["profile"],
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.runs = Counter(
            "batchhub_runs",
            "Runs that ended, by profile and outcome.",
            ["profile", "outcome"],
            registry=self.registry,
        )
        self.turns = Counter(
            "batchhub_gpu_turns_admitted",
            "Interactive GPU servers admitted by the line, by profile.",
            ["profile"],
            registry=self.registry,
        )
        self.decisions = Histogram(
            "batchhub_admission_decision_seconds",
            "Time one admission decision took (reading the line, the policy, usage).",
            buckets=DECISION_BUCKETS,
            registry=self.registry,
        )

    async def __call__(self, moment: Moment) -> None:
        """The events listener."""
        s = moment.subject
        if moment.kind == JOB_STARTED:
            # The service's own clock: when it heard of the start.
            self.waits.labels(s["profile"]).observe(max(now() - s["submitted_at"], 0.0))
        elif moment.kind == JOB_ENDED:
            self.runs.labels(s["profile"], s["state"]).inc()
        elif moment.kind == TURN_ADMITTED:
            self.turns.labels(s["profile"]).inc()

    def timed(self, decide: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap the admission decision so each call's duration is recorded."""

        def timed_decide(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return decide(*args, **kwargs)
            finally:
                self.decisions.observe(time.perf_counter() - started)

        return timed_decide

    def exposition(self) -> bytes:
        """The text format Prometheus reads."""
        return generate_latest(self.registry)


class MetricsHandler(BaseHandler):
    """GET the metrics: batch admins (logged in) and tokens with custom:batch:metrics."""

    # A metrics token may hold no batch scope: the check is this handler's own.
    allow_all = True

    async def get(self) -> None:
        """Collect off the event loop (the gauges read the store)."""
        identity = self.identity
        if not (identity.is_admin or METRICS_SCOPE in identity.scopes):
            raise BatchError(
                "the metrics are for batch admins and tokens with custom:batch:metrics",
                status=403,
            )
        metrics: Metrics = self.settings["batch_metrics"]
        body = await IOLoop.current().run_in_executor(None, metrics.exposition)
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(body)


def metrics_routes(prefix: str) -> list[tuple[str, Any]]:
    """The metrics endpoint, beside the API."""
    return [(prefix + "metrics", MetricsHandler)]
