"""What only the SQLite adapter has: its file format, migrations, pragmas, query plans,
shutdown, and several writers (threads, instances, processes) on one file."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import functools
import os
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database
from storage_support import START, STEP, Seed, everything_in, ids

from adapters.sqlite import (
    MIGRATIONS,
    Closed,
    SchemaOutOfDate,
    SchemaTooNew,
    SqliteStorage,
    migrate,
    queries,
)
from adapters.sqlite.connection import connect
from chatcore.errors import NotFound
from chatcore.events import MessagePosted
from chatcore.model import Chat, Message, MessageQuery, NewMessage, TokenRecord, User, UserType
from chatcore.roster import departure, promotion
from chatcore.rules import MAX_ID

HERE = Path(__file__).parent
VERSIONS = [migration.version for migration in MIGRATIONS]


@contextlib.contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def test_migrate_creates_the_schema_once_and_records_it(db_path: Path) -> None:
    assert migrate(db_path) == VERSIONS
    assert migrate(db_path) == []
    db = Database(db_path)
    try:
        recorded = [row["version"] for row in db.table("schema_migrations").rows]
        assert recorded == VERSIONS
        assert {"is_admin", "is_active", "username_key"} <= set(db.table("users").columns_dict)
        indexes = {index.name: index for index in db.table("messages").indexes}
        assert indexes["messages_chat"].columns == ["chat_id", "id"]
        assert indexes["messages_client_id"].unique
        members = {index.name: index.columns for index in db.table("chat_members").indexes}
        assert ["user_id", "chat_id"] in members.values()
        assert db.table("chat_members").pks == ["chat_id", "user_id"]
    finally:
        db.close()


def test_concurrent_migrations_apply_each_version_once(db_path: Path) -> None:
    """Servers starting together on a new file: the WAL switch and every migration
    happen once, and nobody sees "database is locked"."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        applied = list(pool.map(lambda _: migrate(db_path), range(6)))
    assert sorted(version for versions in applied for version in versions) == VERSIONS


V1_ROWS = """
INSERT INTO users (id, username, username_key, email, user_type, date_joined, password_hash)
VALUES (1, 'Olga', 'olga', 'olga@example.com', 'owner', '2025-06-01T12:00:00.000001+00:00', 'h1'),
       (2, 'Ben', 'ben', '', 'student', '2025-06-02T12:00:00.000002+00:00', 'h2');
INSERT INTO chats (id, name, created_at, last_activity)
VALUES (1, 'Plans', '2025-06-03T00:00:00.000000+00:00', '2025-06-03T00:00:00.000000+00:00');
INSERT INTO chat_members (chat_id, user_id) VALUES (1, 1), (1, 2);
INSERT INTO messages (id, chat_id, sender_id, content, timestamp, client_id)
VALUES (1, 1, 1, 'hi', '2025-06-04T08:00:00.000000+00:00', 'c-1'),
       (2, 1, 2, 'hello', '2025-06-04T08:00:01.500000+00:00', NULL);
UPDATE chats SET last_message_id = 2, last_activity = '2025-06-04T08:00:01.500000+00:00';
INSERT INTO tokens (digest, user_id, created_at, expires_at)
VALUES ('d-1', 1, '2025-06-01T12:00:00.000001+00:00', '2025-06-15T12:00:00.000001+00:00');
"""


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


