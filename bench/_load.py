"""HTTP load from vegeta, a compiled load generator, for the throughput benches.

Clients written in Python (threads with requests) spend about 2.5 ms of CPU per request: on a
small machine that is a third of what a submission costs all told, taken from the hub, proxy
and service under test. vegeta (github.com/tsenart/vegeta) spends a small fraction of that. It
is built once from its Go module into ~/.cache/batchhub/bin (about 40 s, then found at once).
Closed loop (`rate` 0, vegeta's `-rate=0`): each of `clients` workers sends its next request
when its last is answered, as the Python clients did; the rate is what the server can take.
Open loop (`rate` > 0): requests leave at that rate whatever the answers, from at most `clients`
workers at once; the latencies are what a client sees at that load.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench._go import BIN, build_env, go

VEGETA_MODULE = "github.com/tsenart/vegeta/v12"
VEGETA_VERSION = "v12.13.0"


def vegeta() -> Path:
    """The vegeta binary of the pinned version, built from its module the first time."""
    binary = BIN / f"vegeta-{VEGETA_VERSION}"
    if binary.exists():
        return binary
    command = go("their load generator (vegeta)")
    with tempfile.TemporaryDirectory() as gobin:
        subprocess.run(
            [command, "install", f"{VEGETA_MODULE}@{VEGETA_VERSION}"],
            env=build_env(GOBIN=gobin),
            check=True,
        )
        BIN.mkdir(parents=True, exist_ok=True)
        shutil.move(Path(gobin) / "vegeta", binary)
    return binary


@dataclass(frozen=True)
class Load:
    """What one attack measured."""

    ok_per_second: float  # answers 200/201 per second, over the attack and its last answers
    p95_ms: float  # 95th percentile of every request's latency
    requests: int


def attack(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    clients: int,
    seconds: float,
    rate: int = 0,
) -> Load:
    """`clients` workers send `method url` for `seconds`: back to back (`rate` 0), or `rate`
    requests per second with at most `clients` in flight."""
    binary = str(vegeta())
    with tempfile.TemporaryDirectory(prefix="batchhub-load-") as folder:
        target = [f"{method} {url}", *(f"{name}: {value}" for name, value in headers.items())]
        if body is not None:
            (Path(folder) / "body").write_bytes(body)
            target.append(f"@{folder}/body")
        (Path(folder) / "target").write_text("\n".join(target) + "\n")
        results = Path(folder) / "results"
        with results.open("wb") as out:
            subprocess.run(
                [
                    binary,
                    "attack",
                    f"-targets={folder}/target",
                    f"-rate={rate}/1s" if rate else "-rate=0",
                    f"-workers={clients}",
                    f"-max-workers={clients}",
                    f"-duration={seconds}s",
                    "-timeout=60s",
                ],
                stdout=out,
                check=True,
            )
        report = json.loads(
            subprocess.run(
                [binary, "report", "-type=json", str(results)],
                capture_output=True,
                check=True,
            ).stdout
        )
    codes = report.get("status_codes") or {}
    ok = int(codes.get("200", 0)) + int(codes.get("201", 0))
    elapsed = (report["duration"] + report["wait"]) / 1e9
    return Load(ok / elapsed, report["latencies"]["95th"] / 1e6, int(report["requests"]))
