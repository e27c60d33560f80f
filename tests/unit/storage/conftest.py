"""The storage contract runs once per adapter: every test taking ``storage`` is a test
of every adapter. A new adapter joins by adding a parameter here, and is not done until
the whole suite passes with it.

SQLite and PostgreSQL storage open and close without an event loop (they belong to
none), so the fixture is plain; the tests are coroutines run by ``tests/conftest.py``.

PostgreSQL: one database of this session's own (a random name, on the machine's
server), migrated once, dropped at the end; each test starts from empty tables
(TRUNCATE ... RESTART IDENTITY: ids start at 1 again, as in a new SQLite file).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from adapters.memory import InMemoryStorage
from adapters.postgres import PostgresStorage, migrate
from adapters.sqlite import SqliteStorage
from chatcore.ports import Storage
from pg_support import scratch_database, tables_emptied


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A migrated database of this test session's own."""
    with scratch_database("storage") as url:
        migrate(url)
        yield url


@pytest.fixture
def empty_pg(pg_url: str) -> str:
    """The session's database with every table emptied, ids starting from 1."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        tables_emptied(conn)
    return pg_url


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "memory":
        yield InMemoryStorage()
        return
    opened: SqliteStorage | PostgresStorage
    if request.param == "sqlite":
        opened = SqliteStorage(tmp_path / "chat.db").open()
    else:
        opened = PostgresStorage(request.getfixturevalue("empty_pg"), migrate=False).open()
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(params=["sqlite", "postgres"])
def shared_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database several processes can share, empty: a SQLite file's path, or the
    session's PostgreSQL database's URL."""
    if request.param == "sqlite":
        return str(tmp_path / "shared.db")
    return str(request.getfixturevalue("empty_pg"))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A database file for the SQLite-only tests."""
    return tmp_path / "chat.db"
