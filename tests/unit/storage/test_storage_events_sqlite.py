"""The event log on one SQLite file: the cost of a page of events (several processes
writing at once, and a writer killed mid-change: test_storage_processes.py)."""

from __future__ import annotations

import functools
from pathlib import Path

from storage_support import Seed
from test_storage_sqlite import vm_steps

from adapters.sqlite import SqliteStorage, queries
from adapters.sqlite.connection import connect


async def test_a_page_of_events_costs_the_same_at_ten_times_the_history(db_path: Path) -> None:
    with SqliteStorage(db_path) as storage:
        seed = Seed(storage)
        ann, ben = await seed.user("ann"), await seed.user("ben")
        chat = await seed.chat(ann, ben)
        costs = []
        conn = connect(db_path)
        try:
            for history in (100, 1000):
                current = await storage.chats.get(chat.id)
                assert current is not None
                for n in range(history - current.seq):
                    await seed.send(chat, ann if n % 2 else ben, f"m{n}")
                cut = history - 40
                pages = [
                    functools.partial(queries.chat_events, conn, chat.id, cut, 20),
                    functools.partial(queries.chat_events, conn, chat.id, history - 10, 20),
                ]
                costs.append([vm_steps(conn, page) for page in pages])
        finally:
            conn.close()
    small, large = costs
    assert large == small
