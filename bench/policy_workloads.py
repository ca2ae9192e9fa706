"""Workloads for the policy simulator: a deadline rush, a heavy user, the Gavel MSR trace.

The Gavel traces (Stanford Future Data Systems, MIT license; repository
stanford-futuredata/gavel, scheduler/traces/msr/seed=0/, derived from Microsoft's Philly
trace) are read from ../shared/traces/gavel-msr-seed0 and never copied here. A line has 7
tab-separated fields; Gavel's own reader of this format (scheduler/utils.py parse_trace at
commit ace90a3, the commit that added these traces) names them:

    job_type, command, num_steps_arg, needs_data_dir, total_steps, arrival_time, scale_factor

so field 6 is the arrival time in seconds (it never decreases within a file) and field 7 the
number of GPUs (1 to 64). The trace holds no duration: Gavel derives it from total_steps and
the measured steps per second of the model on a V100 at that scale. We do the same with the
V100 throughputs of Gavel's scheduler/simulation_throughputs.json (rounded, MIT; models that
Gavel measured only on one GPU scale linearly from their largest measured scale).
cluster_specs.json beside the traces gives the GPUs Gavel used ("500:0:0": 500 V100s).

Users: each file is a virtual cluster, treated as a group; within it, each model family
(ResNet-18, LM, ...) is one user, so a user runs one kind of work and a few users submit most
jobs, as in Philly.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Job:
    """One job of a workload; the simulator fills in start and end."""

    id: str
    user: str
    gpus: int
    duration: float
    arrival: float
    group: str | None = None
    start: float | None = None
    end: float | None = None
    exclusive: bool = False  # needs a whole machine (its GPUs are the machine's)


def rush(seed: int = 1) -> tuple[list[Job], int]:
    """A course's deadline rush: 215 students on 12 machines x 4 GPUs, three busy hours.

    Each student runs the assignment notebook 2 to 8 times (1 GPU, 2 to 10 minutes, a new try
    every 5 to 25 minutes from a random start); one in seven also queues a longer 1-GPU run (30
    to 90 minutes) and one in ten a project training run on 2 or 4 GPUs (1 to 2 hours). Offered
    load is about 1.5 times what 48 GPUs serve in three hours, so the line backs up.
    """
    rng = random.Random(seed)
    jobs: list[Job] = []
    for s in range(215):
        user = f"student{s:03d}"
        t = rng.uniform(0, 2.5 * 3600)
        for k in range(rng.randint(2, 8)):
            duration = math.exp(rng.uniform(math.log(120), math.log(600)))
            jobs.append(Job(f"{user}-run{k}", user, 1, duration, t))
            t += rng.uniform(300, 1500)
        if rng.random() < 1 / 7:
            start = rng.uniform(0, 3 * 3600)
            jobs.append(Job(f"{user}-long", user, 1, rng.uniform(1800, 5400), start))
        if rng.random() < 0.1:
            start = rng.uniform(0, 3 * 3600)
            gpus = rng.choice([2, 4])
            jobs.append(Job(f"{user}-train", user, gpus, rng.uniform(3600, 7200), start))
    return jobs, 48


MACHINE_GPUS = 4  # the rush's machines: 12 x 4 GPUs


def rush_exclusive(share: float = 0.2, seed: int = 1) -> tuple[list[Job], int]:
    """The deadline rush where a share of the assignment runs are performance experiments
    that must run alone on a machine: each takes a whole machine (its 4 GPUs), for the same
    2 to 10 minutes. The rest is the rush as above."""
    rng = random.Random(seed + 100)
    jobs, capacity = rush(seed)
    for job in jobs:
        if "-run" in job.id and rng.random() < share:
            job.gpus, job.exclusive = MACHINE_GPUS, True
    return jobs, capacity


def heavy(seed: int = 2) -> tuple[list[Job], int]:
    """One user queues 300 one-hour jobs at once; 60 light users trickle in short ones (16 GPUs)."""
    rng = random.Random(seed)
    jobs = [Job(f"heavy-{k}", "heavy", 1, 3600, 0.0) for k in range(300)]
    for u in range(60):
        for k in range(3):
            arrival = rng.uniform(0, 6 * 3600)
            jobs.append(Job(f"light{u}-{k}", f"light{u:02d}", 1, rng.uniform(300, 1200), arrival))
    return jobs, 16


# Steps per second on one V100 at 1, 2, 4, 8 GPUs (Gavel's simulation_throughputs.json).
V100_STEPS_PER_SECOND: dict[str, tuple[float, ...]] = {
    "ResNet-18 (batch size 16)": (32.4, 100, 124, 383),
    "ResNet-18 (batch size 32)": (29.9, 94.2, 115, 340),
    "ResNet-18 (batch size 64)": (24.1, 74.1, 95.6, 256),
    "ResNet-18 (batch size 128)": (18, 24, 70, 162),
    "ResNet-18 (batch size 256)": (10.3, 15.9, 27.8, 81.5),
    "ResNet-50 (batch size 16)": (11.4, 13.9, 23.2, 27.8),
    "ResNet-50 (batch size 32)": (7.79, 10.8, 13.8, 24.1),
    "ResNet-50 (batch size 64)": (4.39, 7.92, 9.45, 17.3),
    "ResNet-50 (batch size 128)": (2.5, 4.22, 7.03, 10.3),
    "Transformer (batch size 16)": (11.1, 14.2, 20.1, 71.7),
    "Transformer (batch size 32)": (10.6, 13.3, 22.8, 64),
    "Transformer (batch size 64)": (8.62, 15.9, 19.7, 49.7),
    "Transformer (batch size 128)": (5.45, 10.1, 14.2, 30.9),
    "Transformer (batch size 256)": (1.6, 2.89, 4.76, 9.72),
    "A3C": (7.18,),
    "LM (batch size 5)": (109.17,),
    "LM (batch size 10)": (81.65,),
    "LM (batch size 20)": (64.74,),
    "LM (batch size 40)": (45.24,),
    "LM (batch size 80)": (28.24,),
    "Recommendation (batch size 512)": (23.32,),
    "Recommendation (batch size 1024)": (13.28,),
    "Recommendation (batch size 2048)": (7.47,),
    "Recommendation (batch size 4096)": (3.91,),
    "Recommendation (batch size 8192)": (2.84,),
    "CycleGAN": (4.43,),
}


def _steps_per_second(job_type: str, gpus: int) -> float:
    measured = V100_STEPS_PER_SECOND[job_type]
    index = int(math.log2(gpus)) if gpus & (gpus - 1) == 0 else len(measured)
    if index < len(measured):
        return measured[index]
    largest = 2 ** (len(measured) - 1)
    return measured[-1] * gpus / largest


def gavel_capacity(trace_dir: Path) -> int:
    """GPUs Gavel used for these traces (all types together)."""
    specs = json.loads((trace_dir / "cluster_specs.json").read_text())
    first = next(iter(specs.values()))[0]
    return sum(int(n) for n in first.split(":"))


def gavel(trace_dir: Path, limit: int | None = None) -> tuple[list[Job], int]:
    """The Gavel MSR traces (the first `limit` jobs by arrival), on Gavel's cluster size."""
    jobs = []
    for path in sorted(trace_dir.glob("*.trace")):
        group = path.stem
        for n, line in enumerate(path.read_text().splitlines()):
            fields = line.split("\t")
            if len(fields) != 7:
                raise ValueError(f"{path}:{n + 1}: expected 7 tab-separated fields")
            job_type, steps = fields[0], int(fields[4])
            arrival, gpus = float(fields[5]), int(fields[6])
            if gpus < 1:
                continue  # Gavel skips these too
            duration = max(60.0, steps / _steps_per_second(job_type, gpus))
            user = f"{group}/{job_type.split(' ')[0]}"
            jobs.append(Job(f"{group}-{n}", user, gpus, duration, arrival, group))
    jobs.sort(key=lambda j: (j.arrival, j.id))
    return (jobs if limit is None else jobs[:limit]), gavel_capacity(trace_dir)
