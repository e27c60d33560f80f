"""The storage operations as SQL on one connection, each run by the engine inside one
transaction (a write: READ COMMITTED; a read: one REPEATABLE READ snapshot).

Ordering, under concurrent writers in any number of processes:

- **A chat's seq.** Every change of a chat locks the chat's row first (``UPDATE chats
  SET seq = seq + 1 ... RETURNING seq``, or ``SELECT ... FOR UPDATE`` when the change
  may turn out to be nothing), and holds it to COMMIT: the chat's changes are serialized,
  each takes the seq after the last committed one, so seqs are gapless and in commit
  order.
- **Message ids in commit order.** A sequence hands out ids when asked, not when the
  transaction commits: a transaction holding id 7 may commit after one holding id 8, and
  a reader paging ``after=6`` who saw 8 would go on from 8 and never see 7. So a sending
  transaction, after its chat lock, takes a transaction-level advisory lock
  (``MESSAGE_ID_LOCK``) and only then its id, and keeps the lock until it commits. Ids
  are therefore handed out and committed one transaction at a time: whoever sees id 8
  committed can see every smaller id that will ever exist. That holds for every reader
  at once (``GET /api/messages/?after=``, a chat's ``?after=``, ``before`` pages, the
  newest page), with no reader-side rule and no cost to reads; within a chat, ids grow
  with seq because the id is taken under the chat's lock.

  The alternative considered, rows stamped with their transaction's ``xid8`` and
  ``after`` pages cut at ``pg_snapshot_xmin(pg_current_snapshot())``, does not hold on
  its own: the xid is assigned at a transaction's first write (its chat lock), before it
  takes its id, so xid order and id order differ between chats, and a row below the
  horizon can still have an in-flight row of a smaller id; the horizon is also
  cluster-wide, so any long transaction in another database would stall every page.
  The cost of the lock chosen is that message inserts commit one at a time: the lock is
  taken as late as possible (after the membership check, the idempotency check and the
  chat lock) and covers one INSERT statement and the COMMIT. The SQLite adapter has one
  writer for the whole file, so neither adapter runs sends of two chats in parallel.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import attrs
from psycopg import errors as pg_errors

from adapters import sqlrows
from adapters.sqlrows import CHAT_COLUMNS, MESSAGE_COLUMNS, USER_COLUMNS, Row
from chatcore.errors import Conflict, NotFound
from chatcore.events import (
    ChatDeleted,
    ChatUpdated,
    Event,
    EventKind,
    MemberAdded,
    MemberRemoved,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    as_seen,
    message_event,
)
from chatcore.model import (
    Activity,
    Archive,
    Chat,
    Counts,
    LastIds,
    Message,
    MessageQuery,
    NewMessage,
    NewUser,
    StoredChat,
    StoredMessage,
    StoredUser,
    TokenRecord,
    User,
    UserChanges,
    UserType,
)
from chatcore.ports import Rule, Tally
from chatcore.roster import ChatChange, Plan, Roster
from chatcore.rules import MAX_ID, is_text, username_key

from .engine import Conn
from .schema import MESSAGE_ID_LOCK


def _select(columns: str, rest: str) -> str:
    """A SELECT of one of the column lists above: the only SQL built from parts, and
    every part is a constant of this module, never a value."""
    return f"SELECT {columns} {rest}"


def storable(text: str) -> bool:
    """Whether PostgreSQL's text can hold the string: real Unicode (no lone surrogate)
    without NUL. A lookup by anything else finds nothing."""
    return is_text(text) and "\x00" not in text


async def _one(conn: Conn, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Row | None:
    cursor = await conn.execute(sql.encode(), params)
    return await cursor.fetchone()


async def _all(conn: Conn, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
    cursor = await conn.execute(sql.encode(), params)
    return list(await cursor.fetchall())


async def _count(conn: Conn, sql: str, params: Sequence[Any] = ()) -> int:
    cursor = await conn.execute(sql.encode(), params)
    return cursor.rowcount


def _as_stored(moment: datetime) -> datetime:
    return moment  # timestamptz comes back as an aware datetime (the session is in UTC)


def _user(row: Row) -> User:
    return sqlrows.user(row, _as_stored)


def _message(row: Row) -> Message:
    return sqlrows.message(row, _as_stored)


def _seen_user(user: User) -> list[object]:
    """A user as an event row keeps them (:func:`chatcore.events.as_seen`)."""
    return [user.id, user.username, user.user_type.value, user.date_joined.isoformat()]


def _seen_user_value(value: Sequence[Any]) -> User:
    user_id, username, user_type, date_joined = value
    return User(user_id, username, "", UserType(user_type), datetime.fromisoformat(date_joined))


# users


async def add_user(conn: Conn, new: NewUser, password_hash: str) -> User:
    key = username_key(new.username)
    # Checked first, so that a taken name spends no id (a sequence never gives one back).
    if await _one(conn, "SELECT 1 FROM users WHERE username_key = %s", (key,)):
        raise Conflict("username taken")
    try:
        row = await _one(
            conn,
            "INSERT INTO users (username, username_key, email, user_type, date_joined,"
            " is_admin, password_hash) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                new.username,
                key,
                new.email,
                new.user_type.value,
                new.date_joined,
                new.is_admin,
                password_hash,
            ),
        )
    except pg_errors.UniqueViolation:  # taken meanwhile by a concurrent registration
        raise Conflict("username taken") from None
    assert row is not None
    stored = await get_user(conn, row[0])
    assert stored is not None
    return stored


async def get_user(conn: Conn, user_id: int) -> User | None:
    row = await _one(conn, _select(USER_COLUMNS, "FROM users u WHERE u.id = %s"), (user_id,))
    return None if row is None else _user(row)


async def get_users(conn: Conn, user_ids: Sequence[int]) -> list[User]:
    found = await _all(
        conn,
        _select(USER_COLUMNS, "FROM users u WHERE u.id = ANY(%s) ORDER BY u.id"),
        (list(user_ids),),
    )
    return [_user(row) for row in found]


async def users_by_names(conn: Conn, usernames: Sequence[str]) -> list[User]:
    keys = sorted({username_key(name) for name in usernames if storable(name)})
    found = await _all(
        conn,
        _select(USER_COLUMNS, "FROM users u WHERE u.username_key = ANY(%s) ORDER BY u.id"),
        (keys,),
    )
    return [_user(row) for row in found]


async def password_hash(conn: Conn, username: str) -> tuple[User, str] | None:
    if not storable(username):
        return None
    row = await _one(
        conn,
        _select(f"{USER_COLUMNS}, u.password_hash", "FROM users u WHERE u.username_key = %s"),
        (username_key(username),),
    )
    return None if row is None else (_user(row[:-1]), row[-1])


async def set_password_hash(conn: Conn, user_id: int, password_hash: str) -> None:
    await conn.execute(
        b"UPDATE users SET password_hash = %s WHERE id = %s", (password_hash, user_id)
    )


async def change_password(
    conn: Conn, user_id: int, password_hash: str, keep_digest: str | None
) -> bool:
    changed = await _count(
        conn, "UPDATE users SET password_hash = %s WHERE id = %s", (password_hash, user_id)
    )
    await conn.execute(
        b"DELETE FROM tokens WHERE user_id = %s AND digest IS DISTINCT FROM %s",
        (user_id, keep_digest),
    )
    return bool(changed)


async def search_users(conn: Conn, text: str, after: int | None, limit: int) -> list[User]:
    # A substring can use no index: this walks users in id order from ``after`` and stops
    # at ``limit`` matches. Its cost depends on the users, never on the messages.
    if not storable(text):
        return []
    found = await _all(
        conn,
        _select(
            USER_COLUMNS,
            "FROM users u WHERE u.id > %s AND strpos(u.username_key, %s) > 0"
            " ORDER BY u.id LIMIT %s",
        ),
        (0 if after is None else after, username_key(text), limit),
    )
    return [_user(row) for row in found]


async def update_user(conn: Conn, user_id: int, changes: UserChanges) -> User | None:
    user_type = None if changes.user_type is None else changes.user_type.value
    await conn.execute(
        b"UPDATE users SET user_type = coalesce(%s, user_type),"
        b" is_active = coalesce(%s, is_active), is_admin = coalesce(%s, is_admin),"
        b" email = coalesce(%s, email) WHERE id = %s",
        (user_type, changes.is_active, changes.is_admin, changes.email, user_id),
    )
    return await get_user(conn, user_id)


async def delete_user(conn: Conn, user_id: int, leave: Plan) -> list[Event] | None:
    if await _one(conn, "SELECT 1 FROM users WHERE id = %s FOR UPDATE", (user_id,)) is None:
        return None
    # Every chat this touches is locked up front, in id order, so that two deletions (or
    # a deletion and a change) meet in one order: no deadlock between them.
    await conn.execute(
        b"SELECT 1 FROM chats WHERE id IN (SELECT chat_id FROM messages WHERE sender_id = %s"
        b" UNION SELECT chat_id FROM chat_members WHERE user_id = %s) ORDER BY id FOR UPDATE",
        (user_id, user_id),
    )
    doomed = await _all(
        conn, "SELECT id, chat_id FROM messages WHERE sender_id = %s ORDER BY id", (user_id,)
    )
    events: list[Event] = [
        await _record(conn, MessageDeleted(chat_id, 0, message_id))
        for message_id, chat_id in doomed
    ]
    chat_ids = sorted({chat_id for _, chat_id in doomed})
    await conn.execute(
        b"UPDATE chats SET last_message_id = NULL"
        b" WHERE last_message_id IN (SELECT id FROM messages WHERE sender_id = %s)",
        (user_id,),
    )
    await conn.execute(b"DELETE FROM messages WHERE sender_id = %s", (user_id,))
    await _refresh_last_messages(conn, chat_ids)
    mine = await _all(
        conn, "SELECT chat_id FROM chat_members WHERE user_id = %s ORDER BY chat_id", (user_id,)
    )
    for (chat_id,) in mine:
        changed = await change_chat(conn, chat_id, leave)
        assert changed is not None
        events += changed[1]
    await conn.execute(b"DELETE FROM chat_members WHERE user_id = %s", (user_id,))
    await conn.execute(b"DELETE FROM tokens WHERE user_id = %s", (user_id,))
    await conn.execute(b"DELETE FROM users WHERE id = %s", (user_id,))
    return events


# chats


async def _require_users(conn: Conn, user_ids: Sequence[int]) -> None:
    """NotFound unless every one of these users exists, their rows locked against a
    deletion until commit: one deleted since the caller looked them up is not added (the
    transaction then changes nothing)."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return
    found = await _all(conn, "SELECT id FROM users WHERE id = ANY(%s) FOR KEY SHARE", (wanted,))
    if len(found) != len(wanted):
        raise NotFound


