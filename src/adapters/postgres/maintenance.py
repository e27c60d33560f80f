"""The operator's view of a database from outside a running server: which migrations it
has, read without changing anything."""

from __future__ import annotations

import psycopg

from .schema import MIGRATIONS, Migration, recorded_versions


class Unreachable(RuntimeError):
    """The database cannot be reached (refused, no such database, bad credentials)."""


def migration_status(url: str) -> list[tuple[Migration, bool]]:
    """Every migration this code knows, with whether the database has it. Raises
    :class:`Unreachable`, or ``SchemaTooNew`` for a database migrated by a newer chatcore."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            conn.read_only = True
            applied = set(recorded_versions(conn))
    except psycopg.Error as error:
        raise Unreachable(f"{redacted(url)}: {' '.join(str(error).split())}") from None
    return [(migration, migration.version in applied) for migration in MIGRATIONS]


def redacted(url: str) -> str:
    """The URL without its password, to print or log."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://..."
    host = info.get("host", "")
    port = f":{info['port']}" if "port" in info else ""
    user = f"{info['user']}@" if "user" in info else ""
    return f"postgresql://{user}{host}{port}/{info.get('dbname', '')}"
