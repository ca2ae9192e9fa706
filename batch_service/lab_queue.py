"""The Batch queue panel's data, served by the user's JupyterLab server.

The panel (labextension/src/queue.js) reads the user's batchhub jobs, with their place in line,
progress and live kernel, from this server's /batchhub/ handlers; these call the batch service
with the server's own hub token (lab_scheduler.BatchApi), so the browser never holds a token.
Enabled by batch_service/lab/etc/jupyter_server_config.d/batchhub_lab.json.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from jupyter_scheduler.exceptions import SchedulerError
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado.web import authenticated

from batch_service.lab_scheduler import BatchApi

# The panel shows the newest jobs; older ones are on the Batch page.
QUEUE_LENGTH = 30
# What the panel shows of a job; the rest of the service's view stays out of the page.
JOB_FIELDS = (
    "id",
    "input_name",
    "state",
    "profile",
    "position",
    "reason",
    "estimated_start",
    "progress",
    "live_kernel_url",
    "submitted_at",
    "started_at",
    "finished_at",
    "time_limit",
)
PROFILE_FIELDS = ("name", "display_name", "max_time_limit", "default_time_limit")


class _ServiceHandler(APIHandler):
    """A service error becomes a 502 whose message the panel shows."""

    async def _call(self, path: str) -> Any:
        try:
            return await BatchApi().call("GET", path)
        except SchedulerError as e:
            self.set_status(502)
            self.finish({"message": str(e)})
            return None


class QueueHandler(_ServiceHandler):
    """GET the user's newest batchhub jobs: state, place in line, progress, live kernel."""

    @authenticated
    async def get(self) -> None:
        page = await self._call(f"jobs?{urlencode({'limit': QUEUE_LENGTH})}")
        if page is None:
            return
        jobs = [{k: job.get(k) for k in JOB_FIELDS} for job in page["jobs"]]
        self.finish({"jobs": jobs, "total": page["total"]})


class ProfilesHandler(_ServiceHandler):
    """GET the profiles this user may use, with their default and maximum time limits."""

    @authenticated
    async def get(self) -> None:
        listed = await self._call("profiles")
        if listed is None:
            return
        profiles = listed.get("profiles", listed) if isinstance(listed, dict) else listed
        self.finish({"profiles": [{k: p.get(k) for k in PROFILE_FIELDS} for p in profiles]})


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "batch_service.lab_queue"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    base = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "batchhub/queue"), QueueHandler),
            (url_path_join(base, "batchhub/profiles"), ProfilesHandler),
        ],
    )
