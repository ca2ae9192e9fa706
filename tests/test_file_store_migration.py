"""The migration to one file store: jobs from the old schema keep every byte of their files."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from batch_service.identity import SUBMIT, Identity
from batch_service.jobs import JobService
from batch_service.store import Store
from batch_service.store.db import downgrade, migrate
from spawner.profiles import load_profiles
from tests.batch import notebook
from tests.postgres import postgres_server

PROFILES = load_profiles([{"name": "cpu"}])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """One real PostgreSQL server for this module."""
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty database at revision 0002 (the schema that kept files as blobs)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
        with Store(url, tmp_path).engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    store = Store(url, tmp_path / "files")
    migrate(store.engine, None, revision="0002")
    yield store
    store.dispose()


def old_job(store: Store, job_id: str, owner: str, files: dict[str, tuple[str, bytes]]) -> None:
    """A job with its files as the 0002 schema stored them (content in job_files)."""
    with store.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO jobs (id, owner, state, kind, input_name, profile, parameters, "
                "time_limit, live_window, priority, submitted_at, live, progress_index, "
                "progress_total, current_cell, error_name, error_value, reason, last_seq, "
                "owner_groups) VALUES (:id, :owner, 'succeeded', 'notebook', :name, 'cpu', "
                "'{}', 600, 60, 0, 1.0, false, 0, 0, '', '', '', '', 0, '[]')"
            ),
            {"id": job_id, "owner": owner, "name": files["input"][0]},
        )
        for role, (name, content) in files.items():
            connection.execute(
                text(
                    "INSERT INTO job_files (job_id, role, name, size, content, stored_at) "
                    "VALUES (:j, :r, :n, :s, :c, 2.0)"
                ),
                {"j": job_id, "r": role, "n": name, "s": len(content), "c": content},
            )


def test_old_blobs_move_to_the_file_store_byte_for_byte(old_store: Store) -> None:
    jobs = {
        "aaaaaaaaa1": {
            "input": ("train.ipynb", notebook("x = 1")),
            "output": ("train.output.ipynb", notebook("x = 1", "y = 2")),
        },
        # Every byte value, and a file of a few MiB: binary content survives as is.
        "bbbbbbbbb2": {"input": ("mod.zip", bytes(range(256)) * 16384 + os.urandom(1000))},
        "ccccccccc3": {"input": ("résumé données.py", "print('é')\n".encode())},
    }
    for job_id, files in jobs.items():
        old_job(old_store, job_id, "alice", files)

    old_store.migrate()  # what the service does at start, with its files folder

    columns = {c["name"] for c in inspect(old_store.engine).get_columns("job_files")}
    assert "content" not in columns and "sha256" in columns
    service = JobService(old_store, PROFILES)
    alice = Identity("alice", frozenset({SUBMIT}))
    for job_id, files in jobs.items():
        for role, (name, content) in files.items():
            stored = service.file(alice, job_id, role)
            assert stored.name == name
            assert stored.read() == content
            assert stored.size == len(content)
            assert stored.sha256 == hashlib.sha256(content).hexdigest()
            assert stored.path.is_relative_to(old_store.files_root)
    # The old jobs go on working: listed, deletable (files go with them).
    assert service.list_jobs(alice)["total"] == 3
    service.delete(alice, "bbbbbbbbb2")
    assert not (old_store.files_root / "jobs" / "bbbbbbbbb2").exists()


def test_the_migration_refuses_to_drop_blobs_it_has_nowhere_to_put(old_store: Store) -> None:
    old_job(old_store, "ddddddddd4", "bob", {"input": ("a.py", b"x = 1\n")})
    with pytest.raises(RuntimeError, match="no file store folder"):
        migrate(old_store.engine, None)
    with old_store.engine.connect() as connection:
        kept = connection.execute(text("SELECT content FROM job_files")).scalar_one()
    assert bytes(kept) == b"x = 1\n"  # still in the database, nothing lost


def test_downgrade_reads_the_files_back(old_store: Store) -> None:
    content = secrets.token_bytes(5000)
    old_job(old_store, "eeeeeeeee5", "bob", {"input": ("blob.zip", content)})
    old_store.migrate()
    downgrade(old_store.engine, "0002", old_store.files_root)
    with old_store.engine.connect() as connection:
        back = connection.execute(text("SELECT content FROM job_files")).scalar_one()
    assert bytes(back) == content
