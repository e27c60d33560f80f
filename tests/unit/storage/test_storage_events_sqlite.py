"""The event log on one SQLite file: several processes writing at once, a writer killed
mid-change, and the cost of a page of events."""

from __future__ import annotations

import asyncio
import functools
import json
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

from storage_support import Seed, shared_storage
from test_storage_sqlite import vm_steps

from adapters.sqlite import SqliteStorage, queries
from adapters.sqlite.connection import connect
from chatcore.model import Chat, User

HERE = Path(__file__).parent
WRITER = HERE / "storage_event_writer.py"


async def writer(
    target: Path | str, chat: Chat, actor: User, guest: User, tag: str, rounds: int
) -> asyncio.subprocess.Process:
    """A child process changing the chat in the database at ``target`` (a SQLite file or
    a PostgreSQL URL), started and ready; :func:`go` sets it off."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WRITER),
        str(target),
        str(chat.id),
        str(actor.id),
        str(guest.id),
        tag,
        str(rounds),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    assert await child.stdout.readline() == b"ready\n"
    return child


def go(child: asyncio.subprocess.Process) -> None:
    assert child.stdin is not None
    child.stdin.write(b"go\n")


def check_log(db_path: Path, chat_id: int, initial: set[int]) -> list[int]:
    """:func:`check_rows` over the rows of a SQLite file."""
    conn = sqlite3.connect(db_path)
    try:
        rows = conn.execute(
            "SELECT seq, kind, message_id, detail FROM events WHERE chat_id = ? ORDER BY seq",
            (chat_id,),
        ).fetchall()
        (seq,) = conn.execute("SELECT seq FROM chats WHERE id = ?", (chat_id,)).fetchone()
        members = dict(
            conn.execute(
                "SELECT user_id, 1 FROM chat_members WHERE chat_id = ?", (chat_id,)
            ).fetchall()
        )
        messages = dict(
            conn.execute(
                "SELECT id, edited_at IS NOT NULL FROM messages WHERE chat_id = ?", (chat_id,)
            ).fetchall()
        )
    finally:
        conn.close()
    return check_rows(
        [(seq, kind, m, None if d is None else json.loads(d)) for seq, kind, m, d in rows],
        seq,
        set(members),
        messages,
        initial,
    )


def check_rows(
    rows: list[tuple[int, str, int | None, Any]],
    seq: int,
    members: set[int],
    messages: dict[int, bool],
    initial: set[int],
) -> list[int]:
    """Replays a chat's event rows (seq, kind, message id, detail) over its state at
    creation and checks that they account for the stored state (its seq, members, and
    messages with whether each was edited) exactly: every change has its event and
    every event its change. Returns the seqs."""
    alive: dict[int, bool] = {}
    people = set(initial)
    for _, kind, message_id, detail in rows:
        if kind == "message":
            alive[message_id] = False
        elif kind == "message_edited":
            alive[message_id] = True
        elif kind == "message_deleted":
            del alive[message_id]
        elif kind == "member_added":
            people.add(detail["user"][0])
        elif kind == "member_removed":
            people.remove(detail["user"][0])
    assert alive == messages
    assert people == members
    assert [r[0] for r in rows] == list(range(1, seq + 1))
    return [r[0] for r in rows]


async def seeded(target: Path | str, guests: int) -> tuple[Chat, User, list[User]]:
    with shared_storage(str(target)) as storage:
        seed = Seed(storage)
        ann = await seed.user("ann")
        others = [await seed.user(f"guest{n}") for n in range(guests)]
        chat = await seed.chat(ann)
    return chat, ann, others


async def test_processes_writing_one_chat_get_one_gapless_seq_order(db_path: Path) -> None:
    chat, ann, guests = await seeded(db_path, 3)
    children = [await writer(db_path, chat, ann, g, g.username, 8) for g in guests]
    for child in children:
        go(child)
    for child in children:
        _, errors = await child.communicate()
        assert child.returncode == 0, errors.decode()
    seqs = check_log(db_path, chat.id, {ann.id})
    assert len(seqs) == 3 * 8 * 6
    conn = connect(db_path)
    try:
        ids = [
            m
            for (m,) in conn.execute(
                "SELECT message_id FROM events WHERE chat_id = ? AND kind = 'message' ORDER BY seq",
                (chat.id,),
            )
        ]
    finally:
        conn.close()
    assert ids == sorted(ids)  # a chat's message ids grow with seq


async def test_a_writer_killed_mid_change_leaves_each_change_with_its_event(
    db_path: Path,
) -> None:
    """SIGKILL at an arbitrary moment of a loop of changes, again and again: whatever
    committed, committed with its events; nothing else did."""
    chat, ann, (guest,) = await seeded(db_path, 1)
    for attempt in range(4):
        child = await writer(db_path, chat, ann, guest, f"kill{attempt}", 0)
        go(child)
        assert child.stdout is not None
        for _ in range(attempt + 1):
            assert (await child.stdout.readline()).startswith(b"round ")
        child.send_signal(signal.SIGKILL)
        await child.wait()
        assert child.returncode == -signal.SIGKILL
        check_log(db_path, chat.id, {ann.id})
    # and the file goes on taking changes after each death
    child = await writer(db_path, chat, ann, guest, "after", 1)
    go(child)
    _, errors = await child.communicate()
    assert child.returncode == 0, errors.decode()
    check_log(db_path, chat.id, {ann.id})


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
