"""The schema, as numbered migrations recorded in the database itself.

Each applied migration is a row of ``schema_migrations`` (version, description,
applied_at). :func:`migrate` applies the missing ones in order, each in its own
``BEGIN IMMEDIATE`` transaction together with its row, and re-reads the table inside
that transaction: two processes migrating one file at once apply each migration once.
A migration never changes once released; a change of schema is a new migration.

DDL that sqlite-utils cannot express (AUTOINCREMENT, a partial unique index, a foreign
key to a table created later) is plain SQL; the rest goes through sqlite-utils.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

import attrs
from sqlite_utils import Database

from .connection import StrPath, connect

MIGRATIONS_TABLE = "schema_migrations"


@attrs.frozen
class Migration:
    version: int
    description: str
    apply: Callable[[Database], None]


class SchemaTooNew(RuntimeError):
    """The file was migrated by a newer chatcore than this one."""


def _v1_core_tables(db: Database) -> None:
    # AUTOINCREMENT: ids are never reused, even after a delete, so a message id seen by
    # a client always means the same message and ids grow in commit order.
    db.execute(
        """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            username TEXT NOT NULL,
            username_key TEXT NOT NULL,
            email TEXT NOT NULL,
            user_type TEXT NOT NULL,
            date_joined TEXT NOT NULL,
            password_hash TEXT NOT NULL
        )
        """
    )
    db.table("users").create_index(["username_key"], "users_username_key", unique=True)
    db.table("tokens").create(
        {"digest": str, "user_id": int, "created_at": str, "expires_at": str},
        pk="digest",
        not_null=["user_id", "created_at", "expires_at"],
        foreign_keys=[("user_id", "users", "id")],
    )
    db.table("tokens").create_index(["user_id"], "tokens_user")
    # A chat's latest activity lives on its row, so listing a user's chats never reads
    # messages. last_message_id refers to a table created below: plain SQL allows that.
    db.execute(
        """
        CREATE TABLE chats (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            created_at TEXT NOT NULL,
            last_message_id INTEGER REFERENCES messages (id),
            last_activity TEXT NOT NULL
        )
        """
    )
    db.table("chat_members").create(
        {"chat_id": int, "user_id": int},
        pk=("chat_id", "user_id"),
        not_null=["chat_id", "user_id"],
        foreign_keys=[("chat_id", "chats", "id"), ("user_id", "users", "id")],
    )
    db.table("chat_members").create_index(["user_id", "chat_id"], "chat_members_user")
    db.execute(
        """
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            chat_id INTEGER NOT NULL REFERENCES chats (id),
            sender_id INTEGER NOT NULL REFERENCES users (id),
            content TEXT NOT NULL,
            timestamp TEXT NOT NULL,
            client_id TEXT
        )
        """
    )
    db.table("messages").create_index(["chat_id", "id"], "messages_chat")
    db.execute(
        "CREATE UNIQUE INDEX messages_client_id ON messages (chat_id, sender_id, client_id) "
        "WHERE client_id IS NOT NULL"
    )


def _v2_user_flags(db: Database) -> None:
    users = db.table("users")
    users.add_column("is_admin", int, not_null_default=0)
    users.add_column("is_active", int, not_null_default=1)


def _v3_login_attempts(db: Database) -> None:
    # Keys are bytes (UTF-8, lone surrogates passed through): a key holds whatever name
    # someone tried to log in with, and every str must stay a distinct key.
    attempts = db.table("login_attempts")
    attempts.create({"key": bytes, "at": str}, not_null=["key", "at"])
    attempts.create_index(["key", "at"], "login_attempts_key")


def _v4_deletion_indexes(db: Database) -> None:
    # Deleting rows makes SQLite look for rows that refer to them (foreign keys), and
    # deleting a user finds their messages: without these, each would read a whole table.
    db.table("messages").create_index(["sender_id"], "messages_sender")
    db.table("chats").create_index(["last_message_id"], "chats_last_message")


def _v5_attempts(db: Database) -> None:
    # One table for every throttle (logins, registrations, chat creation). Each row
    # carries the end of its window, so that one indexed DELETE forgets every ended
    # attempt whatever its key. The old rows are only minutes of throttle state: they go.
    db.execute("DROP TABLE login_attempts")
    attempts = db.table("attempts")
    attempts.create({"key": bytes, "at": str, "ends_at": str}, not_null=["key", "at", "ends_at"])
    attempts.create_index(["key", "at"], "attempts_key")
    attempts.create_index(["ends_at"], "attempts_ends")


def _v6_chat_list_order(db: Database) -> None:
    # A page of a user's chat list, most recent activity first, is one range of an index
    # on (user, activity, chat): so each membership row carries its chat's activity, and
    # a page costs the same however many chats the user is in. (An index on the chats'
    # own activity would make a page walk every other user's chats too.) Triggers keep
    # the copy equal to the chat's whichever statement writes either table, at a cost of
    # one index entry per participant on each message.
    db.execute("ALTER TABLE chat_members ADD COLUMN last_activity TEXT NOT NULL DEFAULT ''")
    db.execute(
        "UPDATE chat_members SET last_activity ="
        " (SELECT last_activity FROM chats WHERE chats.id = chat_members.chat_id)"
    )
    db.execute(
        "CREATE INDEX chat_members_activity ON chat_members (user_id, last_activity, chat_id)"
    )
    db.execute(
        """
        CREATE TRIGGER chat_members_take_activity AFTER INSERT ON chat_members
        WHEN NEW.last_activity IS NOT (SELECT last_activity FROM chats WHERE id = NEW.chat_id)
        BEGIN
            UPDATE chat_members
            SET last_activity = (SELECT last_activity FROM chats WHERE id = NEW.chat_id)
            WHERE chat_id = NEW.chat_id AND user_id = NEW.user_id;
        END
        """
    )
    db.execute(
        """
        CREATE TRIGGER chats_give_activity AFTER UPDATE OF last_activity ON chats
        WHEN NEW.last_activity IS NOT OLD.last_activity
        BEGIN
            UPDATE chat_members SET last_activity = NEW.last_activity WHERE chat_id = NEW.id;
        END
        """
    )


def _v7_event_log(db: Database) -> None:
    # Each chat's events, one row per seq, stored by the same transaction as the change
    # (chats.seq is the latest). A row keeps only ids and what a replay cannot read back
    # (a member event's users, who may be deleted since); the rest is read as it is now,
    # so no edited or deleted content survives in the log. A page of events after a seq
    # is one range of the primary key: its cost does not grow with history.
    db.execute("ALTER TABLE chats ADD COLUMN seq INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE chat_members ADD COLUMN is_admin INTEGER NOT NULL DEFAULT 0")
    # The chat's seq when the member joined: the join order, ties broken by user id.
    db.execute("ALTER TABLE chat_members ADD COLUMN joined_seq INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE messages ADD COLUMN edited_at TEXT")
    db.execute(
        """
        CREATE TABLE events (
            chat_id INTEGER NOT NULL REFERENCES chats (id),
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            message_id INTEGER,
            detail TEXT,
            PRIMARY KEY (chat_id, seq)
        ) WITHOUT ROWID
        """
    )
    events_from_history(db.execute)


def events_from_history(execute: Callable[[str], object]) -> None:
    """Give a history stored without events its event log: each message a `message`
    event, in id order, and each chat's seq their count; no creator was stored, so each
    chat without an admin gets its lowest-id participant (its longest-standing, as all
    joined together), as a chat created without one does. The event-log migration runs it on
    the history it finds, and an import on the one it loads."""
    execute(
        "INSERT INTO events (chat_id, seq, kind, message_id)"
        " SELECT chat_id, row_number() OVER (PARTITION BY chat_id ORDER BY id), 'message', id"
        " FROM messages"
    )
    execute("UPDATE chats SET seq = (SELECT count(*) FROM messages WHERE chat_id = chats.id)")
    execute(
        "UPDATE chat_members SET is_admin = 1 WHERE user_id ="
        " (SELECT min(user_id) FROM chat_members m WHERE m.chat_id = chat_members.chat_id)"
        " AND NOT EXISTS (SELECT 1 FROM chat_members a"
        " WHERE a.chat_id = chat_members.chat_id AND a.is_admin)"
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "users, tokens, chats, chat members, messages", _v1_core_tables),
    Migration(2, "admin and active flags on users", _v2_user_flags),
    Migration(3, "failed login attempts, for throttling", _v3_login_attempts),
    Migration(4, "indexes for deleting users and messages", _v4_deletion_indexes),
    Migration(5, "attempts of every throttle, each with the end of its window", _v5_attempts),
    Migration(6, "chat activity on memberships, to page chat lists", _v6_chat_list_order),
    Migration(7, "each chat's event log, seqs, admins, join order, edits", _v7_event_log),
)
LATEST = MIGRATIONS[-1].version


def migrate(path: StrPath, target: int | None = None) -> list[int]:
    """Bring the database file up to ``target`` (default: the latest version), creating
    it if need be. Returns the versions this call applied, in order."""
    conn = connect(path)
    try:
        return migrate_connection(conn, target)
    finally:
        conn.close()


def migrate_connection(conn: sqlite3.Connection, target: int | None = None) -> list[int]:
    db = _database(conn)
    applied: list[int] = []
    for migration in MIGRATIONS:
        if target is not None and migration.version > target:
            break
        conn.execute("BEGIN IMMEDIATE")
        try:
            db.table(MIGRATIONS_TABLE).create(
                {"version": int, "description": str, "applied_at": str},
                pk="version",
                not_null=["description", "applied_at"],
                if_not_exists=True,
            )
            if migration.version not in recorded_versions(conn):
                migration.apply(db)
                db.table(MIGRATIONS_TABLE).insert(
                    {
                        "version": migration.version,
                        "description": migration.description,
                        "applied_at": datetime.now(UTC).isoformat(timespec="microseconds"),
                    }
                )
                applied.append(migration.version)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return applied


def recorded_versions(conn: sqlite3.Connection) -> list[int]:
    """The versions applied to the database, in order (none for a new file). Raises
    :class:`SchemaTooNew` when one is unknown to this code."""
    table = _database(conn).table(MIGRATIONS_TABLE)
    if not table.exists():
        return []
    versions = sorted(int(row["version"]) for row in table.rows)
    if versions and versions[-1] > LATEST:
        raise SchemaTooNew(
            f"the database is at schema version {versions[-1]}; this chatcore knows "
            f"versions up to {LATEST}"
        )
    return versions


def _database(conn: sqlite3.Connection) -> Database:
    return Database(conn, recursive_triggers=False, execute_plugins=False)
