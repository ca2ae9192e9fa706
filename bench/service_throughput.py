"""Submissions acknowledged per second by the batch service, beside the hub's GET /hub/api/user.

20 concurrent clients, each with its own connection pool, for a fixed time; the queue is paused
so the figure is the service's own cost (validate, store input and row in one transaction, 201).

    .venv/bin/python bench/service_throughput.py [--seconds 10] [--clients 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import requests

# Run as `python bench/<script>.py`: the repository root holds the bench and tests packages.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._hub import bench_hub  # noqa: E402
from tests.batch import notebook  # noqa: E402


def hammer(make_request, clients: int, seconds: float) -> tuple[int, list[float]]:  # type: ignore[no-untyped-def]
    """Run requests from `clients` threads for `seconds`; count successes, keep latencies."""
    latencies: list[float] = []
    counts = [0] * clients
    stop = time.monotonic() + seconds

    def client(n: int) -> None:
        session = requests.Session()
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            r = make_request(session)
            latencies.append(time.perf_counter() - t0)
            counts[n] += r.status_code in (200, 201)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts), latencies


def p(values: list[float], q: float) -> float:
    """Percentile in milliseconds."""
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def main() -> None:
    """Print both figures and their ratio."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    with bench_hub() as hub:
        admin = hub.admin()
        user = hub.ready_user("bench-submit")
        headers = {"Authorization": f"token {user.token}"}
        api = f"{hub.url}/services/batch/api/v1/"
        requests.put(
            api + "queue",
            json={"paused": True},
            headers={"Authorization": f"token {admin.token}"},
            timeout=30,
        )
        body = notebook("y = x + 1", parameters="x = 1")

        def submit(session: requests.Session) -> requests.Response:
            return session.post(
                api + "jobs",
                headers=headers,
                timeout=60,
                files={"file": ("nb.ipynb", body)},
                data={"profile": "cpu", "parameters": '{"x": 2}'},
            )

        def hub_user(session: requests.Session) -> requests.Response:
            return session.get(f"{hub.url}/hub/api/user", headers=headers, timeout=60)

        rows = {}
        for name, call in (("batch POST jobs (201)", submit), ("hub GET /hub/api/user", hub_user)):
            ok, latencies = hammer(call, args.clients, args.seconds)
            rows[name] = (ok / args.seconds, p(latencies, 50), p(latencies, 95))
    print(f"{'':28}{'per second':>12}{'p50 ms':>10}{'p95 ms':>10}")
    for name, (rate, p50, p95) in rows.items():
        print(f"{name:28}{rate:12.1f}{p50:10.1f}{p95:10.1f}")
    (ours, _, _), (theirs, _, _) = rows.values()
    print(f"ratio submissions / hub user lookups: {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
