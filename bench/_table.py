"""Figures side by side with their baseline: sampled interleaved (ABAB...), medians with the
spread, a ratio, the goal and whether it is met, printed as one table.

A bench script hands its figures to `report`; with BATCHHUB_BENCH_JSON set, they are also
appended to that file (one JSON object per line), and `python bench/_table.py FILE` prints the
table of every bench that wrote there (`make bench` does this).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Figure:
    """One measured figure: samples of ours and of the baseline, and the goal it must meet.

    goal_ratio: ours/baseline must be at most this; goal_value: ours' median at most this
    (in `unit`). A figure may have either, both or none (printed for information)."""

    name: str
    unit: str
    ours: list[float]
    baseline: list[float] = field(default_factory=list)
    baseline_name: str = ""
    goal_ratio: float | None = None
    goal_value: float | None = None
    higher_is_better: bool = False

    @property
    def median(self) -> float:
        return statistics.median(self.ours)

    @property
    def baseline_median(self) -> float | None:
        return statistics.median(self.baseline) if self.baseline else None

    @property
    def ratio(self) -> float | None:
        base = self.baseline_median
        return self.median / base if base else None

    @property
    def goal(self) -> str:
        sign = ">=" if self.higher_is_better else "<="
        parts = []
        if self.goal_ratio is not None:
            parts.append(f"{sign} {self.goal_ratio:g}x")
        if self.goal_value is not None:
            parts.append(f"{sign} {self.goal_value:.4g} {self.unit}".rstrip())
        return " and ".join(parts) or "-"

    @property
    def passed(self) -> bool | None:
        checks = []
        better = (lambda a, b: a >= b) if self.higher_is_better else (lambda a, b: a <= b)
        if self.goal_ratio is not None and self.ratio is not None:
            checks.append(better(self.ratio, self.goal_ratio))
        if self.goal_value is not None:
            checks.append(better(self.median, self.goal_value))
        return all(checks) if checks else None


def interleaved(
    ours: Callable[[], float], baseline: Callable[[], float], samples: int = 5, warmup: int = 1
) -> tuple[list[float], list[float]]:
    """Samples of both, taken in turns (ABAB...) after `warmup` discarded turns, so neither
    always runs first on cold caches or on a machine that grows busier."""
    mine: list[float] = []
    theirs: list[float] = []
    for turn in range(warmup + samples):
        # Alternate who goes first within each turn too.
        pair = (ours, baseline) if turn % 2 == 0 else (baseline, ours)
        values = {id(f): f() for f in pair}
        if turn >= warmup:
            mine.append(values[id(ours)])
            theirs.append(values[id(baseline)])
    return mine, theirs


def rounds(
    runs: dict[str, Callable[[], float]], samples: int = 5, warmup: int = 1
) -> dict[str, list[float]]:
    """Like `interleaved` for more than two: each turn runs every one once, the order rotated
    by one each turn (ABC, BCA, CAB...); the first `warmup` turns are discarded."""
    names = list(runs)
    kept: dict[str, list[float]] = {name: [] for name in names}
    for turn in range(warmup + samples):
        shift = turn % len(names)
        for name in names[shift:] + names[:shift]:
            value = runs[name]()
            if turn >= warmup:
                kept[name].append(value)
    return kept


def at_least_five(text: str) -> int:
    """--samples: a median needs at least 5."""
    n = int(text)
    if n < 5:
        raise argparse.ArgumentTypeError("at least 5 samples")
    return n


def arguments(parser: argparse.ArgumentParser) -> None:
    """The options every bench takes: --samples (>= 5, after a discarded warm-up) and --quick
    (smaller sizes, never fewer samples)."""
    parser.add_argument(
        "--samples",
        type=at_least_five,
        default=5,
        help="samples of each figure, after a discarded warm-up (at least 5)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes (as many samples), for a quick look"
    )


def _num(value: float) -> str:
    """Three significant digits, without an exponent for large values."""
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _spread(values: list[float]) -> str:
    return f"{_num(min(values))}-{_num(max(values))}" if values else "-"


def table(figures: Iterable[Figure]) -> str:
    """The figures as one plain-text table."""
    rows = [("figure", "ours (median)", "spread", "baseline", "ratio", "goal", "result")]
    for f in figures:
        base = f.baseline_median
        rows.append(
            (
                f.name,
                " ".join(filter(None, (_num(f.median), f.unit, f"(n={len(f.ours)})"))),
                _spread(f.ours),
                "-"
                if base is None
                else " ".join(filter(None, (_num(base), f.unit, f.baseline_name))),
                "-" if f.ratio is None else f"{f.ratio:.2f}x",
                f.goal,
                {True: "PASS", False: "FAIL", None: "-"}[f.passed],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(map(str.ljust, row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def report(figures: list[Figure]) -> None:
    """Print the figures; append them to $BATCHHUB_BENCH_JSON for `make bench`'s table."""
    print(table(figures))
    out = os.environ.get("BATCHHUB_BENCH_JSON")
    if out:
        with open(out, "a") as f:
            for figure in figures:
                f.write(json.dumps(asdict(figure)) + "\n")


def load(path: str) -> list[Figure]:
    """Figures appended by bench scripts (none if no script wrote any)."""
    if not Path(path).is_file():
        return []
    with open(path) as f:
        return [Figure(**json.loads(line)) for line in f if line.strip()]


if __name__ == "__main__":
    figures = load(sys.argv[1])
    if not figures:
        print(f"no figures in {sys.argv[1]}: every bench failed before reporting")
        sys.exit(1)
    print(table(figures))
    failed = [f.name for f in figures if f.passed is False]
    print(f"\n{len(figures)} figures, {len(failed)} below their goal" + (": " if failed else ""))
    for name in failed:
        print(f"  {name}")