async def test_migrating_a_version_1_file_keeps_every_row(db_path: Path) -> None:
    assert migrate(db_path, target=1) == [1]
    with raw(db_path) as conn:
        conn.executescript(V1_ROWS)
    assert migrate(db_path) == VERSIONS[1:]
    with SqliteStorage(db_path, migrate=False) as storage:
        olga = User(1, "Olga", "olga@example.com", UserType.OWNER, at(2025, 6, 1, 12, 0, 0, 1))
        ben = User(2, "Ben", "", UserType.STUDENT, at(2025, 6, 2, 12, 0, 0, 2))
        assert await storage.users.get_many([1, 2]) == [olga, ben]
        assert not olga.is_admin
        assert olga.is_active
        assert await storage.users.password_hash("OLGA") == (olga, "h1")
        hi = Message(1, 1, olga, "hi", at(2025, 6, 4, 8, 0, 0), "c-1")
        hello = Message(2, 1, ben, "hello", at(2025, 6, 4, 8, 0, 1, 500000))
        assert await storage.messages.page(MessageQuery(limit=10, member_id=2)) == [hi, hello]
        (chat,) = await storage.chats.for_user(1, 100)
        assert (chat.name, chat.participants, chat.last_message) == ("Plans", (olga, ben), hello)
        # Migration 7: each message its `message` event in id order, the chat's seq their
        # count, and the lowest-id participant the admin (no creator was stored).
        assert (chat.seq, chat.admins) == (2, (1,))
        assert await storage.chats.events(1, 0, 10) == [
            MessagePosted(1, 1, hi),
            MessagePosted(1, 2, hello),
        ]
        token = TokenRecord("d-1", 1, olga.date_joined, at(2025, 6, 15, 12, 0, 0, 1))
        assert await storage.tokens.get("d-1") == token
        # the old rows keep working with new writes: dedup, ids, activity
        retry = NewMessage(1, 1, "hi again", at(2026, 1, 1), "c-1")
        assert await storage.messages.add(retry) == (hi, None)
        new, created = await storage.messages.add(NewMessage(1, 2, "new", at(2026, 1, 2)))
        assert created == MessagePosted(1, 3, new)
        assert new.id == 3
        assert (await storage.chats.for_user(2, 100))[0].last_message == new


def test_a_file_from_a_newer_version_is_refused(db_path: Path) -> None:
    migrate(db_path)
    with raw(db_path) as conn:
        conn.execute(
            "INSERT INTO schema_migrations VALUES (99, 'from the future', '2030-01-01T00:00:00')"
        )
    with pytest.raises(SchemaTooNew):
        SqliteStorage(db_path).open()
    with pytest.raises(SchemaTooNew):
        migrate(db_path)


def test_without_migrate_an_old_file_is_refused(db_path: Path) -> None:
    migrate(db_path, target=1)
    with pytest.raises(SchemaOutOfDate):
        SqliteStorage(db_path, migrate=False).open()


def test_every_connection_has_the_pragmas(db_path: Path) -> None:
    conn = connect(db_path)
    try:
        pragmas = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        values = [conn.execute(f"PRAGMA {name}").fetchone()[0] for name in pragmas]
        assert values == ["wal", 2, 1, 5000]  # synchronous 2 is FULL
    finally:
        conn.close()
    with raw(db_path) as plain:  # WAL is a property of the file
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_foreign_keys_are_enforced(db_path: Path) -> None:
    with SqliteStorage(db_path) as storage:
        with pytest.raises(NotFound):  # the adapter refuses unknown users before the insert
            await storage.chats.add("nobody here", [42], START)
        with pytest.raises(NotFound):  # and a non-member's message
            await storage.messages.add(NewMessage(7, 42, "to no chat", START))
    with raw(db_path) as conn:  # and the schema itself refuses such rows
        conn.execute("PRAGMA foreign_keys = ON")
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO chat_members (chat_id, user_id) VALUES (1, 42)")
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(
                "INSERT INTO messages (chat_id, sender_id, content, timestamp)"
                " VALUES (7, 42, 'to no chat', '2026-01-01T00:00:00+00:00')"
            )


async def test_times_are_stored_as_utc_text_with_microseconds(db_path: Path) -> None:
    with SqliteStorage(db_path) as storage:
        seed = Seed(storage)
        ann = await seed.user("ann")
        with pytest.raises(ValueError, match="naive"):
            await storage.chats.add("naive", [ann.id], datetime(2026, 1, 1))
    with raw(db_path) as conn:
        assert conn.execute("SELECT date_joined FROM users").fetchone() == (
            "2026-01-01T00:00:01.000001+00:00",
        )


async def test_everything_survives_closing_and_reopening(db_path: Path) -> None:
    with SqliteStorage(db_path) as storage:
        seed = Seed(storage)
        ann, ben = await seed.user("ann", is_admin=True), await seed.user("ben")
        chat = await seed.chat(ann, ben)
        sent = [await seed.send(chat, sender) for sender in (ann, ben, ann)]
        listed = await storage.chats.for_user(ben.id, 100)
    with SqliteStorage(db_path) as reopened:
        assert await reopened.users.get_many([ann.id, ben.id]) == [ann, ben]
        assert await everything_in(reopened, chat) == sent
        assert await reopened.chats.for_user(ben.id, 100) == listed


