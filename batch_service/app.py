"""BatchServiceApp: the hub-managed batch service (API, pages, store, scheduler loop).

The hub starts it as `python -m batch_service --config=<json>`; the JSON file, written by
hub_config/jupyterhub_config.py from the values file, sets the traits below. The hub-managed
service environment (JUPYTERHUB_API_URL, JUPYTERHUB_API_TOKEN, JUPYTERHUB_SERVICE_URL,
JUPYTERHUB_SERVICE_PREFIX) says where the hub is and where to listen.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tornado import web
from tornado.httpserver import HTTPServer
from traitlets import Bool, Dict, Float, Integer, List, Unicode, default
from traitlets.config import Application, Config

from batch_service.admission import Admission
from batch_service.api import api_routes
from batch_service.events import Events
from batch_service.fair_share import FairSharePolicy
from batch_service.housekeeping import Housekeeping
from batch_service.hub_client import HubClient, HubError, HubUnreachable
from batch_service.jobs import JobService, StopRequest, server_name
from batch_service.metrics import Metrics, metrics_routes
from batch_service.notify import Notifier
from batch_service.pages import page_routes, render, template_environment
from batch_service.scheduler import Capacity, Scheduler, SchedulerLoop
from batch_service.store import Store
from batch_service.turns import TurnService
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
        8, help="Most batch servers (starting, running or holding a live kernel) at once."
    ).tag(config=True)
    scheduler_interval = Float(
        5.0, help="Seconds between scheduler passes (submits and run ends also start one)."
    ).tag(config=True)
    start_timeout = Float(
        300.0, help="Seconds a batch server may take to start before its job fails."
    ).tag(config=True)
    housekeeping_interval = Float(
        600.0, help="Seconds between removals of stopped batch servers the hub still lists."
    ).tag(config=True)
    paused = Bool(
        False, help="Start with the queue paused (admins resume it on the Batch page)."
    ).tag(config=True)
    capacity = Dict(help="GPUs by type that batch jobs may use, e.g. {'a100': 4}.").tag(config=True)
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
        self.store = Store(url)
        self.store.migrate()
        self.job_service = JobService(
            self.store, load_profiles(self.profiles), hub_base_url=self.hub_base_url
        )
        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        self.hub = HubClient(self.hub_api_url, token)
        self.turn_service = TurnService(self.store, self.job_service.profiles)
        gpu_capacity = {str(k): int(v) for k, v in self.capacity.items()}
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
            Capacity(self.max_concurrent_jobs, gpu_capacity),
            start_timeout=self.start_timeout,
            paused_default=self.paused,
        )
        self.loop = SchedulerLoop(self.scheduler, self.scheduler_interval)
        # Starts and ends of runs, and GPU turns, told to those who asked (e-mail, webhook).
        self.notifier = Notifier(self.store, parent=self)
        self.events = Events(self.store)
        self.events.listeners.append(self.notifier)
        self.job_service.events = self.turn_service.events = self.events
        # Prometheus: the queue read at each scrape, events counted, each decision timed.
        self.metrics = Metrics(
            self.store, self.job_service.profiles, gpu_capacity, lambda: bool(self.paused)
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
            batch_turns=self.turn_service,
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

    async def stop_server_soon(self, stop: StopRequest) -> None:
        """Stop a job's server now; if the hub is away, the next pass tries again."""
        try:
            await self.hub.stop_server(stop.owner, server_name(stop.job_id))
        except (HubError, HubUnreachable) as e:
            log.warning("stopping %s later: %s", stop.job_id, e)
        self.loop.kick()

    async def serve(self) -> None:
        """Listen, run the scheduler loop, and stop cleanly on SIGTERM or SIGINT."""
        app = self.make_app()
        server = HTTPServer(app, max_body_size=app.settings["max_body_size"], xheaders=True)
        server.listen(self.port, self.ip)
        log.info("batch service on http://%s:%s%s", self.ip, self.port, self.service_prefix)
        self.events.start()
        self.loop.start()
        housekeeping = Housekeeping(self.hub, self.housekeeping_interval)
        housekeeping.start()
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, done.set)
        await done.wait()
        self.loop.stop()
        housekeeping.stop()
        server.stop()
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
