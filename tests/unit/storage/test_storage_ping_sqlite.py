"""SQLite's ping raises for the faults a running server can meet: the storage closed, its
database file moved away (a directory renamed, a volume gone) or replaced by another file.
The open connections would go on working on the old file, so only ping can tell."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from storage_support import START

from adapters.prometheus import PrometheusMetrics
from adapters.sqlite import Closed, SqliteStorage
from adapters.sqlite.storage import Unreachable
from chatcore.model import NewUser, UserType
from metrics_support import scrape


async def test_a_closed_storage_fails_its_ping(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "chat.db")
    with pytest.raises(Closed):
        await storage.ping()  # not open yet
    storage.open()
    await storage.ping()
    storage.close()
    with pytest.raises(Closed):
        await storage.ping()


async def test_the_database_moved_away_fails_the_ping_until_it_is_back(tmp_path: Path) -> None:
    home = tmp_path / "data"
    home.mkdir()
    with SqliteStorage(home / "chat.db") as storage:
        await storage.ping()
        home.rename(tmp_path / "elsewhere")
        with pytest.raises(Unreachable, match=r"chat\.db"):
            await storage.ping()
        (tmp_path / "elsewhere").rename(home)
        await storage.ping()


async def test_a_file_put_in_place_of_the_database_fails_the_ping(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    with SqliteStorage(path) as storage:
        await storage.ping()
        shutil.copy(path, tmp_path / "copy.db")
        (tmp_path / "copy.db").replace(path)  # same name and content, another file
        with pytest.raises(Unreachable, match="no longer"):
            await storage.ping()


async def test_the_writer_reports_every_write_in_some_batch(tmp_path: Path) -> None:
    metrics = PrometheusMetrics()
    with SqliteStorage(tmp_path / "chat.db", metrics=metrics) as storage:
        writes = 40
        await asyncio.gather(
            *(
                storage.users.add(NewUser(f"u{n}", "", UserType.STUDENT, START), "hash")
                for n in range(writes)
            )
        )
        await storage.ping()  # a read: no batch
    figures = scrape(metrics.exposition())
    batches = figures["chatcore_storage_write_batch_size_count"]
    assert figures["chatcore_storage_write_batch_size_sum"] == writes
    assert 1 <= batches <= writes
    assert figures["chatcore_storage_write_batch_seconds_count"] == batches
    assert figures["chatcore_storage_write_batch_seconds_sum"] > 0
