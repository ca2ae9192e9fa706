"""Opening the store: engine (SQLite in WAL mode or PostgreSQL) and Alembic migrations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def normalise_url(url: str) -> str:
    """Use psycopg 3 for postgresql:// URLs (the driver batchhub installs)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    """An engine for the URL; SQLite gets WAL, foreign keys and a busy timeout."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            # WAL lets readers (the job list) go on while a submission commits.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def alembic_config(url: str) -> Config:
    """Alembic's config pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def _foreign_keys(connection: Connection, on: bool) -> None:
    """SQLite rebuilds a table to alter it (copy, drop, rename): with foreign keys on, dropping
    the old `jobs` would cascade to every job's files and logs. So they are off while migrating
    (the pragma counts only outside a transaction) and on again before the connection is reused.
    """
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
        connection.commit()


def migrate(engine: Engine, files_root: str | Path | None = None, revision: str = "head") -> None:
    """Bring the schema to the newest migration (safe to run at every start).

    `files_root` is the file store's folder: the migration that moved files out of the database
    writes them there.
    """
    _run_migrations(engine, command.upgrade, revision, files_root)


def downgrade(engine: Engine, revision: str, files_root: str | Path | None = None) -> None:
    """Go back to an older schema (for tests of the migrations)."""
    _run_migrations(engine, command.downgrade, revision, files_root)


def _run_migrations(
    engine: Engine,
    step: Callable[[Config, str], None],
    revision: str,
    files_root: str | Path | None,
) -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as connection:
        _foreign_keys(connection, on=False)
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                config.attributes["files_root"] = str(files_root) if files_root else None
                step(config, revision)
        finally:
            _foreign_keys(connection, on=True)


def default_files_root(url: str) -> Path | None:
    """Beside a SQLite database: its folder's `files/`; other databases name one explicitly."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Path(url.removeprefix("sqlite:///")).resolve().parent / "files"
    return None


class Store:
    """Sessions over one engine; `with store.session() as s:` commits or rolls back."""

    def __init__(self, url: str, files_root: str | Path | None = None) -> None:
        self.url = url
        self.files_root = Path(files_root) if files_root else default_files_root(url)
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Create or upgrade the schema (moving any old blobs into the file store)."""
        migrate(self.engine, self.files_root)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed at the end, rolled back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()
