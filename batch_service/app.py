"""BatchServiceApp: the hub-managed batch service (API, pages, store, scheduler loop).

The hub starts it as `python -m batch_service --config=<json>`; the JSON file, written by
hub_config/jupyterhub_config.py from the values file, sets the traits below. The hub-managed
service environment (JUPYTERHUB_API_URL, JUPYTERHUB_API_TOKEN, JUPYTERHUB_SERVICE_URL,
JUPYTERHUB_SERVICE_PREFIX) says where the hub is and where to listen.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tornado import web
from tornado.httpserver import HTTPServer
from tornado.ioloop import PeriodicCallback
from traitlets import Bool, Dict, Float, Integer, List, Unicode, default
from traitlets.config import Application, Config

from batch_service.admission import Admission
from batch_service.api import api_routes
from batch_service.artifacts import ArtifactService
from batch_service.checks import CheckPool
from batch_service.datasets import DatasetService
from batch_service.definitions import DefinitionService
from batch_service.events import Events
from batch_service.fair_share import FairSharePolicy
from batch_service.files import FileStore
from batch_service.firing import FiringLoop
from batch_service.gpu_view import GpuView
from batch_service.group_commit import GroupCommit, new_job_views
from batch_service.housekeeping import Housekeeping
from batch_service.hub_client import HubClient, ServerLookup
from batch_service.jobs import JobService, StopRequest
from batch_service.metrics import Metrics, metrics_routes
from batch_service.notify import Notifier
from batch_service.pages import page_routes, render, template_environment
from batch_service.quotas import QuotaLimits, QuotaService
from batch_service.runs import RunReports
from batch_service.scheduler import Capacity, Scheduler
from batch_service.scheduler_loop import SchedulerLoop
from batch_service.store import Store
from batch_service.sweep_followups import FollowUps
from batch_service.sweeps import SweepService
from batch_service.turns import TurnService
from batch_service.tus_uploads import UploadService
from batch_service.warm import WarmServers
from spawner.credentials import load_or_create_key
from spawner.gpus import nvml_readings
from spawner.profiles import load_profiles

log = logging.getLogger("batchhub")


class BatchServiceApp(Application):
    """The batch service."""

    name = "batchhub-batch"
    classes = [FairSharePolicy, Notifier]
    description = "batchhub's batch service: queue notebooks, run them, hand over live kernels."

    config_file = Unicode(
        "", help="JSON file with the service's settings (written by the hub config)."
    ).tag(config=True)
    aliases = {"config": "BatchServiceApp.config_file", "log-level": "Application.log_level"}

    state_dir = Unicode(
        "state/batch", help="Folder for the service's own state (the SQLite database by default)."
    ).tag(config=True)
    db_url = Unicode(
        "",
        help="""SQLAlchemy URL of the job store. Empty: SQLite (WAL) at <state_dir>/jobs.sqlite.
        PostgreSQL: postgresql://user:password@host/db.""",
    ).tag(config=True)
    files_dir = Unicode(
        "",
        help="""The file store: inputs, executed notebooks, artifacts, uploads and datasets.
        Empty: <state_dir>/files. On Kubernetes, the mount of a ReadWriteMany volume.""",
    ).tag(config=True)
    upload_expiry_seconds = Float(
        86400.0,
        help="""Seconds an unfinished resumable upload is kept after its last bytes arrived;
        then it is removed and its bytes count against no quota.""",
    ).tag(config=True)
    user_quota = Integer(
        100 * 2**30, help="Bytes of datasets (and unfinished uploads) each user may hold."
    ).tag(config=True)
    group_quota = Integer(
        1024 * 2**30, help="Bytes of datasets shared with a hub group that the group may hold."
    ).tag(config=True)
    user_quotas = Dict(help="Quota in bytes of particular users (over user_quota).").tag(
        config=True
    )
    group_quotas = Dict(help="Quota in bytes of particular groups (over group_quota).").tag(
        config=True
    )
    dataset_max_files = Integer(100_000, help="Most files one dataset may hold.").tag(config=True)
    dataset_group_prefix = Unicode(
        "bhd-",
        help="""Prefix of the system group created for each dataset read by its owner or a
        hub group (as root): its files are readable by that group only.""",
    ).tag(config=True)
    profiles = List(
        Dict(), help="Server profiles (as spawner.profiles.Profile.to_dict) jobs may use."
    ).tag(config=True)
    max_upload_bytes = Integer(
        100 * 2**20, help="Largest upload accepted, in bytes; bigger ones get 413 unread."
    ).tag(config=True)
    zip_max_members = Integer(10000, help="Most members a zipped module may have.").tag(config=True)
    zip_max_uncompressed_bytes = Integer(
        1024 * 2**20, help="Most bytes a zipped module may unpack to (zip bombs are refused)."
    ).tag(config=True)
    max_concurrent_jobs = Integer(
        8,
        help="""Most batch runs (starting or running) at once. Live kernels after runs are
        counted apart (max_live_kernels): they never keep a run from starting.""",
    ).tag(config=True)
    max_live_kernels = Integer(
        16,
        help="""Most live kernels kept after runs at once. Beyond it, those whose windows end
        soonest end after the policy's grace period, and their owners are told why.""",
    ).tag(config=True)
    scheduler_interval = Float(
        5.0, help="Seconds between scheduler passes (submits and run ends also start one)."
    ).tag(config=True)
    start_timeout = Float(
        300.0, help="Seconds a batch server may take to start before its job fails."
    ).tag(config=True)
    warm_idle_seconds = Float(
        60.0,
        help="""Seconds a batch server whose run ended (and whose kernel is not kept) waits for
        its owner's next run of the same profile, which then starts there in a fresh kernel
        instead of in a new server. 0: every run starts a server of its own.""",
    ).tag(config=True)
    warm_poll_seconds = Float(
        20.0, help="Longest wait of one ask of a warm server's runner for its next run."
    ).tag(config=True)
    definitions_interval = Float(
        10.0,
        help="""Seconds between looks for job definitions whose time has come (cron moments
        are whole minutes; a firing is at most this late).""",
    ).tag(config=True)
    housekeeping_interval = Float(
        600.0, help="Seconds between removals of stopped batch servers the hub still lists."
    ).tag(config=True)
    paused = Bool(
        False, help="Start with the queue paused (admins resume it on the Batch page)."
    ).tag(config=True)
    sweep_max_points = Integer(
        10_000,
        help="""Most points one parameter sweep may have: a grid whose product of values, a
        table with more rows, or more random samples is refused (400) before any point is
        made.""",
    ).tag(config=True)
    capacity = Dict(help="GPUs by type that batch jobs may use, e.g. {'a100': 4}.").tag(config=True)
    gpu_inventory = List(
        Dict(),
        help="""The machine's GPUs for the GPU view: [{"uuid", "type", "index"}] (written by
        the hub config from the same inventory its spawner uses; empty on Kubernetes, where
        the view counts GPUs by type).""",
    ).tag(config=True)
    signing_key_file = Unicode(
        "",
        help="""File with the key only the hub and this service hold (the hub config creates
        it): batch servers start only with tickets signed with it, and their runners report
        with keys derived from it. Empty: no batch server can start.""",
    ).tag(config=True)
    exit_with_hub = Bool(
        True,
        help="""Stop when the hub that started this service is gone (its parent process), so a
        hub that crashed and restarts finds the service's port free and starts a fresh one.""",
    ).tag(config=True)
    check_workers = Integer(
        2,
        help="""Worker processes that check uploads and render notebooks, so a big file never
        stalls the service's event loop.""",
    ).tag(config=True)
    service_url_for_servers = Unicode(
        "", help="URL of this service as batch servers reach it (ends with the service prefix)."
    ).tag(config=True)
    isolation_note = Unicode(
        "", help="A note shown on the Batch page when servers are not isolated per user."
    ).tag(config=True)
    nav_services = List(
        Unicode(),
        help="""Names of the services the hub's nav bar lists: the Batch pages show the same
        nav bar as the hub's own pages (written by the hub config).""",
    ).tag(config=True)
    native_auth = Bool(
        False,
        help="The hub logs people in with NativeAuthenticator: show its Change Password and "
        "Authorize Users links in the nav bar, as the hub's pages do.",
    ).tag(config=True)
    ip = Unicode(help="Address to listen on (default: from JUPYTERHUB_SERVICE_URL).").tag(
        config=True
    )
    port = Integer(help="Port to listen on (default: from JUPYTERHUB_SERVICE_URL).").tag(
        config=True
    )
    service_prefix = Unicode(help="URL prefix of the service (JUPYTERHUB_SERVICE_PREFIX).").tag(
        config=True
    )
    hub_api_url = Unicode(help="The hub's REST API (JUPYTERHUB_API_URL).").tag(config=True)
    hub_base_url = Unicode(help="The hub's public base URL (JUPYTERHUB_BASE_URL).").tag(config=True)

    @default("ip")
    def _default_ip(self) -> str:
        return (
            urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101")).hostname
            or "127.0.0.1"
        )

    @default("port")
    def _default_port(self) -> int:
        return (
            urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101")).port
            or 10101
        )

    @default("service_prefix")
    def _default_prefix(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/batch/")

    @default("hub_api_url")
    def _default_hub_api(self) -> str:
        return os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")

    @default("hub_base_url")
    def _default_hub_base(self) -> str:
        return os.environ.get("JUPYTERHUB_BASE_URL", "/")

    def initialize(self, argv: list[str] | None = None) -> None:
        """Parse the command line, load the JSON settings, open and migrate the store."""
        super().initialize(argv)
        if self.config_file:
            settings = json.loads(Path(self.config_file).read_text())
            self.update_config(Config(settings))
        logging.basicConfig(format="[%(levelname).1s %(asctime)s %(name)s] %(message)s")
        log.setLevel(self.log_level)
        url = self.db_url or f"sqlite:///{Path(self.state_dir).resolve() / 'jobs.sqlite'}"
        Path(self.state_dir).mkdir(parents=True, exist_ok=True)
        self.files = FileStore(self.files_dir or Path(self.state_dir) / "files").prepare()
        self.files.clean_staging()
        self.store = Store(url, self.files.root)
        self.store.migrate()
        self.job_service = JobService(
            self.store,
            load_profiles(self.profiles),
            hub_base_url=self.hub_base_url,
            files=self.files,
        )
        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        self.artifacts = ArtifactService(self.store, self.files, self.job_service.profiles)
        limits = QuotaLimits(
            self.user_quota,
            self.group_quota,
            {str(k): int(v) for k, v in self.user_quotas.items()},
            {str(k): int(v) for k, v in self.group_quotas.items()},
        )
        self.quotas = QuotaService(self.store, limits)
        self.datasets = DatasetService(
            self.store,
            self.files,
            self.quotas,
            max_files=self.dataset_max_files,
            group_prefix=self.dataset_group_prefix,
        )
        self.datasets.write_index()
        self.uploads = UploadService(
            self.store, self.files, self.quotas, self.datasets, self.upload_expiry_seconds
        )
        self.hub = HubClient(self.hub_api_url, token)
        self.signing_key = (
            load_or_create_key(self.signing_key_file) if self.signing_key_file else None
        )
        if self.signing_key is None:
            log.warning("no signing_key_file: batch servers cannot start")
        self.server_lookup = ServerLookup(self.hub)
        self.sweeps = SweepService(self.job_service, self.sweep_max_points)
        self.warm = WarmServers(self.warm_idle_seconds, self.warm_poll_seconds)
        self.runs = RunReports(
            self.store,
            self.job_service.profiles,
            self.signing_key,
            self.server_lookup,
            self.job_service.job_files,
            self.warm,
        )
        self.turn_service = TurnService(
            self.store, self.job_service.profiles, self.signing_key, self.server_lookup
        )
        gpu_capacity = {str(k): int(v) for k, v in self.capacity.items()}
        # A GPU job no GPU here can ever run is refused at submission, as the spawn page does.
        self.job_service.gpu_capacity = gpu_capacity
        self.job_service.paused_default = bool(self.paused)
        self.admission = Admission(
            self.store,
            self.turn_service,
            self.job_service.profiles,
            gpu_capacity,
            FairSharePolicy(parent=self).to_policy(),
        )
        admission = self.admission
        self.job_service.fair_groups = lambda: admission.config().named_groups
        self.scheduler = Scheduler(
            self.job_service,
            self.turn_service,
            self.hub,
            self.admission,
            Capacity(self.max_concurrent_jobs, gpu_capacity, self.max_live_kernels),
            start_timeout=self.start_timeout,
            paused_default=self.paused,
            signing_key=self.signing_key,
            warm=self.warm,
        )
        self.loop = SchedulerLoop(self.scheduler, self.scheduler_interval)
        self.runs.on_warm = self.loop.kick
        # Submissions stored many per transaction in a thread; one pass asked for per group.
        self.group_commit = GroupCommit(
            self.store,
            self.job_service.job_files,
            new_job_views(self.job_service),
            on_stored=self.loop.kick_newcomers,
        )
        self.definitions = DefinitionService(self.store, self.job_service, self.files)
        self.firing = FiringLoop(
            self.definitions,
            self.check_stored_input,
            self.definitions_interval,
            self.loop.kick_newcomers,
        )
        self.gpu_view = GpuView(
            self.store,
            self.gpu_inventory,
            gpu_capacity,
            self.job_service.profiles,
            nvml_readings,
            self.warm,
        )
        self.checks = CheckPool(self.check_workers)
        # Starts and ends of runs, and GPU turns, told to those who asked (e-mail, webhook).
        self.notifier = Notifier(self.store, parent=self)
        self.events = Events(self.store)
        self.events.listeners.append(self.notifier)
        # Adaptive sweeps act on each run's end (tell Optuna, queue proposed points).
        # A sweep's follow-up points come right after a point ended: the room it freed is
        # theirs to take, so their kick is one that may free room (not a newcomers' kick).
        self.followups = FollowUps(self.job_service, kick=lambda: self.loop.kick())
        self.events.listeners.append(self.followups.on_moment)
        self.job_service.events = self.turn_service.events = self.runs.events = self.events
        # Prometheus: the queue read at each scrape, events counted, each decision timed.
        self.metrics = Metrics(
            self.store,
            self.job_service.profiles,
            gpu_capacity,
            lambda: self.job_service.paused(bool(self.paused)),
        )
        self.events.listeners.append(self.metrics)
        self.admission.decide = self.metrics.timed(self.admission.decide)  # type: ignore[method-assign]

    def make_app(self) -> web.Application:
        """The tornado application: pages, API and the OAuth callback."""
        prefix = self.service_prefix
        routes: list[Any] = [(pattern, handler) for pattern, handler in api_routes(prefix)]
        routes += metrics_routes(prefix)
        for pattern, handler, kwargs in page_routes(prefix):
            routes.append((pattern, handler, kwargs) if kwargs else (pattern, handler))
        cookie_secret = os.urandom(32)
        return web.Application(
            routes,
            cookie_secret=cookie_secret,
            xsrf_cookies=True,
            batch_app=self,
            batch_jobs=self.job_service,
            batch_runs=self.runs,
            batch_sweeps=self.sweeps,
            batch_followups=self.followups,
            batch_turns=self.turn_service,
            batch_checks=self.checks,
            batch_group_commit=self.group_commit,
            batch_definitions=self.definitions,
            batch_artifacts=self.artifacts,
            batch_datasets=self.datasets,
            batch_quotas=self.quotas,
            batch_uploads=self.uploads,
            batch_notifier=self.notifier,
            batch_metrics=self.metrics,
            batch_prefix=prefix,
            batch_render=render,
            batch_templates=template_environment(),
            batch_max_upload_bytes=self.max_upload_bytes,
            batch_zip_max_members=self.zip_max_members,
            batch_zip_max_bytes=self.zip_max_uncompressed_bytes,
            batch_kick=self.loop.kick,
            # The real limit is per upload (streamed handlers raise it); this bounds the rest.
            max_body_size=max(self.max_upload_bytes * 4, 64 * 2**20),
        )

    async def check_stored_input(self, name: str, content: bytes, entry: str | None) -> Any:
        """A definition's input checked again at its firing, as an upload is (off the loop)."""
        return await self.checks.check_upload(
            name, content, entry, self.zip_max_members, self.zip_max_uncompressed_bytes
        )

    async def stop_server_soon(self, stop: StopRequest) -> None:
        """A job no longer needs its server: the next pass (right away) stops it, once the hub
        is not still starting it (stopping a pending spawn races the hub's own start)."""
        log.info("job %s of %s no longer needs its server", stop.job_id, stop.owner)
        self.loop.kick()

    def sweep_uploads(self) -> None:
        """Remove expired unfinished uploads (their bytes go back to the quotas)."""
        try:
            removed = self.uploads.expire()
        except Exception:  # the sweep must never stop the service
            log.exception("sweeping expired uploads failed; trying again later")
            return
        if removed:
            log.info("removed %d expired unfinished uploads", removed)

    async def serve(self) -> None:
        """Listen, run the scheduler loop, and stop cleanly on SIGTERM or SIGINT."""
        app = self.make_app()
        # Big reads: uploads of gigabytes cost fewer trips through Python.
        server = HTTPServer(
            app, max_body_size=app.settings["max_body_size"], xheaders=True, chunk_size=1 << 20
        )
        server.listen(self.port, self.ip)
        log.info("batch service on http://%s:%s%s", self.ip, self.port, self.service_prefix)
        self.checks.warm_up()
        self.events.start()
        self.loop.start()
        self.firing.start()
        self.followups.start()
        sweep = PeriodicCallback(
            self.sweep_uploads, 1000 * min(300.0, max(self.upload_expiry_seconds / 4, 1.0))
        )
        sweep.start()
        housekeeping = Housekeeping(self.hub, self.housekeeping_interval)
        housekeeping.start()
        # What start-up made (modules, the app, its settings) lives as long as the service. Out
        # of the collector's sight, a full collection scans only what came since: under a
        # stream of submissions its pause fell from ~150 ms to ~14 ms, every request waiting.
        gc.collect()
        gc.freeze()
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, done.set)
        watch = None
        if self.exit_with_hub and os.environ.get("JUPYTERHUB_SERVICE_NAME"):
            hub_pid = os.getppid()

            def hub_gone() -> None:
                if os.getppid() != hub_pid:
                    log.warning("the hub that started this service is gone: stopping")
                    done.set()

            watch = PeriodicCallback(hub_gone, 1000)
            watch.start()
        await done.wait()
        if watch is not None:
            watch.stop()
        self.loop.stop()
        self.firing.stop()
        sweep.stop()
        housekeeping.stop()
        server.stop()
        self.group_commit.close()
        self.checks.shutdown()
        await self.followups.stop()
        await self.events.stop()
        self.store.dispose()

    def start(self) -> None:
        """Run until told to stop."""
        asyncio.run(self.serve())


def main(argv: list[str] | None = None) -> None:
    """Entry point of `python -m batch_service`."""
    app = BatchServiceApp()
    app.initialize(argv)
    app.start()
