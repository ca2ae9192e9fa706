"""What the service records of the machine an exclusive run had to itself."""

from __future__ import annotations

from pathlib import Path

from batch_service.machine_record import MAX_SERVERS_SEEN, governors, note_servers


def governor_files(root: Path, by_cpu: dict[int, str]) -> Path:
    for cpu, name in by_cpu.items():
        folder = root / f"cpu{cpu}" / "cpufreq"
        folder.mkdir(parents=True)
        (folder / "scaling_governor").write_text(name + "\n")
    return root


def test_the_governor_of_the_runs_cpus_or_unknown(tmp_path: Path) -> None:
    root = governor_files(tmp_path, {0: "performance", 1: "performance", 2: "powersave"})
    assert governors((0, 1), root) == "performance"
    assert governors((0, 1, 2), root) == "performance on CPUs 0-1, powersave on CPUs 2"
    # No cpufreq (most virtual machines): said as unknown, never guessed.
    assert governors((7,), root) == "unknown"


def test_servers_seen_are_kept_once_and_bounded() -> None:
    record = {"servers_seen": ["ann/(default)"], "servers_seen_more": 0}
    assert note_servers(record, ["ann/(default)"]) is None
    more = note_servers(record, [f"u{i}/s" for i in range(MAX_SERVERS_SEEN + 5)])
    assert more is not None
    assert len(more["servers_seen"]) == MAX_SERVERS_SEEN
    assert more["servers_seen_more"] == 6
