"""A job as the API shows it: its names (server, executed notebook), links, and its view.

Every name and path here is the service's own choice, never a runner's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from batch_service.clock import now
from batch_service.line import not_waiting
from batch_service.store import Job
from spawner.profiles import BATCH_SERVER_PREFIX

# Runs write in this folder of their server's root: batch/<job id>/.
JOB_FOLDER = "batch"


def output_name(input_name: str, kind: str) -> str:
    """The executed notebook's file name."""
    stem = PurePosixPath(input_name).stem if kind != "empty" else "notebook"
    return f"{stem}.output.ipynb"


def server_name(job_id: str) -> str:
    """The named server a job's own start creates."""
    return BATCH_SERVER_PREFIX + job_id


def server_of(job: Job) -> str:
    """The named server the job runs in: its own, or the warm one it was given."""
    return job.server or server_name(job.id)


def output_path(job_id: str, input_name: str, kind: str) -> str:
    """Where a run's executed notebook lies in its server (chosen here, never by the runner)."""
    return f"{JOB_FOLDER}/{job_id}/{output_name(input_name, kind)}"


def url_path(path: str) -> str:
    """A file path as it goes into a URL: each segment quoted, so no segment can leave it."""
    return "/".join(quote(part, safe="") for part in path.split("/"))


def live_kernel_url(job: Job, hub_base_url: str = "/") -> str:
    """JupyterLab on the run's kernel, in a workspace of the job's own.

    JupyterLab keeps workspaces in the user's home, shared by all their servers: in the default
    workspace, a tab restored from another run would attach to a fresh kernel. `?reset` empties
    the job's workspace on every open, so it holds only the executed notebook.
    """
    server, workspace = server_of(job), server_name(job.id)
    # Every part is the service's own choice, each path segment quoted: it cannot leave the server.
    return (
        f"{hub_base_url}user/{quote(job.owner, safe='@~')}/{server}/lab/workspaces/{workspace}"
        f"/tree/{url_path(job.output_path or '')}?reset"
    )


def job_view(
    job: Job,
    wait: Mapping[str, Any] | None = None,
    hub_base_url: str = "/",
    has_output: bool | None = None,
) -> dict[str, Any]:
    """The API form of a job (`has_output`: whether its executed notebook is stored).

    `wait`: position, reason_code, reason and estimated_start of a queued job (batch_service
    /line.py); a job that does not wait has no position, code `none` and its stored reason.
    """
    duration = None
    if job.started_at is not None:
        duration = (job.finished_at or now()) - job.started_at
    return {
        "id": job.id,
        "owner": job.owner,
        "state": job.state,
        "kind": job.kind,
        "input_name": job.input_name,
        "entry_point": job.entry_point,
        "profile": job.profile,
        "parameters": job.parameters,
        "report_mode": job.report_mode,
        "args": job.args,
        "warnings": job.warnings,
        "time_limit": job.time_limit,
        "live_window": job.live_window,
        "priority": job.priority,
        "group": job.group_name,
        "sweep_id": job.sweep_id,
        "submitted_at": job.submitted_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "duration": duration,
        "live": job.live,
        # The run kept its kernel; it becomes `live` once the hub can reach its server.
        "live_pending": bool(job.live_pending),
        "live_until": job.live_until,
        "live_kernel_url": live_kernel_url(job, hub_base_url)
        if job.live and job.output_path
        else None,
        "has_output": has_output,
        "kernel_id": job.kernel_id,
        "output_path": job.output_path,
        "server_name": server_of(job),
        # index: cells done; while a run goes, the cell after them is the one running.
        "progress": {
            "index": job.progress_index,
            "total": job.progress_total,
            "current_cell": job.current_cell,
        },
        "error": {
            "name": job.error_name,
            "value": job.error_value,
            "cell": job.failed_cell,
        }
        if job.error_name
        else None,
        **(wait if wait is not None else not_waiting(job.reason)),
    }