async def add_chat(
    conn: Conn,
    name: str,
    participant_ids: Sequence[int],
    created_at: datetime,
    admin_id: int | None = None,
) -> Chat:
    await _require_users(conn, participant_ids)
    row = await _one(
        conn,
        "INSERT INTO chats (name, created_at, last_activity) VALUES (%s, %s, %s) RETURNING id",
        (name, created_at, created_at),
    )
    assert row is not None
    chat_id = row[0]
    member_ids = sorted(set(participant_ids))
    admin = member_ids[0] if admin_id is None and member_ids else admin_id
    await conn.execute(  # the trigger gives each the chat's activity
        b"INSERT INTO chat_members (chat_id, user_id, is_admin)"
        b" SELECT %s, id, id = %s FROM unnest(%s::bigint[]) AS t(id)",
        (chat_id, admin, member_ids),
    )
    chat = await get_chat(conn, chat_id)
    assert chat is not None
    return chat


async def get_chat(conn: Conn, chat_id: int) -> Chat | None:
    row = await _one(conn, _select(CHAT_COLUMNS, "FROM chats c WHERE c.id = %s"), (chat_id,))
    return None if row is None else (await _chats(conn, [row]))[0]


async def chat_for(conn: Conn, chat_id: int, user_id: int) -> Chat | None:
    # The membership is the join's driving side: one primary-key probe decides, and a
    # chat the user is not in stops there exactly as a missing chat does.
    row = await _one(
        conn,
        _select(
            CHAT_COLUMNS,
            "FROM chat_members cm JOIN chats c ON c.id = cm.chat_id"
            " WHERE cm.chat_id = %s AND cm.user_id = %s",
        ),
        (chat_id, user_id),
    )
    return None if row is None else (await _chats(conn, [row]))[0]


