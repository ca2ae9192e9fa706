"""Inserting many new rows of one model at once, without the ORM's unit of work.

A flush works out dependencies and fires attribute events for every object; for rows that are
only ever inserted together (a group of submissions: jobs, then their input files) one
executemany INSERT per table does the same for a fraction of the CPU, which the event loop
of the service shares with the thread that stores them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, inspect
from sqlalchemy.orm import Session

from batch_service.store.orm import Base


def insert_values(row: Base) -> dict[str, Any]:
    """Column values of a new (transient) object, as a flush would insert them: what it was
    given, and for the rest the column's Python-side default, which is also set on the object
    (its readers then see what the database holds)."""
    values: dict[str, Any] = {}
    for attribute in inspect(type(row)).column_attrs:
        key, column = attribute.key, attribute.columns[0]
        if key not in row.__dict__:
            default = column.default
            if default is None:
                value = None
            elif default.is_callable:
                value = default.arg(None)  # type: ignore[attr-defined]
            else:
                value = default.arg  # type: ignore[attr-defined]
            setattr(row, key, value)
        values[column.key] = row.__dict__[key]
    return values


def insert_new(session: Session, rows: Sequence[Base]) -> None:
    """INSERT new objects of one model in one executemany statement (none: nothing). The
    statement is on the table, not the model: the ORM's bulk path would look every key up."""
    if rows:
        table = type(rows[0]).__table__
        session.execute(insert(table), [insert_values(row) for row in rows])
