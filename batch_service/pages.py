"""The Batch pages: job list with the submit form, and one job's live progress.

Templates extend the hub's page.html (through hub_config/templates, which adds the Batch link to
the nav bar), so the pages look like the hub's. The pages are thin: the browser script reads and
changes everything through the same API the CLI uses, with the hub's XSRF token.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import jinja2
from jupyterhub._data import DATA_FILES_PATH
from jupyterhub.services.auth import HubOAuthCallbackHandler
from tornado import web

from batch_service.handlers import BaseHandler
from batch_service.hub_client import HubError, HubUnreachable
from batch_service.identity import Identity
from batch_service.jobs import FINISHED_STATES
from batch_service.schedules import time_zones

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def template_environment() -> jinja2.Environment:
    """Our templates, then batchhub's hub templates, then the hub's own (as templates/...)."""
    hub_templates = Path(DATA_FILES_PATH) / "templates"
    loader = jinja2.ChoiceLoader(
        [
            jinja2.FileSystemLoader(
                [str(HERE / "templates"), str(ROOT / "hub_config" / "templates")]
            ),
            jinja2.PrefixLoader({"templates": jinja2.FileSystemLoader(str(hub_templates))}),
            jinja2.FileSystemLoader(str(hub_templates)),
        ]
    )
    return jinja2.Environment(loader=loader, autoescape=True)


class NavService:
    """A service in the hub's nav bar (what the hub's page.html reads: name and href)."""

    def __init__(self, name: str, href: str) -> None:
        self.name = name
        self.href = href


class PageUser:
    """What the hub's page.html reads about the logged-in user."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.json_escaped_name = json.dumps(name)[1:-1]
        self.spawner = None


def render(handler: BaseHandler, name: str, **context: Any) -> str:
    """Render a page with what the hub's page.html expects."""
    env: jinja2.Environment = handler.settings["batch_templates"]
    model = handler.current_user or {}
    hub_prefix = handler.hub_auth.hub_prefix
    scopes = set(model.get("scopes") or ())
    base = {
        "base_url": hub_prefix,
        "prefix": os.environ.get("JUPYTERHUB_BASE_URL", "/"),
        "static_url": lambda path, include_version=True: f"{hub_prefix}static/{path}",
        "user": PageUser(model["name"]) if model else None,
        "parsed_scopes": scopes,
        "services": [
            NavService(name, f"{handler.app.hub_base_url}services/{name}/")
            for name in handler.app.nav_services
        ],
        "batchhub_native_auth": handler.app.native_auth,
        "logo_url": "",
        "login_url": handler.hub_auth.login_url,
        "logout_url": f"{hub_prefix}logout",
        "xsrf_token": handler.xsrf_token.decode() if model else "",
        "admin_access": False,
        "no_spawner_check": True,
        "version_hash": "",
        "service_prefix": handler.settings["batch_prefix"],
    }
    base.update(context)
    return env.get_template(name).render(**base)


class PageHandler(BaseHandler):
    """Pages answer errors as HTML and send visitors through the hub's login."""

    json_errors = False

    def page_config(self, identity: Identity, **extra: Any) -> str:
        """Settings the page's script needs, as JSON for a data attribute."""
        config = {
            "prefix": self.settings["batch_prefix"],
            "api": self.settings["batch_prefix"] + "api/v1/",
            "user": identity.name,
            "admin": identity.is_admin,
            "read_all": identity.can_read_all,
            "profiles": [p.to_dict() for p in self.jobs.profiles_for(identity)],
            "max_upload_bytes": self.settings["batch_max_upload_bytes"],
            **extra,
        }
        return json.dumps(config)


class BatchPage(PageHandler):
    """The job list, the submit form and (for admins) the queue controls."""

    @web.authenticated
    def get(self) -> None:
        """Render the page; the script fills in the jobs."""
        identity = self.identity
        self.finish(
            self.render_page(
                "batch.html",
                identity=identity,
                config=self.page_config(identity),
                profiles=self.jobs.profiles_for(identity),
                fair_groups=self.jobs.groups_for(identity),
                isolation_note=self.app.isolation_note,
                # The zones a schedule may name (the service checks against the same list).
                time_zones=sorted(time_zones()),
            )
        )