async def is_participant(conn: Conn, chat_id: int, user_id: int) -> bool:
    found = await _one(
        conn, "SELECT 1 FROM chat_members WHERE chat_id = %s AND user_id = %s", (chat_id, user_id)
    )
    return found is not None


async def chats_of_user(conn: Conn, user_id: int, limit: int, below: Activity | None) -> list[Chat]:
    """A page of the user's chat list: ``limit`` entries of chat_members_activity read
    backwards from ``below`` (keyset paging), then the page's chats by primary key."""
    bound = "" if below is None else " AND (cm.last_activity, cm.chat_id) < (%(at)s, %(chat)s)"
    found = await _all(
        conn,
        _select(
            CHAT_COLUMNS,
            # Built from constants of this module only; every value is a parameter.
            "FROM chat_members cm JOIN chats c ON c.id = cm.chat_id"
            f" WHERE cm.user_id = %(user)s{bound}"
            " ORDER BY cm.last_activity DESC, cm.chat_id DESC LIMIT %(limit)s",
        ),
        {
            "user": user_id,
            "limit": limit,
            "at": None if below is None else below.at,
            "chat": None if below is None else below.chat_id,
        },
    )
    return await _chats(conn, found)


async def all_chats(conn: Conn, after: int | None, limit: int) -> list[Chat]:
    found = await _all(
        conn,
        _select(CHAT_COLUMNS, "FROM chats c WHERE c.id > %s ORDER BY c.id LIMIT %s"),
        (0 if after is None else after, limit),
    )
    return await _chats(conn, found)


