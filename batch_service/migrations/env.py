"""Alembic environment: runs on the connection the service hands over (or its URL)."""

from alembic import context
from sqlalchemy import create_engine

from batch_service.store.orm import Base

target_metadata = Base.metadata


def run() -> None:
    """Run migrations online, on the caller's connection when there is one."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.connect() as own_connection:
        context.configure(connection=own_connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


run()
