"""CPU time from /proc (Linux): of some processes, and of the whole machine.

A throughput bench's rate is bounded by the CPU each request costs: the machine's cores
divided by that cost is the most any load can get. Read before and after a sample, these say
where a request's time went (the server under test, its helpers, or everything together:
proxy, load generator and kernel included).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds the processes spent so far (one that is gone counts 0)."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = _fields(stat)
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def children(parent: int, program: bytes = b"") -> list[int]:
    """The processes whose parent is `parent` (a service's check workers), those whose
    command line holds `program` where one is given."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                if int(_fields(stat)[1]) == parent and program in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _fields(stat: str) -> list[str]:
    """/proc/<pid>/stat after `pid (comm)`: comm may hold spaces, so split after its ')'."""
    return stat.rsplit(")", 1)[1].split()


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy so far (everything but idle and I/O wait)."""
    times = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(times) - times[3] - times[4]) / TICK


def available() -> bool:
    """Whether this system has the /proc these read."""
    return Path("/proc/stat").is_file() and Path(f"/proc/{os.getpid()}/stat").is_file()