async def delete_chat(conn: Conn, chat_id: int) -> ChatDeleted | None:
    row = await _one(conn, "SELECT seq FROM chats WHERE id = %s FOR UPDATE", (chat_id,))
    if row is None:
        return None
    await conn.execute(b"UPDATE chats SET last_message_id = NULL WHERE id = %s", (chat_id,))
    for table in ("events", "messages", "chat_members"):
        # The table names are constants of this function.
        await conn.execute(f"DELETE FROM {table} WHERE chat_id = %s".encode(), (chat_id,))  # noqa: S608
    await conn.execute(b"DELETE FROM chats WHERE id = %s", (chat_id,))
    return ChatDeleted(chat_id, row[0] + 1)


async def change_chat(
    conn: Conn, chat_id: int, plan: Plan
) -> tuple[Chat | None, list[Event]] | None:
    """The chat's row is locked before the plan sees it: the roster it sees is the one
    its change applies to, whichever process changes the chat meanwhile."""
    if await _one(conn, "SELECT 1 FROM chats WHERE id = %s FOR UPDATE", (chat_id,)) is None:
        return None
    chat = await get_chat(conn, chat_id)
    assert chat is not None
    seniority = await _all(
        conn,
        "SELECT user_id FROM chat_members WHERE chat_id = %s ORDER BY joined_seq, user_id",
        (chat_id,),
    )
    change = plan(Roster(chat, tuple(user_id for (user_id,) in seniority)))
    return await _apply(conn, chat, change)


async def _apply(conn: Conn, chat: Chat, change: ChatChange) -> tuple[Chat | None, list[Event]]:
    await _require_users(conn, change.add)
    if change.delete:
        await delete_chat(conn, chat.id)
        return None, [attrs.evolve(e, seq=chat.seq + n) for n, e in enumerate(change.events, 1)]
    if change.remove:
        await conn.execute(
            b"DELETE FROM chat_members WHERE chat_id = %s AND user_id = ANY(%s)",
            (chat.id, list(change.remove)),
        )
    if change.add:
        await conn.execute(  # the trigger gives each the chat's activity
            b"INSERT INTO chat_members (chat_id, user_id, joined_seq)"
            b" SELECT %s, id, %s FROM unnest(%s::bigint[]) AS t(id) ON CONFLICT DO NOTHING",
            (chat.id, chat.seq + 1, list(change.add)),
        )
    if change.admins is not None:
        await conn.execute(
            b"UPDATE chat_members SET is_admin = (user_id = ANY(%s)) WHERE chat_id = %s",
            (list(change.admins), chat.id),
        )
    if change.name is not None:
        await conn.execute(b"UPDATE chats SET name = %s WHERE id = %s", (change.name, chat.id))
    events = [await _record(conn, event) for event in change.events]
    return await get_chat(conn, chat.id), events


E = TypeVar("E", bound=Event)


async def _record(conn: Conn, event: E, seq: int | None = None) -> E:
    """Store an event at its chat's next seq (or at ``seq``, taken already). A
    chat_updated gets the chat as it is then: it comes after the change it reports."""
    if seq is None:
        row = await _one(
            conn, "UPDATE chats SET seq = seq + 1 WHERE id = %s RETURNING seq", (event.chat_id,)
        )
        assert row is not None
        seq = int(row[0])
    stored = attrs.evolve(event, seq=seq)
    message_id, detail = None, None
    if isinstance(stored, ChatUpdated):
        chat = await get_chat(conn, stored.chat_id)
        assert chat is not None
        stored = attrs.evolve(stored, chat=chat)
    elif isinstance(stored, MessagePosted | MessageEdited):
        message_id = stored.message.id
    elif isinstance(stored, MessageDeleted):
        message_id = stored.message_id
    elif isinstance(stored, MemberAdded | MemberRemoved):
        stored = attrs.evolve(stored, user=as_seen(stored.user), by=as_seen(stored.by))
        detail = json.dumps({"user": _seen_user(stored.user), "by": _seen_user(stored.by)})
    await conn.execute(
        b"INSERT INTO events (chat_id, seq, kind, message_id, detail) VALUES (%s, %s, %s, %s, %s)",
        (stored.chat_id, seq, stored.kind.value, message_id, detail),
    )
    return stored


async def chat_events(conn: Conn, chat_id: int, since: int, limit: int) -> list[Event]:
    """One range of the events' primary key, then the messages it names and (for a
    chat_updated) the chat, as they are now: O(limit) whatever the history."""
    found = await _all(
        conn,
        "SELECT seq, kind, message_id, detail FROM events"
        " WHERE chat_id = %s AND seq > %s ORDER BY seq LIMIT %s",
        (chat_id, since, limit),
    )
    current = {m.id: m for m in await _messages(conn, [r[2] for r in found if r[2] is not None])}
    chat = None
    if any(kind == EventKind.CHAT_UPDATED.value for _, kind, _, _ in found):
        chat = await get_chat(conn, chat_id)
    return [_event(chat_id, row, current, chat) for row in found]


