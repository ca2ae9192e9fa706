"""One file store: job files move out of the database; artifacts, datasets, uploads, quotas.

Every job_files blob is written to the file store (jobs/<job id>/<role>/<name>, fsynced, its
sha256 recorded) before the column that held it is dropped, all in the migration's transaction:
if anything fails the database keeps its blobs and the files written so far are harmless copies.

Revision ID: 0004
Revises: 0003
"""

import hashlib
import os
import secrets
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _files_root() -> Path | None:
    root = op.get_context().config.attributes.get("files_root")
    return Path(root) if root else None


def _write(root: Path, job_id: str, role: str, name: str, content: bytes) -> str:
    target = root / "jobs" / job_id / role / name
    if not target.resolve().is_relative_to(root.resolve()):
        raise RuntimeError(f"job {job_id}: file name {name!r} would leave the file store")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = root / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    temporary = staging / secrets.token_hex(12)
    with temporary.open("wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, target)
    return hashlib.sha256(content).hexdigest()


def upgrade() -> None:
    """Blobs to files, then the new tables."""
    bind = op.get_bind()
    job_files = sa.table(
        "job_files",
        sa.column("job_id", sa.String),
        sa.column("role", sa.String),
        sa.column("name", sa.String),
        sa.column("content", sa.LargeBinary),
    )
    with op.batch_alter_table("job_files") as table:
        table.add_column(sa.Column("sha256", sa.String(64), nullable=False, server_default=""))
    count = bind.execute(sa.select(sa.func.count()).select_from(job_files)).scalar() or 0
    root = _files_root()
    if count and root is None:
        raise RuntimeError(
            f"{count} job files are in the database and no file store folder was given to "
            "move them to: start the service (it passes its files folder) to migrate"
        )
    keys = bind.execute(sa.select(job_files.c.job_id, job_files.c.role)).all()
    moved = 0
    for job_id, role in keys:
        # One blob in memory at a time.
        name, content = bind.execute(
            sa.select(job_files.c.name, job_files.c.content).where(
                job_files.c.job_id == job_id, job_files.c.role == role
            )
        ).one()
        digest = _write(root, job_id, role, name, bytes(content))  # type: ignore[arg-type]
        bind.execute(
            sa.text("UPDATE job_files SET sha256 = :d WHERE job_id = :j AND role = :r"),
            {"d": digest, "j": job_id, "r": role},
        )
        moved += 1
    if moved != count:
        raise RuntimeError(f"moved {moved} of {count} job files; nothing dropped")
    with op.batch_alter_table("job_files") as table:
        table.drop_column("content")
        table.alter_column("size", type_=sa.BigInteger(), existing_type=sa.Integer())

    op.create_table(
        "artifacts",
        sa.Column(
            "job_id", sa.String(16), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("kept", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("stored_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("readers", sa.String(16), nullable=False),
        sa.Column("group_name", sa.String(255), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("ready_at", sa.Float(), nullable=True),
        sa.UniqueConstraint("name", name="uq_datasets_name"),
    )
    op.create_index("ix_datasets_owner", "datasets", ["owner"])
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column(
            "dataset_id",
            sa.String(16),
            sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("archive", sa.Boolean(), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=True),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("expected_sha256", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("completed_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_uploads_dataset", "uploads", ["dataset_id"])
    op.create_index("ix_uploads_owner", "uploads", ["owner"])
    op.create_index("ix_uploads_expires", "uploads", ["expires_at"])
    op.create_table(
        "quotas",
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    """Drop the new tables; read job files back into the database."""
    for table in ("quotas", "uploads", "datasets", "artifacts"):
        op.drop_table(table)
    bind = op.get_bind()
    with op.batch_alter_table("job_files") as table:
        table.add_column(sa.Column("content", sa.LargeBinary(), nullable=True))
    root = _files_root()
    rows = bind.execute(sa.text("SELECT job_id, role, name FROM job_files")).all()
    if rows and root is None:
        raise RuntimeError("no file store folder was given to read the job files back from")
    job_files = sa.table(
        "job_files",
        sa.column("job_id", sa.String),
        sa.column("role", sa.String),
        sa.column("content", sa.LargeBinary),
    )
    for job_id, role, name in rows:
        content = (root / "jobs" / job_id / role / name).read_bytes()  # type: ignore[operator]
        bind.execute(
            job_files.update()
            .where(job_files.c.job_id == job_id, job_files.c.role == role)
            .values(content=content)
        )
    with op.batch_alter_table("job_files") as table:
        table.alter_column("content", nullable=False, existing_type=sa.LargeBinary())
        table.alter_column("size", type_=sa.Integer(), existing_type=sa.BigInteger())
        table.drop_column("sha256")
