"""Submissions acknowledged per second by the batch service, beside the hub's GET /hub/api/user.

50 concurrent clients (threads in this process, each with its own connection pool) send
requests for --seconds per sample; the queue is paused, so the figure is the service's own
cost (validate, store input and row in one transaction, 201). Every sample hammers the
service, then the hub (or the hub first on alternate turns: ABAB...), the median of
--samples (default 5) after a discarded warm-up turn. Per sample: requests answered 200/201
per second, and the 95th percentile of their latencies. Goals: >= 430 submissions/s, p95 <
100 ms. The clients share this machine's cores with the hub, proxy and service.

    .venv/bin/python bench/service_throughput.py [--seconds 5] [--clients 50] [--samples 5]
        [--quick]
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
from bench._table import Figure, arguments, report  # noqa: E402
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
    """Take the samples and report both figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5, help="per sample (--quick: 2)")
    parser.add_argument("--clients", type=int, default=50)
    arguments(parser)
    args = parser.parse_args()
    seconds = 2.0 if args.quick and args.seconds == parser.get_default("seconds") else args.seconds
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

        rates: dict[str, list[float]] = {"ours": [], "hub": []}
        p95s: dict[str, list[float]] = {"ours": [], "hub": []}
        for turn in range(1 + args.samples):  # turn 0 warms up and is discarded
            pair = (("ours", submit), ("hub", hub_user))
            for name, call in pair if turn % 2 else pair[::-1]:
                ok, latencies = hammer(call, args.clients, seconds)
                if turn:
                    rates[name].append(ok / seconds)
                    p95s[name].append(p(latencies, 95))
    clients = f"{args.clients} clients"
    report(
        [
            Figure(
                f"submissions acknowledged, {clients}",
                "/s",
                rates["ours"],
                rates["hub"],
                "hub GET /hub/api/user",
                goal_value=430,
                higher_is_better=True,
            ),
            Figure(
                f"submission p95 latency, {clients}",
                "ms",
                p95s["ours"],
                p95s["hub"],
                "hub GET /hub/api/user",
                goal_value=100,
            ),
        ]
    )


if __name__ == "__main__":
    main()
