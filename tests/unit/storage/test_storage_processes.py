"""Several processes on one database, over every storage that processes can share (a
SQLite file, a PostgreSQL database: the ``shared_db`` fixture): writers of one chat get
one gapless seq order with ids growing with it, a writer killed mid-change leaves each
change with its event, three writers lose nothing, and a throttle admits exactly its
limit across processes."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import psycopg
from attempt_burst import KEY, burst
from storage_support import Seed, everything_in, ids, send_rounds, shared_storage

from chatcore.model import Chat, User

HERE = Path(__file__).parent
Rows = list[tuple[Any, ...]]


def _query(target: str, statement: str, *params: object) -> Rows:
    """Rows of one statement (``?`` placeholders) on the database at ``target``."""
    if target.startswith("postgresql://"):
        with psycopg.connect(target) as conn:
            return list(conn.execute(statement.replace("?", "%s"), params))
    conn = sqlite3.connect(target)
    try:
        return conn.execute(statement, params).fetchall()
    finally:
        conn.close()


async def child(script: str, *args: object) -> asyncio.subprocess.Process:
    """``python script ARGS`` from this folder, once it has printed ``ready``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / script),
        *map(str, args),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert await process.stdout.readline() == b"ready\n"
    return process


async def go(process: asyncio.subprocess.Process) -> None:
    assert process.stdin is not None
    process.stdin.write(b"go\n")
    await process.stdin.drain()


async def finished(process: asyncio.subprocess.Process) -> bytes:
    """Its output, once it has exited 0 (its errors explain a failure otherwise)."""
    output, errors = await process.communicate()
    assert process.returncode == 0, errors.decode()
    return output


async def writer(
    target: str, chat: Chat, actor: User, guest: User, tag: str, rounds: int
) -> asyncio.subprocess.Process:
    """A process changing the chat (storage_event_writer.py), ready for :func:`go`."""
    return await child("storage_event_writer.py", target, chat.id, actor.id, guest.id, tag, rounds)


def check_log(target: str, chat_id: int, initial: set[int]) -> list[int]:
    """Replays the chat's event rows over its state at creation and checks that they
    account for the stored state exactly: every change has its event and every event its
    change. Returns the seqs."""
    rows = _query(
        target,
        "SELECT seq, kind, message_id, detail FROM events WHERE chat_id = ? ORDER BY seq",
        chat_id,
    )
    ((seq,),) = _query(target, "SELECT seq FROM chats WHERE id = ?", chat_id)
    members = {
        m for (m,) in _query(target, "SELECT user_id FROM chat_members WHERE chat_id = ?", chat_id)
    }
    messages = dict(
        _query(target, "SELECT id, edited_at IS NOT NULL FROM messages WHERE chat_id = ?", chat_id)
    )
    alive: dict[int, bool] = {}
    people = set(initial)
    for _, kind, message_id, detail in rows:
        people_of = json.loads(detail) if isinstance(detail, str) else detail
        if kind == "message":
            alive[message_id] = False
        elif kind == "message_edited":
            alive[message_id] = True
        elif kind == "message_deleted":
            del alive[message_id]
        elif kind == "member_added":
            people.add(people_of["user"][0])
        elif kind == "member_removed":
            people.remove(people_of["user"][0])
    assert alive == {k: bool(v) for k, v in messages.items()}
    assert people == members
    assert [r[0] for r in rows] == list(range(1, seq + 1))
    return [r[0] for r in rows]


async def seeded(target: str, guests: int) -> tuple[Chat, User, list[User]]:
    with shared_storage(target) as storage:
        seed = Seed(storage)
        ann = await seed.user("ann")
        others = [await seed.user(f"guest{n}") for n in range(guests)]
        chat = await seed.chat(ann)
    return chat, ann, others


async def test_processes_writing_one_chat_get_one_gapless_seq_order(shared_db: str) -> None:
    chat, ann, guests = await seeded(shared_db, 3)
    children = [await writer(shared_db, chat, ann, g, g.username, 8) for g in guests]
    for process in children:
        await go(process)
    for process in children:
        await finished(process)
    seqs = check_log(shared_db, chat.id, {ann.id})
    assert len(seqs) == 3 * 8 * 6
    posted = _query(
        shared_db,
        "SELECT message_id FROM events WHERE chat_id = ? AND kind = 'message' ORDER BY seq",
        chat.id,
    )
    message_ids = [m for (m,) in posted]
    assert message_ids == sorted(message_ids)  # a chat's message ids grow with seq


async def test_a_writer_killed_mid_change_leaves_each_change_with_its_event(
    shared_db: str,
) -> None:
    """SIGKILL at an arbitrary moment of a loop of changes, again and again: whatever
    committed, committed with its events; nothing else did."""
    chat, ann, (guest,) = await seeded(shared_db, 1)
    for attempt in range(4):
        process = await writer(shared_db, chat, ann, guest, f"kill{attempt}", 0)
        await go(process)
        assert process.stdout is not None
        for _ in range(attempt + 1):
            assert (await process.stdout.readline()).startswith(b"round ")
        process.send_signal(signal.SIGKILL)
        await process.wait()
        assert process.returncode == -signal.SIGKILL
        check_log(shared_db, chat.id, {ann.id})
    # and the database goes on taking changes after each death
    process = await writer(shared_db, chat, ann, guest, "after", 1)
    await go(process)
    await finished(process)
    check_log(shared_db, chat.id, {ann.id})


async def test_two_storages_and_another_process_share_one_database(shared_db: str) -> None:
    """Three writers at once (two instances here, one in a child process): no "database
    is locked", nothing lost, one id order."""
    with shared_storage(shared_db) as first, shared_storage(shared_db) as second:
        seed = Seed(first)
        senders = [await seed.user(name) for name in ("one", "two", "child")]
        chat = await seed.chat(*senders)
        process = await child("storage_writer.py", shared_db, chat.id, senders[2].id, "child")
        try:
            await go(process)
            ours = await asyncio.gather(
                send_rounds(first, chat.id, senders[0].id, "first"),
                send_rounds(second, chat.id, senders[1].id, "second"),
            )
        finally:
            await finished(process)  # the child's failure explains ours
        stored = await everything_in(second, chat)
    expected = {*ours[0], *ours[1]} | {m.content for m in stored if m.sender == senders[2]}
    assert len(stored) == 3 * len(ours[0]) == len(expected)
    assert sorted({m.content for m in stored}) == sorted(expected)
    assert ids(stored) == sorted(set(ids(stored)))


async def test_two_processes_on_one_database_admit_exactly_the_limit(shared_db: str) -> None:
    hits, limit = 150, 180
    with shared_storage(shared_db) as storage:
        process = await child("attempt_hitter.py", shared_db, hits, limit)
        try:
            await go(process)
            ours = await burst(storage.attempts, hits, limit)
        finally:
            output = await finished(process)
    assert ours + int(output) == limit
    keys = [bytes(k) for (k,) in _query(shared_db, "SELECT key FROM attempts ORDER BY key")]
    assert keys == [KEY.encode()] * limit
