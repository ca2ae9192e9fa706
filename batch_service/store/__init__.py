"""The batch service's store: SQLAlchemy models, engine and migrations."""

from batch_service.store.db import Store, make_engine, migrate
from batch_service.store.orm import (
    Base,
    Job,
    JobFile,
    LogLine,
    NotificationSetting,
    Setting,
    Turn,
    Usage,
    Weight,
)

__all__ = [
    "Base",
    "Job",
    "JobFile",
    "LogLine",
    "NotificationSetting",
    "Setting",
    "Store",
    "Turn",
    "Usage",
    "Weight",
    "make_engine",
    "migrate",
]