async def test_close_finishes_queued_writes_then_refuses_new_ones(db_path: Path) -> None:
    storage = SqliteStorage(db_path).open()
    seed = Seed(storage)
    ann = await seed.user("ann")
    chat = await seed.chat(ann)
    pending = asyncio.gather(*(seed.send(chat, ann, f"m{n}") for n in range(50)))
    await asyncio.sleep(0)  # every send is now queued, none answered
    storage.close()
    storage.close()  # closing twice is harmless
    sent = await pending
    with pytest.raises(Closed):
        await storage.users.get(ann.id)
    with SqliteStorage(db_path) as reopened:
        assert await everything_in(reopened, chat) == sent


async def test_token_lookups_on_the_calling_thread_see_every_commit_and_stop_at_close(
    db_path: Path,
) -> None:
    """The per-request token check runs on the caller's thread (its own connection):
    it sees a token the moment its write is answered, and gone the moment its deletion
    is, from any thread; once closed it refuses, as every other call does."""
    storage = SqliteStorage(db_path).open()
    ann = await Seed(storage).user("ann")
    record = TokenRecord("d" * 64, ann.id, START, START + timedelta(days=1))
    assert await storage.tokens.holder(record.digest) is None
    await storage.tokens.add(record)
    assert await storage.tokens.holder(record.digest) == (record, ann)

    def elsewhere() -> object:  # another thread with a loop of its own
        return asyncio.run(storage.tokens.holder(record.digest))

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(elsewhere).result() == (record, ann)
        await storage.tokens.delete(record.digest)
        assert pool.submit(elsewhere).result() is None
    assert await storage.tokens.holder(record.digest) is None
    storage.close()
    with pytest.raises(Closed):
        await storage.tokens.holder(record.digest)


async def test_writers_of_one_file_take_turns_by_the_lock_beside_it(db_path: Path) -> None:
    """Servers sharing a file (``--workers``) wait for each other's write on a flock
    beside it, woken when it is let go, instead of SQLite's sleeping retries."""
    with SqliteStorage(db_path) as storage:
        await Seed(storage).user("ann")
        lock = os.open(f"{db_path}-writer.lock", os.O_RDWR)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another server's writer, mid-transaction
            pending = asyncio.ensure_future(Seed(storage).user("ben"))
            await asyncio.sleep(0.3)
            assert not pending.done()
            fcntl.flock(lock, fcntl.LOCK_UN)
            assert (await asyncio.wait_for(pending, 30)).username == "ben"
        finally:
            os.close(lock)


def _admit(tallies: object) -> None:
    return None


def explained(conn: sqlite3.Connection, work: Callable[[], object]) -> list[str]:
    """The query plan of every statement that ``work`` runs on ``conn``."""
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        work()
    finally:
        conn.set_trace_callback(None)
    return [
        detail
        for sql in statements
        for *_, detail in conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
    ]