def _event(chat_id: int, row: Row, current: dict[int, Message], chat: Chat | None) -> Event:
    seq, kind_text, message_id, detail = row
    kind = EventKind(kind_text)
    if kind in (EventKind.MESSAGE, EventKind.MESSAGE_EDITED):
        return message_event(kind, chat_id, seq, message_id, current.get(message_id))
    if kind is EventKind.MESSAGE_DELETED:
        return MessageDeleted(chat_id, seq, message_id)
    if kind is EventKind.CHAT_UPDATED:
        assert chat is not None
        return ChatUpdated(chat_id, seq, chat)
    member_type = MemberAdded if kind is EventKind.MEMBER_ADDED else MemberRemoved
    return member_type(
        chat_id, seq, _seen_user_value(detail["user"]), _seen_user_value(detail["by"])
    )


async def _chats(conn: Conn, chat_rows: list[Row]) -> list[Chat]:
    """Read models for these chat rows: their participants and last messages, read in
    two statements whatever the number of chats."""
    if not chat_rows:
        return []
    members: defaultdict[int, list[User]] = defaultdict(list)
    admins: defaultdict[int, list[int]] = defaultdict(list)
    found = await _all(
        conn,
        _select(
            f"cm.chat_id, cm.is_admin, {USER_COLUMNS}",
            "FROM chat_members cm JOIN users u ON u.id = cm.user_id"
            " WHERE cm.chat_id = ANY(%s) ORDER BY cm.chat_id, u.id",
        ),
        ([row[0] for row in chat_rows],),
    )
    for row in found:
        user = _user(row[2:])
        members[row[0]].append(user)
        if row[1]:
            admins[row[0]].append(user.id)
    last_ids = [row[3] for row in chat_rows if row[3] is not None]
    last = {message.id: message for message in await _messages(conn, last_ids)}
    return [
        Chat(
            chat_id,
            name,
            created_at,
            tuple(members[chat_id]),
            None if last_id is None else last[last_id],
            tuple(admins[chat_id]),
            seq,
        )
        for chat_id, name, created_at, last_id, seq in chat_rows
    ]


# messages


async def add_message(conn: Conn, new: NewMessage) -> tuple[Message, MessagePosted | None]:
    # The chat's row first: it orders the chat's events, and it makes the client_id
    # check below race-free (a retry of the same send waits here for the first).
    member = await _one(
        conn,
        "SELECT 1 FROM chats c JOIN chat_members cm ON cm.chat_id = c.id"
        " WHERE c.id = %s AND cm.user_id = %s FOR NO KEY UPDATE OF c",
        (new.chat_id, new.sender_id),
    )
    if member is None:
        raise NotFound
    if new.client_id is not None:
        row = await _one(
            conn,
            "SELECT id FROM messages WHERE chat_id = %s AND sender_id = %s AND client_id = %s",
            (new.chat_id, new.sender_id, new.client_id),
        )
        if row is not None:
            original = await get_message(conn, row[0])
            assert original is not None
            return original, None
    row = await _one(
        conn,
        # One statement: the id lock (held to COMMIT, see the module's docstring), the
        # message with the next id, the chat's last message and seq, the event.
        "WITH lock AS (SELECT pg_advisory_xact_lock(%(lock)s)),"
        " m AS (INSERT INTO messages (chat_id, sender_id, content, timestamp, client_id)"
        "  SELECT %(chat)s, %(sender)s, %(content)s, %(at)s, %(client)s FROM lock"
        "  RETURNING id),"
        " c AS (UPDATE chats SET last_message_id = m.id, last_activity = %(at)s,"
        "  seq = seq + 1 FROM m WHERE chats.id = %(chat)s RETURNING chats.seq, m.id)"
        " INSERT INTO events (chat_id, seq, kind, message_id)"
        " SELECT %(chat)s, c.seq, 'message', c.id FROM c RETURNING seq, message_id",
        {
            "lock": MESSAGE_ID_LOCK,
            "chat": new.chat_id,
            "sender": new.sender_id,
            "content": new.content,
            "at": new.timestamp,
            "client": new.client_id,
        },
    )
    assert row is not None
    seq, message_id = row
    stored = await get_message(conn, message_id)
    assert stored is not None
    return stored, MessagePosted(new.chat_id, seq, stored)


