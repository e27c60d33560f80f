"""PostgreSQL for tests: databases of their own on the machine's server (never another
helper's), created with a random suffix and dropped afterwards."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

import psycopg
from psycopg import sql

ADMIN_URL = os.environ.get(
    "CHATCORE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TABLES = ("events", "attempts", "tokens", "chat_members", "messages", "chats", "users")


def url_of(admin_url: str, name: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


@contextlib.contextmanager
def scratch_database(purpose: str, admin_url: str = ADMIN_URL) -> Iterator[str]:
    """A new, empty database for the block, dropped after it (its connections too)."""
    name = f"chatcore_test_{purpose}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url_of(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def tables_emptied(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute(
        sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
            sql.SQL(", ").join(sql.Identifier(t) for t in TABLES)
        )
    )
