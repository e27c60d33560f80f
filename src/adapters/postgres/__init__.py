"""PostgreSQL storage: pooled async connections (psycopg 3), numbered migrations applied
once however many servers start together, ordering that holds across processes and
hosts (see :mod:`.queries`).

``PostgresStorage(url)`` implements :class:`chatcore.ports.Storage`; ``migrate(url)``
creates or upgrades the schema and returns the versions it applied.
"""

from .engine import Closed
from .maintenance import Unreachable, migration_status
from .schema import LATEST, MIGRATIONS, SchemaTooNew, migrate
from .storage import PostgresStorage, SchemaOutOfDate

__all__ = [
    "LATEST",
    "MIGRATIONS",
    "Closed",
    "PostgresStorage",
    "SchemaOutOfDate",
    "SchemaTooNew",
    "Unreachable",
    "migrate",
    "migration_status",
]