async def edit_message(
    conn: Conn, message_id: int, content: str, edited_at: datetime
) -> tuple[Message, MessageEdited] | None:
    row = await _one(conn, "SELECT chat_id FROM messages WHERE id = %s", (message_id,))
    if row is None:
        return None
    await _lock_chat(conn, row[0])
    changed = await _count(
        conn,
        "UPDATE messages SET content = %s, edited_at = %s WHERE id = %s",
        (content, edited_at, message_id),
    )
    edited = await get_message(conn, message_id) if changed else None
    if edited is None:
        return None
    return edited, await _record(conn, MessageEdited(edited.chat_id, 0, edited))


async def _lock_chat(conn: Conn, chat_id: int) -> None:
    """Take the chat's row lock before touching its messages, as a send does: every
    change of a chat meets the others in one order (chat, then messages)."""
    await conn.execute(b"SELECT 1 FROM chats WHERE id = %s FOR NO KEY UPDATE", (chat_id,))


async def delete_message(conn: Conn, message_id: int) -> MessageDeleted | None:
    row = await _one(conn, "SELECT chat_id FROM messages WHERE id = %s", (message_id,))
    if row is None:
        return None
    await _lock_chat(conn, row[0])
    await conn.execute(
        b"UPDATE chats SET last_message_id = NULL WHERE last_message_id = %s", (message_id,)
    )
    if not await _count(conn, "DELETE FROM messages WHERE id = %s", (message_id,)):
        return None  # deleted meanwhile by another transaction
    await _refresh_last_messages(conn, [row[0]])
    return await _record(conn, MessageDeleted(row[0], 0, message_id))


async def _refresh_last_messages(conn: Conn, chat_ids: Sequence[int]) -> None:
    """After deletions: each chat's last message is its newest left, and its activity
    that message's time, or the chat's creation when none is left."""
    await conn.execute(
        b"UPDATE chats SET last_message_id = last.id,"
        b" last_activity = coalesce(last.timestamp, chats.created_at)"
        b" FROM unnest(%s::bigint[]) AS t(chat_id)"
        b" LEFT JOIN LATERAL (SELECT id, timestamp FROM messages"
        b"  WHERE messages.chat_id = t.chat_id ORDER BY id DESC LIMIT 1) last ON true"
        b" WHERE chats.id = t.chat_id",
        (list(chat_ids),),
    )


async def get_message(conn: Conn, message_id: int) -> Message | None:
    found = await _messages(conn, [message_id])
    return found[0] if found else None


async def _messages(conn: Conn, message_ids: Sequence[int]) -> list[Message]:
    if not message_ids:
        return []
    found = await _all(
        conn,
        _select(
            MESSAGE_COLUMNS,
            "FROM messages m JOIN users u ON u.id = m.sender_id WHERE m.id = ANY(%s) ORDER BY m.id",
        ),
        (list(message_ids),),
    )
    return [_message(row) for row in found]


# The chats a page reads from, by whether a chat and a member narrow it.
_SCOPES = {
    (False, False): "SELECT id AS chat_id FROM chats",
    (True, False): "SELECT %(chat)s::bigint AS chat_id",
    (False, True): "SELECT chat_id FROM chat_members WHERE user_id = %(member)s",
    (True, True): "SELECT chat_id FROM chat_members"
    " WHERE user_id = %(member)s AND chat_id = %(chat)s",
}


async def page(conn: Conn, query: MessageQuery) -> list[Message]:
    """One window, read as at most ``limit`` index entries of each chat in scope (a
    LATERAL range of messages_chat), then merged: a page costs O(chats in scope x
    limit), whatever the length of history."""
    order = "DESC" if query.newest_first else "ASC"
    scope = _SCOPES[query.chat_id is not None, query.member_id is not None]
    found = await _all(
        conn,
        _select(
            MESSAGE_COLUMNS,
            # Built from constants of this module only; every value is a parameter.
            f"FROM ({scope}) s CROSS JOIN LATERAL ("  # noqa: S608
            " SELECT * FROM messages WHERE chat_id = s.chat_id"
            " AND id > %(after)s AND id <= %(below)s"
            f" ORDER BY id {order} LIMIT %(limit)s) m JOIN users u ON u.id = m.sender_id"
            f" ORDER BY m.id {order} LIMIT %(limit)s",
        ),
        {
            "chat": query.chat_id,
            "member": query.member_id,
            "after": 0 if query.after is None else query.after,
            "below": MAX_ID if query.before is None else query.before - 1,
            "limit": query.limit,
        },
    )
    messages = [_message(row) for row in found]
    if query.newest_first:
        messages.reverse()
    return messages


# tokens


