"""What the service saw of the machine an exclusive run had to itself, for its job page.

At the run's start (the runner's `started` word, read on the service's own clock) the service
reads the CPU frequency governor of the run's CPUs and the load average itself: these are its
observations, not the runner's claim. While the run goes, each scheduler pass notes any other
server the hub lists. When the page is read, runs and live kernels whose holding overlapped the
run's window are looked up in the service's own store. Locally the service runs on the machine
the run does; on Kubernetes the run has a node of its own and these readings are not taken.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from batch_service.store import Job
from spawner.profiles import Profile, cpu_list

CPUFREQ = Path("/sys/devices/system/cpu")
MAX_SERVERS_SEEN = 50  # names kept of other servers seen during a run (then a count)


def governors(cpus: Iterable[int] | None, root: Path = CPUFREQ) -> str:
    """The frequency governor of the CPUs ("performance"; several: "powersave on 0-1, ...");
    "unknown" where the machine does not say (no cpufreq, as in most virtual machines)."""
    numbers = sorted(cpus) if cpus is not None else sorted(os.sched_getaffinity(0))
    by_governor: dict[str, list[int]] = {}
    for cpu in numbers:
        try:
            text = (root / f"cpu{cpu}" / "cpufreq" / "scaling_governor").read_text()[:64].strip()
        except OSError:
            text = "unknown"
        by_governor.setdefault(text or "unknown", []).append(cpu)
    if len(by_governor) == 1:
        return next(iter(by_governor))
    return ", ".join(f"{name} on CPUs {cpu_list(c)}" for name, c in sorted(by_governor.items()))


def reading_at_start(profile: Profile, t: float) -> dict[str, Any]:
    """The machine as the service sees it when an exclusive run starts."""
    cpus = profile.cpus
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "cpus": cpu_list(cpus) if cpus is not None else "all",
        "governor": governors(cpus),
        "load": load,
        "read_at": t,
        "servers_seen": [],
        "servers_seen_more": 0,
    }


def note_servers(record: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any] | None:
    """The record with other servers seen in a pass added; None when nothing is new."""
    seen = list(record.get("servers_seen") or [])
    new = [n for n in names if n not in seen]
    if not new:
        return None
    room = max(0, MAX_SERVERS_SEEN - len(seen))
    return {
        **record,
        "servers_seen": seen + new[:room],
        "servers_seen_more": int(record.get("servers_seen_more") or 0) + len(new[room:]),
    }


def others_during(session: Session, job: Job, t: float) -> list[dict[str, Any]]:
    """Runs and live kernels of other jobs whose holding overlapped this run's window."""
    start = job.started_at
    if start is None:
        return []
    end = job.finished_at or t
    held_from = Job.admitted_at
    rows = session.execute(
        select(
            Job.id,
            Job.owner,
            Job.admitted_at,
            Job.started_at,
            Job.finished_at,
            Job.live_ended_at,
            Job.live,
            Job.live_pending,
        ).where(
            Job.id != job.id,
            or_(held_from.is_not(None), Job.started_at.is_not(None)),
            or_(Job.admitted_at < end, Job.started_at < end),
            or_(
                Job.finished_at.is_(None),
                Job.finished_at > start,
                and_(Job.live_ended_at.is_not(None), Job.live_ended_at > start),
                Job.live.is_(True),
                Job.live_pending.is_(True),
            ),
        )
    ).all()
    others = []
    for row in rows:
        began = row.admitted_at or row.started_at
        run_end = row.finished_at if row.finished_at is not None else end
        if began is not None and began < end and run_end > start:
            others.append({"job": row.id, "owner": row.owner, "kind": "run"})
        elif row.finished_at is not None and row.finished_at < end:
            live_end = row.live_ended_at if row.live_ended_at is not None else end
            if live_end > start and (row.live or row.live_pending or row.live_ended_at):
                others.append({"job": row.id, "owner": row.owner, "kind": "live_kernel"})
    return others


def machine_view(
    session: Session, job: Job, t: float, reader: str | None, names: bool
) -> dict[str, Any] | None:
    """The `machine` field of an exclusive job's API form (None for other jobs): the reading
    at its start, and what else held the machine in its window (owners named only to readers
    who may see everyone's jobs)."""
    record = job.machine_record
    if record is None:
        return None

    def who(owner: str) -> str:
        return "you" if owner == reader else owner if names else "another user"

    others = [
        {
            "kind": o["kind"],
            "job": o["job"] if names or o["owner"] == reader else None,
            "owner": who(o["owner"]),
        }
        for o in others_during(session, job, t)
    ]
    seen = list(record.get("servers_seen") or [])
    servers = [
        s if names or s.split("/", 1)[0] == reader else "a server of another user" for s in seen
    ]
    return {
        "cpus": record.get("cpus", "all"),
        "governor": record.get("governor", "unknown"),
        "load": record.get("load", []),
        "read_at": record.get("read_at"),
        "others": others,
        "servers_seen": servers,
        "servers_seen_more": int(record.get("servers_seen_more") or 0),
        "window_end": job.finished_at,
    }
