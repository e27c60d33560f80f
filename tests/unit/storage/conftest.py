"""The storage contract runs once per adapter: every test taking ``storage`` is a test
of every adapter. A new adapter joins by adding a parameter here, and is not done until
the whole suite passes with it.

SQLite storage opens and closes without an event loop (it belongs to none), so the
fixture is plain; the tests are coroutines run by ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.memory import InMemoryStorage
from adapters.sqlite import SqliteStorage
from chatcore.ports import Storage


@pytest.fixture(params=["memory", "sqlite"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "memory":
        yield InMemoryStorage()
        return
    opened = SqliteStorage(tmp_path / "chat.db").open()
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A database file for the SQLite-only tests."""
    return tmp_path / "chat.db"