async def add_token(conn: Conn, token: TokenRecord) -> None:
    await conn.execute(
        b"INSERT INTO tokens (digest, user_id, created_at, expires_at) VALUES (%s, %s, %s, %s)"
        b" ON CONFLICT (digest) DO UPDATE SET user_id = excluded.user_id,"
        b" created_at = excluded.created_at, expires_at = excluded.expires_at",
        (token.digest, token.user_id, token.created_at, token.expires_at),
    )


async def get_token(conn: Conn, digest: str) -> TokenRecord | None:
    if not storable(digest):
        return None
    row = await _one(
        conn,
        "SELECT digest, user_id, created_at, expires_at FROM tokens WHERE digest = %s",
        (digest,),
    )
    return None if row is None else TokenRecord(*row)


async def token_holder(conn: Conn, digest: str) -> tuple[TokenRecord, User] | None:
    if not storable(digest):
        return None
    row = await _one(
        conn,
        _select(
            f"t.created_at, t.expires_at, {USER_COLUMNS}",
            "FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.digest = %s",
        ),
        (digest,),
    )
    if row is None:
        return None
    created_at, expires_at, *user_row = row
    user = _user(user_row)
    return TokenRecord(digest, user.id, created_at, expires_at), user


async def delete_token(conn: Conn, digest: str) -> None:
    if storable(digest):
        await conn.execute(b"DELETE FROM tokens WHERE digest = %s", (digest,))


async def delete_user_tokens(conn: Conn, user_id: int) -> int:
    return await _count(conn, "DELETE FROM tokens WHERE user_id = %s", (user_id,))


async def delete_expired_tokens(conn: Conn, now: datetime) -> int:
    return await _count(conn, "DELETE FROM tokens WHERE expires_at <= %s", (now,))


# attempts, for throttling


def _attempt_key(key: str) -> bytes:
    """Keys are stored as bytes so that any str, lone surrogates included, is one key."""
    return key.encode("utf-8", "surrogatepass")


async def hit(
    conn: Conn, keys: Sequence[str], at: datetime, window: timedelta, rule: Rule
) -> float | None:
    """The keys are locked first (transaction-level advisory locks on their hashes, in
    one order), so that no other caller, in any process, tallies them in between."""
    stored = [_attempt_key(key) for key in keys]
    await conn.execute(
        b"SELECT pg_advisory_xact_lock(h) FROM"
        b" (SELECT DISTINCT hashtextextended(encode(k, 'base64'), 0) h"
        b" FROM unnest(%s::bytea[]) AS t(k) ORDER BY h) locks",
        (stored,),
    )
    await conn.execute(b"DELETE FROM attempts WHERE ends_at <= %s", (at,))
    found = await _all(
        conn,
        "SELECT t.k, count(a.at), min(a.at), max(a.at) FROM unnest(%s::bytea[]) AS t(k)"
        " LEFT JOIN attempts a ON a.key = t.k GROUP BY t.k",
        (stored,),
    )
    by_key = {bytes(k): Tally(count, oldest, newest) for k, count, oldest, newest in found}
    wait = rule([by_key[key] for key in stored])
    if wait is None:
        await conn.execute(
            b"INSERT INTO attempts (key, at, ends_at) SELECT k, %s, %s"
            b" FROM unnest(%s::bytea[]) AS t(k)",
            (at, at + window, stored),
        )
    return wait


async def release_attempts(conn: Conn, keys: Sequence[str], at: datetime) -> None:
    for key in keys:
        await conn.execute(
            b"DELETE FROM attempts WHERE id ="
            b" (SELECT id FROM attempts WHERE key = %s AND at = %s ORDER BY ends_at LIMIT 1)",
            (_attempt_key(key), at),
        )


async def clear_attempts(conn: Conn, key: str) -> None:
    await conn.execute(b"DELETE FROM attempts WHERE key = %s", (_attempt_key(key),))


async def prune_attempts(conn: Conn, now: datetime) -> int:
    return await _count(conn, "DELETE FROM attempts WHERE ends_at <= %s", (now,))


# the whole store


async def ping(conn: Conn) -> None:
    """The readiness probe's round trip: a statement that reads no table."""
    await conn.execute("SELECT 1")


async def counts(conn: Conn) -> Counts:
    row = await _one(
        conn,
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM chats),"
        " (SELECT count(*) FROM messages)",
    )
    assert row is not None
    return Counts(*row)


_SEQUENCED = ("users", "chats", "messages")


async def _last_ids(conn: Conn) -> LastIds:
    """The last id each sequence handed out (0 for one never used)."""
    values = []
    for table in _SEQUENCED:
        row = await _one(
            conn,
            f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {table}_id_seq",  # noqa: S608
        )
        assert row is not None
        values.append(int(row[0]))
    return LastIds(*values)


