"""Data: the async database, the kernel's tables, the database clock and migrations."""

from zstackpy.core.db.clock import DbEpoch, db_epoch
from zstackpy.core.db.engine import Database
from zstackpy.core.db.migrate import current_revision, ensure_at_head, head_revision, upgrade
from zstackpy.core.db.models import Base, GlobalConfigVO, ManagementNodeVO, ResourceVO

__all__ = [
    "Base",
    "Database",
    "DbEpoch",
    "GlobalConfigVO",
    "ManagementNodeVO",
    "ResourceVO",
    "current_revision",
    "db_epoch",
    "ensure_at_head",
    "head_revision",
    "upgrade",
]