class JobPage(PageHandler):
    """One job: progress per cell, output lines as they come, the live kernel."""

    @web.authenticated
    def get(self, job_id: str) -> None:
        """Render the job page (404 for other people's jobs)."""
        identity = self.identity
        job = self.jobs.get(identity, job_id)
        self.finish(
            self.render_page(
                "job.html",
                job=job,
                args_shown=shlex.join(job.get("args") or []),
                config=self.page_config(identity, job_id=job["id"]),
            )
        )


class SweepPage(PageHandler):
    """One sweep: its state and counts, the results table (sortable, filterable) and a plot."""

    @web.authenticated
    def get(self, sweep_id: str) -> None:
        """Render the sweep page (404 for other people's sweeps); the script reads the rows."""
        identity = self.identity
        sweep = self.settings["batch_sweeps"].get(identity, sweep_id)
        self.finish(
            self.render_page(
                "sweep.html", sweep=sweep, config=self.page_config(identity, sweep_id=sweep["id"])
            )
        )


class DataPage(PageHandler):
    """Datasets: upload (resumable), list, delete; quotas; admins set quotas."""

    @web.authenticated
    def get(self) -> None:
        """Render the page; the script fills in the datasets."""
        identity = self.identity
        self.finish(
            self.render_page(
                "data.html",
                identity=identity,
                groups=sorted(identity.groups),
                config=self.page_config(identity, groups=sorted(identity.groups)),
            )
        )


class GpusPage(PageHandler):
    """Who holds the GPUs (names for batch readers and admins); admins can end a holder."""

    @web.authenticated
    def get(self) -> None:
        """Render the page; the script fills in the GPUs."""
        identity = self.identity
        self.finish(
            self.render_page("gpus.html", identity=identity, config=self.page_config(identity))
        )


def node_modules() -> Path:
    """Where npm installed the page libraries (the work tree, or the hub image's copy)."""
    for candidate in (
        os.environ.get("BATCHHUB_NODE_MODULES", ""),
        str(ROOT / "node_modules"),
        "/usr/local/share/batchhub/node_modules",
    ):
        if candidate and Path(candidate, "tus-js-client").is_dir():
            return Path(candidate)
    return ROOT / "node_modules"


class LiveKernelPage(PageHandler):
    """The link behind "Open live kernel": JupyterLab if the kernel still lives, else why not.

    A batch server that is gone has been removed from the hub, which would then take its URL
    for the user's default server; this page checks first and, when the kernel has ended,
    says so and links the executed notebook.
    """

    @web.authenticated
    async def get(self, job_id: str) -> None:
        """Redirect to the live kernel, or explain that it ended."""
        identity = self.identity
        job = self.jobs.get(identity, job_id)
        ready = False
        if job["live"] and job["live_kernel_url"]:
            try:
                servers = await self.app.hub.servers(job["owner"]) or {}
            except (HubError, HubUnreachable):
                servers = {job["server_name"]: {"ready": True}}  # let the hub answer itself
            ready = bool((servers.get(job["server_name"]) or {}).get("ready"))
        if ready:
            self.redirect(job["live_kernel_url"])
            return
        self.set_status(410 if job["state"] in FINISHED_STATES else 409)
        self.finish(self.render_page("kernel_ended.html", job=job))


def page_routes(prefix: str) -> list[tuple[str, Any, dict[str, Any] | None]]:
    """Pages, the OAuth callback, the page scripts and the npm libraries they use."""
    return [
        (prefix, BatchPage, None),
        (prefix + r"jobs/(?P<job_id>[a-z0-9]{1,16})", JobPage, None),
        (prefix + r"sweeps/(?P<sweep_id>[a-z0-9]{1,16})", SweepPage, None),
        (prefix + "data", DataPage, None),
        (prefix + "gpus", GpusPage, None),
        (prefix + r"jobs/(?P<job_id>[a-z0-9]{1,16})/live", LiveKernelPage, None),
        (prefix + "oauth_callback", HubOAuthCallbackHandler, None),
        (prefix + r"static/(.*)", web.StaticFileHandler, {"path": str(HERE / "static")}),
        # Only the browser bundle of tus-js-client, pinned by package-lock.json; never a CDN.
        (
            prefix + r"vendor/tus-js-client/(tus\.min\.js(?:\.map)?)",
            web.StaticFileHandler,
            {"path": str(node_modules() / "tus-js-client" / "dist")},
        ),
        # Chart.js's UMD bundle for the sweep page's plot, pinned the same way.
        (
            prefix + r"vendor/chart.js/(chart\.umd\.min\.js)",
            web.StaticFileHandler,
            {"path": str(node_modules() / "chart.js" / "dist")},
        ),
    ]