async def dump(conn: Conn) -> Archive:
    """Run in one read transaction (one snapshot): the archive is one moment. The
    sequences are outside snapshots; an id handed out after it is past every row read,
    so the archive stays consistent (a last id too high only skips ids, never reuses)."""
    users = tuple(
        StoredUser(_user(row[:-1]), row[-1])
        for row in await _all(
            conn, _select(f"{USER_COLUMNS}, u.password_hash", "FROM users u ORDER BY u.id")
        )
    )
    members: defaultdict[int, list[int]] = defaultdict(list)
    admins: defaultdict[int, list[int]] = defaultdict(list)
    for chat_id, user_id, is_admin in await _all(
        conn, "SELECT chat_id, user_id, is_admin FROM chat_members ORDER BY chat_id, user_id"
    ):
        members[chat_id].append(user_id)
        if is_admin:
            admins[chat_id].append(user_id)
    chats = tuple(
        StoredChat(chat_id, name, created_at, tuple(members[chat_id]), tuple(admins[chat_id]))
        for chat_id, name, created_at in await _all(
            conn, "SELECT id, name, created_at FROM chats ORDER BY id"
        )
    )
    messages = tuple(
        StoredMessage(*row)
        for row in await _all(
            conn,
            "SELECT id, chat_id, sender_id, content, timestamp, client_id FROM messages"
            " ORDER BY id",
        )
    )
    return Archive(await _last_ids(conn), users, chats, messages)


async def load(conn: Conn, archive: Archive) -> None:
    """Run as one write transaction: all or nothing. The tables are locked first, so
    that nothing is written beside the load and the emptiness check stays true."""
    await conn.execute(b"LOCK TABLE users, chats, messages IN SHARE ROW EXCLUSIVE MODE")
    if attrs.astuple(await counts(conn)) != (0, 0, 0):
        raise Conflict("the database is not empty")
    async with conn.cursor() as cursor:
        await cursor.executemany(
            b"INSERT INTO users (id, username, username_key, email, user_type, date_joined,"
            b" is_admin, is_active, password_hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    u.id,
                    u.username,
                    username_key(u.username),
                    u.email,
                    u.user_type.value,
                    u.date_joined,
                    u.is_admin,
                    u.is_active,
                    stored.password_hash,
                )
                for stored in archive.users
                for u in [stored.user]
            ],
        )
        await cursor.executemany(
            b"INSERT INTO chats (id, name, created_at, last_activity) VALUES (%s, %s, %s, %s)",
            [(c.id, c.name, c.created_at, c.created_at) for c in archive.chats],
        )
        await cursor.executemany(  # the trigger copies the chat's activity
            b"INSERT INTO chat_members (chat_id, user_id, is_admin) VALUES (%s, %s, %s)",
            [
                (c.id, user_id, user_id in c.admin_ids)
                for c in archive.chats
                for user_id in sorted(set(c.participant_ids))
            ],
        )
        await cursor.executemany(
            b"INSERT INTO messages (id, chat_id, sender_id, content, timestamp, client_id)"
            b" VALUES (%s, %s, %s, %s, %s, %s)",
            [
                (m.id, m.chat_id, m.sender_id, m.content, m.timestamp, m.client_id)
                for m in archive.messages
            ],
        )
    await _refresh_last_messages(conn, [c.id for c in archive.chats])
    await _events_from_history(conn)
    # New ids continue after the archive's last ids (which count rows deleted before the
    # export: never handed out again) and after every id stored.
    for table, last in zip(_SEQUENCED, attrs.astuple(archive.last_ids), strict=True):
        await conn.execute(
            f"SELECT setval('{table}_id_seq', greatest(%s, (SELECT max(id) FROM {table})),"  # noqa: S608
            f" true) WHERE greatest(%s, (SELECT max(id) FROM {table})) > 0".encode(),
            (last, last),
        )


async def _events_from_history(conn: Conn) -> None:
    """A loaded history's event log: each message a ``message`` event in id order, each
    chat's seq their count; a chat without an admin gets its lowest-id participant (as
    the SQLite schema's :func:`adapters.sqlite.schema.events_from_history`)."""
    await conn.execute(
        b"INSERT INTO events (chat_id, seq, kind, message_id)"
        b" SELECT chat_id, row_number() OVER (PARTITION BY chat_id ORDER BY id), 'message', id"
        b" FROM messages"
    )
    await conn.execute(
        b"UPDATE chats SET seq = (SELECT count(*) FROM messages WHERE chat_id = chats.id)"
    )
    await conn.execute(
        b"UPDATE chat_members SET is_admin = true WHERE user_id ="
        b" (SELECT min(user_id) FROM chat_members m WHERE m.chat_id = chat_members.chat_id)"
        b" AND NOT EXISTS (SELECT 1 FROM chat_members a"
        b" WHERE a.chat_id = chat_members.chat_id AND a.is_admin)"
    )
