"""Errors a person can act on; handlers turn each into a JSON 4xx answer."""

from __future__ import annotations


class BatchError(Exception):
    """A refusal with an HTTP status and a message shown to the user as is."""

    status = 400

    def __init__(self, message: str, status: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # The form field the refusal is about, so that a page can show it next to that field.
        self.field = field
        if status is not None:
            self.status = status

    def __reduce__(self) -> tuple:
        # Checks run in worker processes: the status must survive the trip back.
        return (type(self), (self.message, self.status, self.field))


class NotFound(BatchError):
    """No such job for this user (also when it exists but belongs to someone else)."""

    status = 404


class Conflict(BatchError):
    """The job is in a state where this action makes no sense."""

    status = 409


class TooLarge(BatchError):
    """An upload over the configured limit."""

    status = 413
