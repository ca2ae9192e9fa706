"""Alembic environment: runs on the connection the service hands over (or its URL)."""

from alembic import context
from sqlalchemy import create_engine

from batch_service.store.orm import Base
from batch_service.sweep_optuna import OPTUNA_TABLES

target_metadata = Base.metadata
# Optuna keeps its own tables in the same database (batch_service/sweep_optuna.py): they are
# not this service's models, so autogenerate leaves them alone.


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Only this service's tables are compared with its models."""
    return not (type_ == "table" and name in OPTUNA_TABLES)


def run() -> None:
    """Run migrations online, on the caller's connection when there is one."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, include_name=include_name
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.connect() as own_connection:
        context.configure(
            connection=own_connection, target_metadata=target_metadata, include_name=include_name
        )
        with context.begin_transaction():
            context.run_migrations()


run()
