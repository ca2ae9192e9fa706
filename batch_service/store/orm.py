"""The service's tables: jobs, their files and artifacts, log lines, queue settings, turns,
datasets and the resumable uploads that fill them, quotas, notification settings, sweeps, and job
definitions (notebooks on a schedule) with the jobs they fired.

The service is the system of record; a server's disk is only a working copy. The bytes of every
file live in the file store (batch_service.files); these tables hold what is known about them.
Times are epoch seconds (floats) so SQLite and PostgreSQL store them the same way.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    """Declarative base of the batch service's tables."""


class Job(Base):
    """One queued notebook, script or module and everything known about its run."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    input_name: Mapped[str] = mapped_column(String(255))
    entry_point: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    profile: Mapped[str] = mapped_column(String(255))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # papermill's --report-mode: the executed notebook's code cells have their inputs hidden.
    report_mode: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Command-line arguments of a .py file or zipped module (its sys.argv[1:]).
    args: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    # What the submission was told: things papermill would run, but maybe not as meant.
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    time_limit: Mapped[int] = mapped_column(Integer)
    live_window: Mapped[int] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    # Fair share: the group the owner asked to be counted in, else one of their groups the
    # policy names (worked out at each decision, so admins' new group weights apply).
    group_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    owner_groups: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    submitted_at: Mapped[float] = mapped_column(Float)
    # All times are the service's own clock: when it asked the hub for the server (GPUs are
    # held from then), when the runner's first word arrived, when its last one did.
    admitted_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The start of the job's server that may report for it (its runner key derives from it).
    start_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The named server the job runs in: null means its own `batch-<id>`; a warm server of the
    # same owner and profile that an earlier run started is named after that run.
    server: Mapped[str | None] = mapped_column(String(64), nullable=True)
    live: Mapped[bool] = mapped_column(Boolean, default=False)
    # The run kept its kernel, but the hub cannot reach the server yet: not `live` until it can.
    live_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    live_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    # When the live kernel was let go: its GPU time after the run is charged then.
    live_ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    kernel_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    output_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    progress_index: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    current_cell: Mapped[str] = mapped_column(Text, default="")
    error_name: Mapped[str] = mapped_column(String(255), default="")
    error_value: Mapped[str] = mapped_column(Text, default="")
    failed_cell: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    # A point of a sweep: the sweep, and the hash of the point's parameters (one current job
    # per point; an earlier attempt keeps its sweep but gives up the hash).
    sweep_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    point_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Values the run recorded (scrapbook's glue, named outputs), read from its executed notebook.
    recorded: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    # An exclusive run: the machine as the service saw it (machine_record.py); else null.
    machine_record: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Adaptive sweeps: the Optuna trial this run is, or how many proposals led to this point
    # (a start point is 0); and whether its end was acted on (told, or its proposals taken).
    trial: Mapped[int | None] = mapped_column(Integer, nullable=True)
    depth: Mapped[int | None] = mapped_column(Integer, nullable=True)
    followed_up: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    files: Mapped[list[JobFile]] = relationship(
        back_populates="job", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        Index("ix_jobs_state_order", "state", "priority", "submitted_at"),
        Index("ix_jobs_owner_submitted", "owner", "submitted_at"),
        Index("ix_jobs_submitted", "submitted_at"),
        Index("ix_jobs_sweep_point", "sweep_id", "point_hash", unique=True),
    )


class JobFile(Base):
    """A job's input or output file; its bytes are in the file store under the job's folder."""

    __tablename__ = "job_files"

    job_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), default="", server_default="")
    stored_at: Mapped[float] = mapped_column(Float)

    job: Mapped[Job] = relationship(back_populates="files")


class Artifact(Base):
    """A file a run wrote under its job folder: kept (bytes in the store) or dropped (over the
    profile's cap; `reason` says why)."""

    __tablename__ = "artifacts"

    job_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    kept: Mapped[bool] = mapped_column(Boolean, default=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    stored_at: Mapped[float] = mapped_column(Float)


class LogLine(Base):
    """One line of a run's output, in the order the runner reported it."""

    __tablename__ = "log_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(16), ForeignKey("jobs.id", ondelete="CASCADE"))
    cell: Mapped[int | None] = mapped_column(Integer, nullable=True)
    text: Mapped[str] = mapped_column(Text)
    time: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_log_lines_job", "job_id", "id"),)


class Setting(Base):
    """A queue-wide setting an admin changes at run time (the pause switch)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class Weight(Base):
    """An admin-set fair-share weight of a user or a group."""

    __tablename__ = "weights"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    weight: Mapped[float] = mapped_column(Float)


class Usage(Base):
    """Decayed GPU-seconds charged to a user or group, as of `updated_at`."""

    __tablename__ = "usage"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    gpu_seconds: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class Turn(Base):
    """An interactive GPU server waiting in (or admitted by) the one GPU line."""

    __tablename__ = "turns"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    server: Mapped[str] = mapped_column(String(255))
    profile: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    owner_groups: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    submitted_at: Mapped[float] = mapped_column(Float)
    admitted_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # An admitted turn whose server stopped stays until its GPU time is settled.
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index("ix_turns_state", "state", "submitted_at"),)


class Dataset(Base):
    """Files a user brought, readable at /data/<name> by its readers once `ready`."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(255))
    # owner | group | everyone
    readers: Mapped[str] = mapped_column(String(16))
    group_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # uploading | ready
    state: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    files: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)
    ready_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (
        UniqueConstraint("name", name="uq_datasets_name"),
        Index("ix_datasets_owner", "owner"),
    )


class Upload(Base):
    """One resumable (tus) upload of a file into a dataset; bytes in the store's uploads/."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    dataset_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("datasets.id", ondelete="CASCADE")
    )
    # Where the file goes inside the dataset; a zip archive is unpacked there instead.
    path: Mapped[str] = mapped_column(String(1024))
    archive: Mapped[bool] = mapped_column(Boolean, default=False)
    # None while the client defers the length (tus creation-defer-length).
    length: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    expected_sha256: Mapped[str] = mapped_column(String(64), default="")
    sha256: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    completed_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (
        Index("ix_uploads_dataset", "dataset_id"),
        Index("ix_uploads_owner", "owner"),
        Index("ix_uploads_expires", "expires_at"),
    )


class Quota(Base):
    """An admin-set storage quota of a user or a group, in bytes (over the values file's)."""

    __tablename__ = "quotas"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    bytes: Mapped[int] = mapped_column(BigInteger)


class NotificationSetting(Base):
    """How one user wants to hear about their jobs and GPU turns beyond the browser."""

    __tablename__ = "notification_settings"

    owner: Mapped[str] = mapped_column(String(255), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), default="")
    webhook_url: Mapped[str] = mapped_column(String(2048), default="")
    # Webhook bodies are signed with it (HMAC-SHA256), so a receiver knows they are ours.
    webhook_secret: Mapped[str] = mapped_column(String(64))
    on_start: Mapped[bool] = mapped_column(Boolean, default=False)
    on_end: Mapped[bool] = mapped_column(Boolean, default=True)
    on_turn: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[float] = mapped_column(Float)


class Sweep(Base):
    """One input run over a set of parameter points; each point is a job of the sweep."""

    __tablename__ = "sweeps"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    input_name: Mapped[str] = mapped_column(String(255))
    input_sha256: Mapped[str] = mapped_column(String(64))
    profile: Mapped[str] = mapped_column(String(255))
    time_limit: Mapped[int] = mapped_column(Integer)
    max_parallel: Mapped[int] = mapped_column(Integer)
    # active | paused | cancelled | done
    state: Mapped[str] = mapped_column(String(16))
    # grid | table | random; optuna | explore choose their points while they run
    kind: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The canonical hash of input, spec and choices: resubmitting the same sweep finds it.
    spec_hash: Mapped[str] = mapped_column(String(64))
    budget: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    # Named outputs (papermill-style) to read besides scrapbook's glued values.
    record: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    # Live kernels: failed points keep theirs this long; succeeded ones only if asked.
    failed_live_window: Mapped[int] = mapped_column(Integer)
    keep_succeeded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[float] = mapped_column(Float)
    # What an adaptive sweep did: trials told, the best so far, proposals dropped and why.
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")

    # Two submissions of one sweep at once make one sweep (the second is told to submit again).
    __table_args__ = (Index("ix_sweeps_owner_spec", "owner", "spec_hash", unique=True),)


class JobDefinition(Base):
    """A notebook on a schedule: each firing submits a job as its owner (definitions.py)."""

    __tablename__ = "job_definitions"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    # The input, stored like a job's: bytes in the file store (definitions/<id>/input/<name>).
    kind: Mapped[str] = mapped_column(String(16))
    input_name: Mapped[str] = mapped_column(String(255))
    input_size: Mapped[int] = mapped_column(BigInteger)
    input_sha256: Mapped[str] = mapped_column(String(64))
    entry_point: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    profile: Mapped[str] = mapped_column(String(255))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # None: the profile's default at each firing.
    time_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The owner's hub groups when last saved: firings use them (nobody is logged in then).
    owner_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    schedule: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64))
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    # skip | queue: what a firing does while the previous job is still queued or running.
    on_overlap: Mapped[str] = mapped_column(String(8))
    # The next firing (epoch seconds); kept while paused, worked out again on resume.
    next_fire_at: Mapped[float] = mapped_column(Float)
    last_job_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    last_fired_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    last_skipped_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Why the last firing made no job (the profile went away, the input no longer passes).
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        Index("ix_job_definitions_due", "paused", "next_fire_at"),
        Index("ix_job_definitions_owner", "owner", "created_at"),
    )


class DefinitionJob(Base):
    """A job a definition's firing submitted (the definition's history)."""

    __tablename__ = "definition_jobs"

    definition_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("job_definitions.id", ondelete="CASCADE"), primary_key=True
    )
    job_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    fired_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_definition_jobs_job", "job_id"),)
