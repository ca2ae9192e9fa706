"""Submissions acknowledged per second by the batch service, beside the hub's GET /hub/api/user.

Two kinds of load (vegeta, bench/_load.py), each through the hub's proxy for --seconds per sample,
with the queue paused, so the figures are the service's own cost (authenticate, parse the
multipart form, check the notebook, store input and row in one transaction, 201):

- closed loop: 50 clients, each sending its next request when its last is answered. The rate
  is the most the service acknowledges (goal >= 430/s). Its p95 is printed too, but with 50
  requests always in flight the mean latency is 50 / rate (Little's law), so it says how long
  the line at the door is at saturation, not how fast a submission is;
- open loop: requests leave at the goal's rate (--rate, 430/s) from at most 50 clients at once,
  whatever the answers. Its p95 is what a submitter sees while the service takes 430/s (goal <
  100 ms); the rate acknowledged shows whether it kept up. The baseline gets the same rate.

For context, the same loads on the floor (bench/_floor.py): a compiled server behind the
hub's proxy program, writing each request's body to a new fsynced file and answering 201,
with nothing else to do. It is sampled in the same rotation, and ours is printed
beside it: what this machine allows any server that acknowledges only what is on disk.

Where the time goes (figures without a goal): the CPU each request of the closed loop
cost, ours beside the hub's GET, both for the whole machine (what bounds the rate: its cores
divided by this is the most any load gets; the proxy, vegeta and the kernel are in it) and for
the server's own processes (the service with its check workers; the hub).

And one more figure without a goal: the CPU time (user + system) a check worker spends
writing one submission's input into a new job folder in staging (two folders, the file, its
fsync: stage_job_folder), in the state folder's file system, beside the same in /dev/shm
(memory, where fsync is free). It says what the disk under the state folder costs a submission.

Every sample hammers the service, the hub and the floor, in an order rotated each turn (ABC,
BCA, ...),
the median of --samples (default 5) after a discarded warm-up turn. Per sample: answers 200/201
per second (over the attack and its last answers), and the 95th percentile of all latencies.
The clients, hub, proxy and service share this machine's cores. --python-clients uses the
former closed-loop clients (threads with requests) instead, to compare.

    .venv/bin/python bench/service_throughput.py [--seconds 5] [--clients 50] [--rate 430]
        [--samples 5] [--quick] [--python-clients]
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

import requests

# Run as `python bench/<script>.py`: the repository root holds the bench and tests packages.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from batch_service.files import stage_job_folder  # noqa: E402
from bench._cpu import children, machine_busy_seconds, process_seconds  # noqa: E402
from bench._floor import FLOOR, floor_behind_proxy  # noqa: E402
from bench._hub import bench_hub  # noqa: E402
from bench._load import Load, attack  # noqa: E402
from bench._table import Figure, arguments, report  # noqa: E402
from tests.batch import notebook  # noqa: E402

# Submissions per second to take (10x Kueue's published 43 admissions/s), p95 under 100 ms.
GOAL_RATE = 430
GOAL_P95_MS = 100
BASELINE = "hub GET /hub/api/user"


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


def staging_cpu_ms(parent: Path, content: bytes, count: int = 200) -> float:
    """CPU milliseconds (user + system, this process) to stage one submission's input under
    `parent` as a check worker does (stage_job_folder)."""
    staging = parent / f"bench-staging-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        started = time.process_time()
        for _ in range(count):
            stage_job_folder(staging, "input", "nb.ipynb", content)
        return (time.process_time() - started) / count * 1e3
    finally:
        shutil.rmtree(staging)


def cpu_now(pids: list[int]) -> tuple[float, float]:
    """CPU seconds so far: the machine's busy time, and the processes'."""
    return machine_busy_seconds(), process_seconds(pids)


def load_with(
    request: requests.PreparedRequest, clients: int, seconds: float, python: bool, rate: int = 0
) -> Load:
    """One sample of `request`: closed loop (`rate` 0), or open loop at `rate` per second."""
    if python and not rate:
        return python_clients(request, clients, seconds)
    headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
    body = request.body if isinstance(request.body, bytes) else None
    return attack(str(request.method), str(request.url), headers, body, clients, seconds, rate)


def main() -> None:
    """Take the samples and report both figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5, help="per sample (--quick: 2)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument(
        "--rate", type=int, default=GOAL_RATE, help="per second, for the open-loop latency"
    )
    parser.add_argument(
        "--python-clients", action="store_true", help="threads with requests instead of vegeta"
    )
    arguments(parser)
    args = parser.parse_args()
    seconds = 2.0 if args.quick and args.seconds == parser.get_default("seconds") else args.seconds
    with bench_hub() as hub, floor_behind_proxy(hub.state_dir) as floor:
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
        to_floor = submit.copy()
        to_floor.url = floor + "/services/batch/api/v1/jobs"
        targets = (("ours", submit), ("hub", hub_user), ("floor", to_floor))

        service = hub.service_pid()
        assert hub.proc is not None
        # Whose CPU a request of each target costs, besides the machine's (the floor's: none).
        processes = {
            "ours": lambda: [service, *children(service)],
            "hub": lambda: [hub.proc.pid],
            "floor": lambda: [],
        }
        # ours / hub -> ms of CPU per request, back to back: the machine's, the server's.
        machine_ms: dict[str, list[float]] = {"ours": [], "hub": []}
        server_ms: dict[str, list[float]] = {"ours": [], "hub": []}
        # (closed, open) loop -> ours / hub / floor -> samples
        rates = {loop: {name: [] for name, _ in targets} for loop in ("closed", "open")}
        state_disk: list[float] = []
        memory: list[float] = []
        p95s = {loop: {name: [] for name, _ in targets} for loop in ("closed", "open")}
        for turn in range(1 + args.samples):  # turn 0 warms up and is discarded
            order = targets[turn % 3 :] + targets[: turn % 3]
            for loop, rate in (("closed", 0), ("open", args.rate)):
                for name, request in order:
                    pids = processes[name]()
                    before = cpu_now(pids)
                    load = load_with(request, args.clients, seconds, args.python_clients, rate)
                    after = cpu_now(pids)
                    if turn:
                        rates[loop][name].append(load.ok_per_second)
                        p95s[loop][name].append(load.p95_ms)
                        if loop == "closed" and name in machine_ms:
                            per_request = 1e3 / max(1, load.requests)
                            machine_ms[name].append((after[0] - before[0]) * per_request)
                            server_ms[name].append((after[1] - before[1]) * per_request)
            state_disk.append(staging_cpu_ms(hub.state_dir / "state", body))
            if Path("/dev/shm").is_dir():
                memory.append(staging_cpu_ms(Path("/dev/shm"), body))
    clients = f"{args.clients} clients" + (" (Python)" if args.python_clients else "")
    loads = {
        "closed": f"{clients} back to back",
        "open": f"{args.rate}/s offered, <= {args.clients} in flight",
    }
    # (loop, goal on the rate, goal on the p95): the rate's goal back to back, the p95's at the
    # goal's rate.
    goals = (("closed", GOAL_RATE, None), ("open", None, GOAL_P95_MS))
    figures = []
    for loop, rate_goal, p95_goal in goals:
        figures += [
            Figure(
                f"submissions acknowledged, {loads[loop]}",
                "/s",
                rates[loop]["ours"],
                rates[loop]["hub"],
                BASELINE,
                goal_value=rate_goal,
                higher_is_better=True,
            ),
            Figure(
                f"submission p95, {loads[loop]}",
                "ms",
                p95s[loop]["ours"],
                p95s[loop]["hub"],
                BASELINE,
                goal_value=p95_goal,
            ),
        ]
    # Ours beside the floor: the rate back to back, the p95 at the goal's rate.
    figures += [
        Figure(
            f"submissions acknowledged, {loads['closed']}",
            "/s",
            rates["closed"]["ours"],
            rates["closed"]["floor"],
            FLOOR,
            higher_is_better=True,
        ),
        Figure(
            f"submission p95, {loads['open']}",
            "ms",
            p95s["open"]["ours"],
            p95s["open"]["floor"],
            FLOOR,
        ),
    ]
    figures += [
        Figure(
            f"CPU per request, whole machine, {loads['closed']}",
            "ms",
            machine_ms["ours"],
            machine_ms["hub"],
            BASELINE,
        ),
        Figure(
            f"CPU per request, service and check workers, {loads['closed']}",
            "ms",
            server_ms["ours"],
            server_ms["hub"],
            "the hub's process, per GET",
        ),
    ]
    figures.append(
        Figure(
            "CPU to stage one input (folders, file, fsync), state disk",
            "ms",
            state_disk[1:],
            memory[1:],
            "the same in /dev/shm",
        )
    )
    report(figures)


if __name__ == "__main__":
    main()
