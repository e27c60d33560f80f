"""What only the PostgreSQL adapter has: migrations applied once by servers starting
together, and ``after`` pages that never skip a message committed late. (Several
processes writing one database: test_storage_processes.py, over SQLite too.)"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from storage_support import Seed, everything_in, ids

from adapters.postgres import LATEST, PostgresStorage, SchemaOutOfDate, migrate, queries
from chatcore.errors import Unavailable
from chatcore.model import Message, MessageQuery, NewMessage
from pg_support import private_cluster, scratch_database

HERE = Path(__file__).parent
MIGRATOR = """
import sys
from adapters.postgres import migrate
print("ready", flush=True)
sys.stdin.readline()
print(migrate(sys.argv[1]), flush=True)
"""


async def test_servers_starting_together_apply_each_migration_once() -> None:
    with scratch_database("migrate") as url:
        children = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                MIGRATOR,
                url,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for _ in range(4)
        ]
        for child in children:  # all of them ready (imported) before any goes
            assert child.stdout is not None
            assert await child.stdout.readline() == b"ready\n"
        for child in children:
            assert child.stdin is not None
            child.stdin.write(b"go\n")
        outputs = []
        for child in children:
            out, errors = await child.communicate()
            assert child.returncode == 0, errors.decode()
            outputs.append(out.decode().strip())
        every = str(list(range(1, LATEST + 1)))
        assert sorted(outputs, key=len) == ["[]", "[]", "[]", every]
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version")
            assert [v for (v,) in rows] == list(range(1, LATEST + 1))
        assert migrate(url) == []


def test_without_migrate_a_new_database_is_refused() -> None:
    with scratch_database("nomigrate") as url:
        with pytest.raises(SchemaOutOfDate, match="chatcore migrate"):
            PostgresStorage(url, migrate=False).open()
        migrate(url)
        PostgresStorage(url, migrate=False).open().close()


async def _waiting_for_the_id_lock(url: str) -> None:
    """Until some transaction of the database waits for the message id lock (bounded)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(2000):
            row = conn.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
                " WHERE d.datname = current_database() AND l.locktype = 'advisory'"
                " AND NOT l.granted"
            ).fetchone()
            if row and row[0]:
                return
            await asyncio.sleep(0.01)
    raise AssertionError("no sender ever waited for the message id lock")


async def test_an_after_page_never_skips_a_message_that_commits_late(empty_pg: str) -> None:
    """A send holds its transaction open (its message id taken, not committed) while a
    send to another chat tries to commit. Whatever a reader paging ``after`` sees in the
    meantime, it goes on to see the held message too: nothing committed past it first."""
    async with PostgresStorage(empty_pg) as storage:
        seed = Seed(storage)
        ann, ben = await seed.user("ann"), await seed.user("ben")
        held_chat, other_chat = await seed.chat(ann, ben), await seed.chat(ann, ben)
        first = await seed.send(held_chat, ann, "before")

        async def page_after(cursor: int) -> list[Message]:
            query = MessageQuery(limit=100, member_id=ben.id, after=cursor, newest_first=False)
            return await storage.messages.page(query)

        held = await psycopg.AsyncConnection.connect(empty_pg)
        try:
            draft = NewMessage(held_chat.id, ann.id, "held", datetime.now(UTC))
            held_message, _ = await queries.add_message(held, draft)  # open, not committed
            later = asyncio.create_task(seed.send(other_chat, ben, "later"))
            await _waiting_for_the_id_lock(empty_pg)
            # The later send cannot commit an id past the held one: a reader sees neither.
            assert await page_after(first.id) == []
            assert not later.done()
            await held.commit()
        finally:
            await held.close()
        late = await later
        assert held_message.id < late.id
        assert [m.content for m in await page_after(first.id)] == ["held", "later"]
        # per chat as well
        chat_page = MessageQuery(limit=10, chat_id=held_chat.id, after=first.id)
        assert [m.id for m in await storage.messages.page(chat_page)] == [held_message.id]


async def test_a_reader_paging_after_while_many_write_misses_nothing(empty_pg: str) -> None:
    """Senders on several chats at once and a reader following ``after`` the whole time:
    the reader's pages, put together, are every message, once each, in id order."""
    async with PostgresStorage(empty_pg) as storage:
        seed = Seed(storage)
        ann = await seed.user("ann")
        chats = [await seed.chat(ann, name=f"chat {n}") for n in range(4)]
        done = asyncio.Event()
        seen: list[int] = []

        async def follow() -> None:
            cursor = 0
            while True:
                finished = done.is_set()
                query = MessageQuery(limit=7, member_id=ann.id, after=cursor, newest_first=False)
                page = await storage.messages.page(query)
                seen.extend(m.id for m in page)
                cursor = seen[-1] if seen else 0
                if finished and not page:
                    return

        async def send(chat_index: int) -> None:
            for n in range(25):
                await seed.send(chats[chat_index], ann, f"{chat_index}:{n}")

        reader = asyncio.create_task(follow())
        await asyncio.gather(*(send(n) for n in range(len(chats))))
        done.set()
        await reader
        stored = await storage.messages.page(MessageQuery(limit=1000, member_id=ann.id))
    assert seen == ids(stored)
    assert len(seen) == 100


async def test_a_stopped_database_is_unavailable_and_the_storage_recovers_by_itself() -> None:
    """A private server (never the machine's) stopped under an open storage: every call
    raises the domain's Unavailable, with a retry hint, never a driver error; started
    again, the same storage serves again, with what was stored before."""
    with private_cluster() as cluster:
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE chatcore")
        async with PostgresStorage(cluster.url("chatcore")) as storage:
            seed = Seed(storage)
            ann = await seed.user("ann")
            chat = await seed.chat(ann)
            kept = await seed.send(chat, ann, "before the outage")
            cluster.stop("immediate")
            for call in (storage.users.get(ann.id), seed.send(chat, ann, "during")):
                with pytest.raises(Unavailable) as raised:
                    await call
                assert raised.value.retry_after >= 1
            cluster.start()
            for _ in range(100):  # bounded: a probe a second
                try:
                    after = await seed.send(chat, ann, "after the outage")
                    break
                except Unavailable:
                    await asyncio.sleep(0.2)
            else:
                raise AssertionError("the storage never served again")
            assert [m.id for m in await everything_in(storage, chat)] == [kept.id, after.id]
