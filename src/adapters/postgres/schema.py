"""The PostgreSQL schema, as numbered migrations recorded in the database itself.

Each applied migration is a row of ``schema_migrations``. :func:`migrate` applies the
missing ones in order, each in its own transaction together with its row, after taking a
transaction-level advisory lock (``pg_advisory_xact_lock``) and re-reading the table
under it: several servers (or ``chatcore migrate`` runs) starting together against one
database apply each migration exactly once; the others wait for it, then find it
recorded. A migration never changes once released; a change of schema is a new one.

The shape follows the SQLite schema (same tables, same meaning) in PostgreSQL's types:
``bigint`` ids from sequences (never reused), ``timestamptz`` times (microseconds, UTC
on the wire), throttle keys as ``bytea`` (any str, lone surrogates included, is a key).
"""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import psycopg
from psycopg.rows import TupleRow

# Arbitrary constants, the same in every chatcore: the key of the advisory lock under
# which migrations are applied, and the one that orders message ids (see queries).
MIGRATION_LOCK = 7_240_101
MESSAGE_ID_LOCK = 7_240_102


@attrs.frozen
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer chatcore than this one."""


_V1 = (
    """
    CREATE TABLE users (
        id bigserial PRIMARY KEY,
        username text NOT NULL,
        username_key text NOT NULL UNIQUE,
        email text NOT NULL,
        user_type text NOT NULL,
        date_joined timestamptz NOT NULL,
        password_hash text NOT NULL,
        is_admin boolean NOT NULL DEFAULT false,
        is_active boolean NOT NULL DEFAULT true
    )
    """,
    """
    CREATE TABLE tokens (
        digest text PRIMARY KEY,
        user_id bigint NOT NULL REFERENCES users (id),
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
    )
    """,
    "CREATE INDEX tokens_user ON tokens (user_id)",
    "CREATE INDEX tokens_expires ON tokens (expires_at)",
    # A chat's latest activity and seq live on its row: listing chats never reads
    # messages, and the row is the lock that orders the chat's events.
    """
    CREATE TABLE chats (
        id bigserial PRIMARY KEY,
        name text NOT NULL,
        created_at timestamptz NOT NULL,
        last_message_id bigint,
        last_activity timestamptz NOT NULL,
        seq bigint NOT NULL DEFAULT 0
    )
    """,
    # Each membership carries its chat's activity, so that a page of a user's chat list
    # is one range of (user, activity, chat), whatever the number of their chats.
    """
    CREATE TABLE chat_members (
        chat_id bigint NOT NULL REFERENCES chats (id),
        user_id bigint NOT NULL REFERENCES users (id),
        is_admin boolean NOT NULL DEFAULT false,
        joined_seq bigint NOT NULL DEFAULT 0,
        last_activity timestamptz NOT NULL,
        PRIMARY KEY (chat_id, user_id)
    )
    """,
    "CREATE INDEX chat_members_activity ON chat_members (user_id, last_activity, chat_id)",
    """
    CREATE TABLE messages (
        id bigserial PRIMARY KEY,
        chat_id bigint NOT NULL REFERENCES chats (id),
        sender_id bigint NOT NULL REFERENCES users (id),
        content text NOT NULL,
        timestamp timestamptz NOT NULL,
        client_id text,
        edited_at timestamptz
    )
    """,
    "CREATE INDEX messages_chat ON messages (chat_id, id)",
    "CREATE INDEX messages_sender ON messages (sender_id)",
    "CREATE UNIQUE INDEX messages_client_id ON messages (chat_id, sender_id, client_id)"
    " WHERE client_id IS NOT NULL",
    "ALTER TABLE chats ADD FOREIGN KEY (last_message_id) REFERENCES messages (id)",
    "CREATE INDEX chats_last_message ON chats (last_message_id)",
    # Each chat's events, one row per seq, stored by the transaction of the change. A
    # row keeps ids and what a replay cannot read back (a member event's users).
    """
    CREATE TABLE events (
        chat_id bigint NOT NULL REFERENCES chats (id),
        seq bigint NOT NULL,
        kind text NOT NULL,
        message_id bigint,
        detail jsonb,
        PRIMARY KEY (chat_id, seq)
    )
    """,
    """
    CREATE TABLE attempts (
        id bigserial PRIMARY KEY,
        key bytea NOT NULL,
        at timestamptz NOT NULL,
        ends_at timestamptz NOT NULL
    )
    """,
    "CREATE INDEX attempts_key ON attempts (key, at)",
    "CREATE INDEX attempts_ends ON attempts (ends_at)",
    # The chat's activity is copied onto its memberships by the database itself, so no
    # statement that changes either table can leave them apart.
    """
    CREATE FUNCTION chat_members_take_activity() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        SELECT last_activity INTO NEW.last_activity FROM chats WHERE id = NEW.chat_id;
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER chat_members_take_activity BEFORE INSERT ON chat_members
    FOR EACH ROW EXECUTE FUNCTION chat_members_take_activity()
    """,
    """
    CREATE FUNCTION chats_give_activity() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE chat_members SET last_activity = NEW.last_activity WHERE chat_id = NEW.id;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER chats_give_activity AFTER UPDATE OF last_activity ON chats
    FOR EACH ROW WHEN (NEW.last_activity IS DISTINCT FROM OLD.last_activity)
    EXECUTE FUNCTION chats_give_activity()
    """,
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "users, tokens, chats, members, messages, event log, attempts", _V1),
)
LATEST = MIGRATIONS[-1].version


def migrate(url: str, target: int | None = None) -> list[int]:
    """Bring the database at ``url`` up to ``target`` (default: the latest version).
    Returns the versions this call applied, in order."""
    with psycopg.connect(url, autocommit=True) as conn:
        return migrate_connection(conn, target)


def migrate_connection(conn: psycopg.Connection[TupleRow], target: int | None) -> list[int]:
    applied: list[int] = []
    for migration in MIGRATIONS:
        if target is not None and migration.version > target:
            break
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, description text NOT NULL,"
                " applied_at timestamptz NOT NULL)"
            )
            if migration.version in recorded_versions(conn):
                continue
            for statement in migration.statements:
                conn.execute(statement.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, description, applied_at)"
                " VALUES (%s, %s, %s)",
                (migration.version, migration.description, datetime.now(UTC)),
            )
            applied.append(migration.version)
    return applied


def recorded_versions(conn: psycopg.Connection[TupleRow]) -> list[int]:
    """The versions applied, in order (none for a new database). Raises
    :class:`SchemaTooNew` when one is unknown to this code."""
    found = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not found or not found[0]:
        return []
    rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    versions = [int(version) for (version,) in rows]
    if versions and versions[-1] > LATEST:
        raise SchemaTooNew(
            f"the database is at schema version {versions[-1]}; this chatcore knows "
            f"versions up to {LATEST}"
        )
    return versions