async def test_no_hot_path_scans_a_table(db_path: Path) -> None:
    """Pages, chat lists and lookups go through indexes: their cost does not grow with
    the number of messages (a plan, not a stopwatch, is the evidence)."""
    with SqliteStorage(db_path) as storage:
        seed = Seed(storage)
        ann, ben = await seed.user("ann"), await seed.user("ben")
        chat = await seed.chat(ann, ben)
        for number in range(20):
            await seed.send(chat, ann, client_id=f"k{number}")
    conn = connect(db_path)
    try:
        work: list[Callable[[], object]] = [
            lambda: queries.page(conn, MessageQuery(limit=5, chat_id=chat.id)),
            lambda: queries.page(conn, MessageQuery(limit=5, chat_id=chat.id, before=9)),
            lambda: queries.page(
                conn, MessageQuery(limit=5, chat_id=chat.id, after=3, newest_first=False)
            ),
            lambda: queries.page(conn, MessageQuery(limit=5, member_id=ann.id, before=12)),
            lambda: queries.page(conn, MessageQuery(limit=5, member_id=ann.id, chat_id=chat.id)),
            lambda: queries.chats_of_user(conn, ben.id, 5, None),
            lambda: queries.chats_of_user(conn, ben.id, 5, chat.activity),
            lambda: queries.chat_for(conn, chat.id, ben.id),
            lambda: queries.get_chat(conn, chat.id),
            lambda: queries.is_participant(conn, chat.id, ben.id),
            lambda: queries.get_message(conn, 3),
            lambda: queries.add_message(conn, seed.draft(chat, ann, client_id="k3")),
            lambda: queries.users_by_names(conn, ["ANN", "ben"]),
            lambda: queries.get_users(conn, [ann.id, ben.id]),
            lambda: queries.password_hash(conn, "Ann"),
            lambda: queries.get_token(conn, "digest"),
            lambda: queries.delete_user_tokens(conn, ann.id),
            lambda: queries.all_chats(conn, chat.id - 1, 5),
            lambda: queries.hit(conn, ["user:ann", "b"], START, timedelta(hours=1), _admit),
            lambda: queries.release_attempts(conn, ["user:ann"], START),
            lambda: queries.clear_attempts(conn, "user:ann"),
            lambda: queries.delete_message(conn, 4),
            lambda: queries.edit_message(conn, 5, "edited", START),
            lambda: queries.chat_events(conn, chat.id, 3, 5),
            lambda: queries.change_chat(conn, chat.id, lambda roster: promotion(roster, ben.id)),
            lambda: queries.delete_user(conn, ben.id, departure(ben.id)),
            lambda: queries.delete_chat(conn, chat.id),
        ]
        for step in work:
            plan = explained(conn, step)
            assert plan, step
            scans = [
                d for d in plan if d.startswith("SCAN") and d not in ("SCAN CONSTANT ROW", "SCAN s")
            ]
            assert [d for d in scans if "json_each" not in d] == [], plan
    finally:
        conn.close()


def vm_steps(conn: sqlite3.Connection, work: Callable[[], object]) -> int:
    """How many SQLite virtual machine instructions ``work`` costs: a measure of the rows
    it visits that, unlike a stopwatch, does not depend on the machine."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    conn.set_progress_handler(count, 1)
    try:
        work()
    finally:
        conn.set_progress_handler(None, 1)
    return steps


def read_costs(conn: sqlite3.Connection, chat: Chat, member: User, cut: int) -> list[int]:
    """What a chat's pages, a member's pages, a chat list and a search cost, in steps."""
    reads: list[Callable[[], object]] = [
        lambda: queries.page(conn, MessageQuery(limit=20, chat_id=chat.id)),
        lambda: queries.page(conn, MessageQuery(limit=20, chat_id=chat.id, before=cut)),
        lambda: queries.page(conn, MessageQuery(limit=20, member_id=member.id)),
        lambda: queries.page(conn, MessageQuery(limit=20, member_id=member.id, before=cut)),
        lambda: queries.chats_of_user(conn, member.id, 20, None),
        lambda: queries.search_users(conn, "an", None, 20),
    ]
    return [vm_steps(conn, read) for read in reads]


async def test_reads_cost_the_same_with_ten_times_the_history(db_path: Path) -> None:
    with SqliteStorage(db_path) as storage:
        seed = Seed(storage)
        ann, ben = await seed.user("ann"), await seed.user("ben")
        busy, quiet, others = await seed.chat(ann, ben), await seed.chat(ann), await seed.chat(ben)
        await seed.send(quiet, ann)
        conn = connect(db_path)
        try:
            costs = []
            for history in (200, 2000):  # half in a chat of ann's, half in one she is not in
                sends = [seed.send(busy, ben) for _ in range(history // 2)]
                sends += [seed.send(others, ben) for _ in range(history // 2)]
                await asyncio.gather(*sends)
                cut = ids(await everything_in(storage, busy))[-40]
                costs.append(read_costs(conn, busy, ann, cut))
        finally:
            conn.close()
    small, large = costs
    assert large == small


def add_chats(
    conn: sqlite3.Connection, count: int, members: list[User], at: datetime
) -> list[Chat]:
    """``count`` chats of the same shape, one a second from ``at``, in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        added = [
            queries.add_chat(conn, f"chat {n}", [m.id for m in members], at + n * STEP)
            for n in range(count)
        ]
    finally:
        conn.execute("COMMIT")
    return added


