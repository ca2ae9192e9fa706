"""A sweep's results table: one row per point, as JSON rows or CSV with the same columns.

Columns: the point's parameters (`param.<name>`), its state, start time, run time, how it ended
if not well (error), why it waits if queued (reason), its recorded values (`value.<name>`) and
links. Times and states are the service's own; recorded values are what the run glued (the
user's claim, shown as such).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

from batch_service.job_view import live_kernel_url
from batch_service.store import Job


def _error(job: Job) -> str:
    if job.error_name:
        return f"{job.error_name}: {job.error_value}" if job.error_value else job.error_name
    return job.reason or ""


def result_row(
    job: Job, has_output: bool, wait: dict[str, Any] | None, prefix: str, hub_base_url: str
) -> dict[str, Any]:
    """One point of a sweep as the results table shows it (`wait`: a queued point's place)."""
    duration = None
    if job.started_at is not None and job.finished_at is not None:
        duration = max(0.0, job.finished_at - job.started_at)
    links = {"job": f"{prefix}jobs/{job.id}", "output": None, "live_kernel": None}
    if has_output:
        links["output"] = f"{prefix}api/v1/jobs/{job.id}/output"
    if job.live:
        links["live_kernel"] = live_kernel_url(job, hub_base_url)
    return {
        "job_id": job.id,
        "point": job.point_hash,
        "parameters": job.parameters,
        "state": job.state,
        "started_at": job.started_at,
        "duration": duration,
        "error": _error(job) if job.state not in ("succeeded", "queued") else "",
        "reason": wait["reason"] if wait is not None else "",
        "recorded": job.recorded or {},
        # Adaptive sweeps: the Optuna trial this run is, or its depth in an exploration.
        "trial": job.trial,
        "depth": job.depth,
        "links": links,
    }


def result_rows(
    jobs: Iterable[Job],
    outputs: set[str],
    waits: dict[str, dict[str, Any]],
    prefix: str,
    hub_base_url: str,
) -> list[dict[str, Any]]:
    """Rows of these jobs in their order (`outputs`: ids of those with an executed notebook;
    `waits`: where each queued one stands and why)."""
    return [
        result_row(job, job.id in outputs, waits.get(job.id), prefix, hub_base_url) for job in jobs
    ]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def rows_csv(rows: list[dict[str, Any]]) -> str:
    """The table as CSV: one column per parameter and per recorded value (names sorted)."""
    params = sorted({name for row in rows for name in row["parameters"]})
    values = sorted({name for row in rows for name in row["recorded"]})
    header = [
        "job_id",
        *(f"param.{n}" for n in params),
        "state",
        "started_at",
        "duration",
        "error",
        "reason",
        *(f"value.{n}" for n in values),
        "job",
        "output",
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(
            [
                row["job_id"],
                *(_cell(row["parameters"].get(n)) for n in params),
                row["state"],
                _cell(row["started_at"]),
                _cell(row["duration"]),
                row["error"],
                row["reason"],
                *(_cell(row["recorded"].get(n)) for n in values),
                row["links"]["job"],
                row["links"]["output"] or "",
            ]
        )
    return out.getvalue()
