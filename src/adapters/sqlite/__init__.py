"""SQLite storage: one file, WAL, versioned migrations, SQL off the event loop.

``SqliteStorage(path)`` implements :class:`chatcore.ports.Storage`; ``migrate(path)``
creates or upgrades a database file and returns the versions it applied.
"""

from .engine import Closed
from .maintenance import BackupFailed, Unreachable, backup, migration_status
from .schema import LATEST, MIGRATIONS, SchemaTooNew, migrate
from .storage import SchemaOutOfDate, SqliteStorage

__all__ = [
    "LATEST",
    "MIGRATIONS",
    "BackupFailed",
    "Closed",
    "SchemaOutOfDate",
    "SchemaTooNew",
    "SqliteStorage",
    "Unreachable",
    "backup",
    "migrate",
    "migration_status",
]
