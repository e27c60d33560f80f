"""What only the PostgreSQL adapter has: migrations applied once by servers starting
together, several processes writing one database (seqs gapless and in commit order, a
chat's ids growing with its seq, a writer killed mid-change), throttles shared across
processes, and ``after`` pages that never skip a message committed late."""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from attempt_burst import KEY, burst
from pg_support import scratch_database
from storage_support import Seed, everything_in, ids, send_rounds
from test_storage_events_sqlite import check_rows, go, seeded, writer

from adapters.postgres import LATEST, PostgresStorage, SchemaOutOfDate, migrate, queries
from chatcore.model import Message, MessageQuery, NewMessage

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


def check_log(url: str, chat_id: int, initial: set[int]) -> list[int]:
    """:func:`check_rows` over the rows of the PostgreSQL database."""
    with psycopg.connect(url) as conn:
        rows: list[tuple[int, str, int | None, Any]] = list(
            conn.execute(
                "SELECT seq, kind, message_id, detail FROM events WHERE chat_id = %s ORDER BY seq",
                (chat_id,),
            )
        )
        found = conn.execute("SELECT seq FROM chats WHERE id = %s", (chat_id,)).fetchone()
        assert found is not None
        members = conn.execute("SELECT user_id FROM chat_members WHERE chat_id = %s", (chat_id,))
        messages = conn.execute(
            "SELECT id, edited_at IS NOT NULL FROM messages WHERE chat_id = %s", (chat_id,)
        )
        return check_rows(
            rows, found[0], {m for (m,) in members}, dict(messages.fetchall()), initial
        )


async def test_processes_writing_one_chat_get_one_gapless_seq_order(empty_pg: str) -> None:
    chat, ann, guests = await seeded(empty_pg, 3)
    children = [await writer(empty_pg, chat, ann, g, g.username, 8) for g in guests]
    for child in children:
        go(child)
    for child in children:
        _, errors = await child.communicate()
        assert child.returncode == 0, errors.decode()
    seqs = check_log(empty_pg, chat.id, {ann.id})
    assert len(seqs) == 3 * 8 * 6
    with psycopg.connect(empty_pg) as conn:
        posted = conn.execute(
            "SELECT message_id FROM events WHERE chat_id = %s AND kind = 'message' ORDER BY seq",
            (chat.id,),
        )
        message_ids = [m for (m,) in posted]
    assert message_ids == sorted(message_ids)  # a chat's message ids grow with seq


async def test_a_writer_killed_mid_change_leaves_each_change_with_its_event(empty_pg: str) -> None:
    chat, ann, (guest,) = await seeded(empty_pg, 1)
    for attempt in range(3):
        child = await writer(empty_pg, chat, ann, guest, f"kill{attempt}", 0)
        go(child)
        assert child.stdout is not None
        for _ in range(attempt + 1):
            assert (await child.stdout.readline()).startswith(b"round ")
        child.send_signal(signal.SIGKILL)
        await child.wait()
        assert child.returncode == -signal.SIGKILL
        check_log(empty_pg, chat.id, {ann.id})
    child = await writer(empty_pg, chat, ann, guest, "after", 1)
    go(child)
    _, errors = await child.communicate()
    assert child.returncode == 0, errors.decode()
    check_log(empty_pg, chat.id, {ann.id})


async def test_two_storages_and_another_process_share_one_database(empty_pg: str) -> None:
    with PostgresStorage(empty_pg) as first, PostgresStorage(empty_pg) as second:
        seed = Seed(first)
        senders = [await seed.user(name) for name in ("one", "two", "child")]
        chat = await seed.chat(*senders)
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "storage_writer.py"),
            empty_pg,
            str(chat.id),
            str(senders[2].id),
            "child",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert child.stdin is not None
            assert child.stdout is not None
            assert await child.stdout.readline() == b"ready\n"
            child.stdin.write(b"go\n")
            await child.stdin.drain()
            ours = await asyncio.gather(
                send_rounds(first, chat.id, senders[0].id, "first"),
                send_rounds(second, chat.id, senders[1].id, "second"),
            )
        finally:
            _, errors = await child.communicate()
            assert child.returncode == 0, errors.decode()
        stored = await everything_in(second, chat)
    expected = {*ours[0], *ours[1]} | {m.content for m in stored if m.sender == senders[2]}
    assert len(stored) == 3 * len(ours[0]) == len(expected)
    assert ids(stored) == sorted(set(ids(stored)))


async def test_two_processes_on_one_database_admit_exactly_the_limit(empty_pg: str) -> None:
    hits, limit = 60, 70
    async with PostgresStorage(empty_pg) as storage:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "attempt_hitter.py"),
            empty_pg,
            str(hits),
            str(limit),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert child.stdin is not None
            assert child.stdout is not None
            assert await child.stdout.readline() == b"ready\n"
            child.stdin.write(b"go\n")
            await child.stdin.drain()
            ours = await burst(storage.attempts, hits, limit)
        finally:
            output, errors = await child.communicate()
            assert child.returncode == 0, errors.decode()
    assert ours + int(output) == limit
    with psycopg.connect(empty_pg) as conn:
        keys = [bytes(k) for (k,) in conn.execute("SELECT key FROM attempts")]
    assert keys == [KEY.encode()] * limit


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
