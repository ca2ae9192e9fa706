"""The job list with 10,000 jobs in the store: p95 latency of one page of 50, and service RSS.

The jobs are written into the service's SQLite store before the hub starts (through the same
JobService the API uses), then pages are fetched through the proxy like the Batch page does.

    .venv/bin/python bench/service_joblist.py [--jobs 10000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import requests

from bench._hub import bench_hub
from tests.batch import notebook


def rss_mib(pid: int) -> float:
    """Resident memory of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    """Load, then time pages of the API and of the page shell."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    args = parser.parse_args()
    with bench_hub({"batch": {"paused": True}}) as hub:
        user = hub.ready_user("bench-list")
        headers = {"Authorization": f"token {user.token}"}
        api = f"{hub.url}/services/batch/api/v1/"
        body = notebook("y = 1")
        t0 = time.perf_counter()
        session = requests.Session()
        for _ in range(args.jobs):
            r = session.post(
                api + "jobs",
                headers=headers,
                files={"file": ("nb.ipynb", body)},
                data={"profile": "cpu"},
                timeout=60,
            )
            assert r.status_code == 201, r.text
        load = time.perf_counter() - t0
        samples = {"API page of 50 (first)": [], "API page of 50 (offset 5000)": []}
        for _ in range(200):
            for name, query in (
                ("API page of 50 (first)", "jobs?limit=50"),
                ("API page of 50 (offset 5000)", "jobs?limit=50&offset=5000"),
            ):
                t = time.perf_counter()
                r = session.get(api + query, headers=headers, timeout=60)
                samples[name].append(time.perf_counter() - t)
                assert r.status_code == 200 and len(r.json()["jobs"]) == 50
        rss = rss_mib(hub.service_pid())
    print(f"loaded {args.jobs} jobs through the API in {load:.1f} s")
    for name, values in samples.items():
        q = statistics.quantiles(values, n=100)
        print(f"{name:32} p50 {q[49] * 1000:7.1f} ms   p95 {q[94] * 1000:7.1f} ms")
    print(f"batch service RSS after loading: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
