"""What only the SQLite attempt store has: several writers (threads with a storage each,
processes) sharing one file still admit exactly a limit, and ended rows leave the file."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from attempt_burst import KEY, burst
from storage_support import START

from adapters.sqlite import SqliteStorage
from adapters.sqlite.connection import connect
from chatcore.ports import Tally

HERE = Path(__file__).parent


def stored_keys(path: Path) -> list[bytes]:
    conn = connect(path)
    try:
        return [key for (key,) in conn.execute("SELECT key FROM attempts ORDER BY key")]
    finally:
        conn.close()


def test_threads_with_a_storage_each_admit_exactly_the_limit(db_path: Path) -> None:
    SqliteStorage(db_path).open().close()  # migrated once, before the race
    threads, hits, limit = 4, 40, 55
    start = threading.Barrier(threads)
    admitted: list[int] = []

    async def one() -> None:
        async with SqliteStorage(db_path) as storage:
            await asyncio.to_thread(start.wait)
            admitted.append(await burst(storage.attempts, hits, limit))

    workers = [threading.Thread(target=asyncio.run, args=(one(),)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(admitted) == threads
    assert sum(admitted) == limit
    assert stored_keys(db_path) == [KEY.encode()] * limit


async def test_ended_attempts_leave_the_file_whatever_their_key(db_path: Path) -> None:
    def admit(tallies: Sequence[Tally]) -> float | None:
        return None

    async with SqliteStorage(db_path) as storage:
        for n in range(50):
            await storage.attempts.hit([f"sprayed{n}"], START, timedelta(minutes=1), admit)
        await storage.attempts.hit(["later"], START + timedelta(minutes=1), timedelta(1), admit)
    assert stored_keys(db_path) == [b"later"]
