"""CPU time of some processes and of the whole machine (psutil), and a process's children.

A throughput bench's rate is bounded by the CPU each request costs: the machine's cores
divided by that cost is the most any load can get. Read before and after a sample, these say
where a request's time went (the server under test, its helpers, or everything together:
proxy, load generator and kernel included).
"""

from __future__ import annotations

from collections.abc import Iterable

import psutil


def process_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds the processes spent so far (one that is gone counts 0)."""
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def children(parent: int, program: bytes = b"") -> list[int]:
    """The processes whose parent is `parent` (a service's check workers), those whose
    command line holds `program` where one is given."""
    found = []
    try:
        kids = psutil.Process(parent).children()
    except psutil.Error:
        return []
    for kid in kids:
        try:
            if program in "\0".join(kid.cmdline()).encode():
                found.append(kid.pid)
        except psutil.Error:
            continue
    return found


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy so far (everything but idle and I/O wait)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)
