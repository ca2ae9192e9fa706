"""The benchmarks' one table: figures that bench scripts append, printed by bench/_table.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench._table import Figure, interleaved, report, rounds

ROOT = Path(__file__).resolve().parent.parent


def test_table_of_appended_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two scripts append their figures; the table shows medians, spread, ratio and results."""
    out = tmp_path / "bench.jsonl"
    monkeypatch.setenv("BATCHHUB_BENCH_JSON", str(out))
    report([Figure("submit", "s", [3, 1, 2, 9, 2], [1, 1, 1, 1, 1], "papermill", goal_ratio=1.5)])
    report(
        [
            Figure("rate", "/s", [500] * 5, goal_value=430, higher_is_better=True),
            Figure("info", "ms", [1, 2, 3, 4, 5]),
        ]
    )
    shown = subprocess.run(
        [sys.executable, "bench/_table.py", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = {line.split("  ")[0]: line for line in shown.splitlines()}
    assert "2 s (n=5)" in rows["submit"] and "1-9" in rows["submit"]
    assert "1 s papermill" in rows["submit"] and "2.00x" in rows["submit"]
    assert rows["submit"].endswith("FAIL") and "<= 1.5x" in rows["submit"]
    assert rows["rate"].endswith("PASS") and ">= 430 /s" in rows["rate"]
    assert rows["info"].endswith("-")
    assert "3 figures, 1 below their goal" in shown


def test_missing_file_says_so(tmp_path: Path) -> None:
    """No figures at all (every bench crashed) is said in words and fails."""
    done = subprocess.run(
        [sys.executable, "bench/_table.py", str(tmp_path / "none.jsonl")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "no figures" in done.stdout


def test_samples_taken_in_turns() -> None:
    """After the warm-up, who goes first alternates (ABBA...); with more, the order rotates."""
    calls: list[str] = []

    def run(name: str):  # type: ignore[no-untyped-def]
        return lambda: calls.append(name) or float(len(calls))

    ours, theirs = interleaved(run("A"), run("B"), samples=5, warmup=1)
    assert calls == ["A", "B", "B", "A"] * 3 and len(ours) == len(theirs) == 5
    assert ours == [4.0, 5.0, 8.0, 9.0, 12.0]  # the warm-up turn's values are not kept
    calls.clear()
    kept = rounds({n: run(n) for n in "XYZ"}, samples=5, warmup=1)
    assert calls[:9] == list("XYZYZXZXY") and all(len(v) == 5 for v in kept.values())
