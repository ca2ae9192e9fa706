"""Files a run writes under its job folder: found after the run, sent to the service to keep.

The service decides what it keeps (its cap per profile); the run's output says what was not.
"""

from __future__ import annotations

from pathlib import Path

from batch_service.runner.service_client import EventSender, ServiceClient

FileStates = dict[str, tuple[int, int]]


def file_states(workdir: Path) -> FileStates:
    """Regular files under a folder with their size and change time (links not followed)."""
    states = {}
    for path in workdir.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        relative = path.relative_to(workdir).as_posix()
        if ".ipynb_checkpoints" in relative.split("/"):
            continue
        info = path.stat()
        states[relative] = (info.st_size, info.st_mtime_ns)
    return states


def artifact_files(workdir: Path, before: FileStates, skip: set[str]) -> list[tuple[str, Path]]:
    """Files the run wrote (new or changed since it started), smallest first; the job's own
    input, unpacked module and executed notebook are kept elsewhere or came from the user."""
    found = [
        (state[0], relative)
        for relative, state in file_states(workdir).items()
        if relative not in skip and before.get(relative) != state
    ]
    return [(relative, workdir / relative) for _, relative in sorted(found)]


async def keep_artifacts(
    client: ServiceClient, events: EventSender, workdir: Path, before: FileStates, skip: set[str]
) -> None:
    """Send the files the run wrote under its job folder; say in the output what was not kept."""
    dropped = 0
    for relative, path in artifact_files(workdir, before, skip):
        reason = await client.upload_artifact(relative, path)
        if reason:
            dropped += 1
            events.send("output", index=None, lines=[f"batchhub: {reason}"])
    if dropped:
        events.send(
            "output",
            index=None,
            lines=[f"batchhub: {dropped} file(s) of this run were not kept; see the job page"],
        )