async def test_a_page_of_the_chat_list_costs_the_same_at_a_hundred_times_the_chats(
    db_path: Path,
) -> None:
    """A stranger can add anyone to any number of chats: the first page and a page from a
    cursor cost as many steps when the user is in 10 chats as in 1,000 (and as many
    whatever the chats of others), so paging is what bounds a chat list's cost."""
    with SqliteStorage(db_path) as storage:
        seed = Seed(storage)
        ann, ben, cy = await seed.user("ann"), await seed.user("ben"), await seed.user("cy")
    conn = connect(db_path)
    try:
        costs = []
        added: list[Chat] = []
        for total in (10, 1000):
            start = START + len(added) * STEP
            added += add_chats(conn, total - len(added), [ann, ben], start)
            add_chats(conn, total, [ben, cy], START)  # chats ann is not in
            below = queries.chats_of_user(conn, ann.id, 3, None)[-1].activity
            first = queries.chats_of_user(conn, ann.id, 5, None)
            after = queries.chats_of_user(conn, ann.id, 5, below)
            assert [c.id for c in first] == [c.id for c in reversed(added)][:5]
            assert [c.id for c in after] == [c.id for c in reversed(added)][3:8]
            pages = [
                functools.partial(queries.chats_of_user, conn, ann.id, 5, b) for b in (None, below)
            ]
            costs.append([vm_steps(conn, page) for page in pages])
    finally:
        conn.close()
    small, large = costs
    assert large == small


async def test_a_chat_one_is_not_in_costs_what_a_missing_one_does(db_path: Path) -> None:
    """get_for: the same statements and the same steps for a stranger's chat, a chat that
    does not exist, and a user that does not exist; so timing cannot tell them apart."""
    with SqliteStorage(db_path) as storage:
        seed = Seed(storage)
        ann, ben, eve = [await seed.user(name) for name in ("ann", "ben", "eve")]
        chats = [await seed.chat(ann, ben) for _ in range(3)]
        for chat in chats:
            await seed.send(chat, ann)
        big = await seed.chat(*[await seed.user(f"u{n}") for n in range(50)], ann)
    conn = connect(db_path)
    try:

        def cost(chat_id: int, user_id: int) -> tuple[int, int]:
            """Steps, and statements run, to read the chat as that user."""
            statements: list[str] = []
            conn.set_trace_callback(statements.append)
            try:
                steps = vm_steps(conn, lambda: queries.chat_for(conn, chat_id, user_id))
            finally:
                conn.set_trace_callback(None)
            return steps, len(statements)

        strangers = (eve.id, eve.id + 100, MAX_ID)
        chat_ids = [*(c.id for c in chats), big.id, big.id + 1, 10**12, MAX_ID]
        refused = {cost(chat_id, user_id) for chat_id in chat_ids for user_id in strangers}
        assert len(refused) == 1, refused
        ((steps, statements),) = refused
        assert statements == 1  # nothing of the chat is read after the membership probe
        assert cost(chats[0].id, ann.id)[0] > steps  # a member's read does read the chat
    finally:
        conn.close()


async def test_memberships_carry_their_chats_activity_through_every_change(
    db_path: Path,
) -> None:
    """The chat list reads activity from the membership rows: the schema keeps it equal
    to the chat's after sends, deletions, a removed user, and a raw insert without it."""
    with SqliteStorage(db_path) as storage:
        seed = Seed(storage)
        ann, ben, cy = [await seed.user(name) for name in ("ann", "ben", "cy")]
        one, two = await seed.chat(ann, ben), await seed.chat(ann, ben, cy)
        last = await seed.send(one, ben)
        await seed.send(two, cy)
        await seed.send(two, ann)
        await storage.messages.delete(last.id)
        await storage.users.delete(ann.id, departure(ann.id))
        await seed.send(one, ben)
    with raw(db_path) as conn:
        conn.execute("INSERT INTO chat_members (chat_id, user_id) VALUES (?, ?)", (one.id, cy.id))
        conn.execute(
            "INSERT INTO chat_members (chat_id, user_id, last_activity) VALUES (?, ?, 'x')",
            (two.id, 999),
        )
        differ = conn.execute(
            "SELECT count(*) FROM chat_members cm JOIN chats c ON c.id = cm.chat_id"
            " WHERE cm.last_activity IS NOT c.last_activity"
        ).fetchone()
        assert differ == (0,)
