"""The batch service's store: SQLAlchemy models, engine and migrations."""

from batch_service.store.db import Store, make_engine, migrate
from batch_service.store.orm import (
    Artifact,
    Base,
    Dataset,
    DefinitionJob,
    Job,
    JobDefinition,
    JobFile,
    LogLine,
    NotificationSetting,
    Quota,
    Setting,
    Sweep,
    Turn,
    Upload,
    Usage,
    Weight,
)

__all__ = [
    "Artifact",
    "Base",
    "Dataset",
    "DefinitionJob",
    "Job",
    "JobDefinition",
    "JobFile",
    "LogLine",
    "NotificationSetting",
    "Quota",
    "Setting",
    "Store",
    "Sweep",
    "Turn",
    "Upload",
    "Usage",
    "Weight",
    "make_engine",
    "migrate",
]
