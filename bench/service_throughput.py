"""Submissions acknowledged per second by the batch service, beside the hub's GET /hub/api/user.

50 concurrent clients (vegeta workers, closed loop: each sends its next request when its last is
answered; bench/_load.py) send requests through the hub's proxy for --seconds per sample; the
queue is paused, so the figure is the service's own cost (authenticate, parse the multipart
form, check the notebook, store input and row in one transaction, 201). Every sample hammers
the service, then the hub (or the hub first on alternate turns: ABAB...), the median of
--samples (default 5) after a discarded warm-up turn. Per sample: answers 200/201 per second
(over the attack and its last answers), and the 95th percentile of all latencies. Goals: >= 430
submissions/s, p95 < 100 ms. The clients, hub, proxy and service share this machine's cores.
--python-clients uses the former clients (threads with requests) instead, to compare.

    .venv/bin/python bench/service_throughput.py [--seconds 5] [--clients 50] [--samples 5]
        [--quick] [--python-clients]
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
from bench._load import Load, attack  # noqa: E402
from bench._table import Figure, arguments, report  # noqa: E402
from tests.batch import notebook  # noqa: E402


def python_clients(request: requests.PreparedRequest, clients: int, seconds: float) -> Load:
    """The same closed loop from `clients` threads of this process (requests sessions)."""
    latencies: list[float] = []
    counts = [0] * clients
    stop = time.monotonic() + seconds
    started = time.monotonic()

    def client(n: int) -> None:
        session = requests.Session()
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            r = session.send(request.copy(), timeout=60)
            latencies.append(time.perf_counter() - t0)
            counts[n] += r.status_code in (200, 201)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    p95 = statistics.quantiles(latencies, n=100)[94] * 1000
    return Load(sum(counts) / (time.monotonic() - started), p95, len(latencies))


def load_with(
    request: requests.PreparedRequest, clients: int, seconds: float, python: bool
) -> Load:
    """One closed-loop sample of `request`."""
    if python:
        return python_clients(request, clients, seconds)
    headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
    body = request.body if isinstance(request.body, bytes) else None
    return attack(str(request.method), str(request.url), headers, body, clients, seconds)


def main() -> None:
    """Take the samples and report both figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5, help="per sample (--quick: 2)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument(
        "--python-clients", action="store_true", help="threads with requests instead of vegeta"
    )
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
        submit = requests.Request(
            "POST",
            api + "jobs",
            headers=headers,
            files={"file": ("nb.ipynb", body)},
            data={"profile": "cpu", "parameters": '{"x": 2}'},
        ).prepare()
        hub_user = requests.Request("GET", f"{hub.url}/hub/api/user", headers=headers).prepare()

        rates: dict[str, list[float]] = {"ours": [], "hub": []}
        p95s: dict[str, list[float]] = {"ours": [], "hub": []}
        for turn in range(1 + args.samples):  # turn 0 warms up and is discarded
            pair: tuple[tuple[str, requests.PreparedRequest], ...] = (
                ("ours", submit),
                ("hub", hub_user),
            )
            for name, request in pair if turn % 2 else pair[::-1]:
                load = load_with(request, args.clients, seconds, args.python_clients)
                if turn:
                    rates[name].append(load.ok_per_second)
                    p95s[name].append(load.p95_ms)
    clients = f"{args.clients} clients" + (" (Python)" if args.python_clients else "")
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
