"""The storage operations as plain SQL on one connection, each run by the engine inside
a transaction (a savepoint of the writer's batch, or a reader's snapshot).

Lists of ids or keys are passed as one JSON parameter (``json_each``), so a statement
has one shape whatever the list's length and never meets SQLite's parameter limit.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

import attrs

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
)
from chatcore.ports import Rule, Tally
from chatcore.roster import ChatChange, Plan, Roster
from chatcore.rules import MAX_ID, is_text, username_key

from . import rows
from .rows import CHAT_COLUMNS, MESSAGE_COLUMNS, USER_COLUMNS, Row
from .schema import events_from_history


def _select(columns: str, rest: str) -> str:
    """A SELECT of one of the column lists of :mod:`.rows`: the only SQL built from parts,
    and every part is a constant of this package, never a value."""
    return f"SELECT {columns} {rest}"


def _json(values: Iterable[object]) -> str:
    return json.dumps(list(values))


def _inserted_id(cursor: sqlite3.Cursor) -> int:
    if cursor.lastrowid is None:  # pragma: no cover - an INSERT always sets it
        raise sqlite3.DatabaseError("INSERT gave no row id")
    return cursor.lastrowid


# users


def add_user(conn: sqlite3.Connection, new: NewUser, password_hash: str) -> User:
    key = username_key(new.username)
    if conn.execute("SELECT 1 FROM users WHERE username_key = ?", (key,)).fetchone():
        raise Conflict("username taken")
    cursor = conn.execute(
        "INSERT INTO users (username, username_key, email, user_type, date_joined, is_admin,"
        " password_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            new.username,
            key,
            new.email,
            new.user_type.value,
            rows.time_text(new.date_joined),
            new.is_admin,
            password_hash,
        ),
    )
    stored = get_user(conn, _inserted_id(cursor))
    assert stored is not None
    return stored


def get_user(conn: sqlite3.Connection, user_id: int) -> User | None:
    row = conn.execute(_select(USER_COLUMNS, "FROM users u WHERE u.id = ?"), (user_id,)).fetchone()
    return None if row is None else rows.user(row)


def get_users(conn: sqlite3.Connection, user_ids: Sequence[int]) -> list[User]:
    cursor = conn.execute(
        _select(
            USER_COLUMNS,
            "FROM users u WHERE u.id IN (SELECT value FROM json_each(?)) ORDER BY u.id",
        ),
        (_json(user_ids),),
    )
    return [rows.user(row) for row in cursor]


def users_by_names(conn: sqlite3.Connection, usernames: Sequence[str]) -> list[User]:
    cursor = conn.execute(
        _select(
            USER_COLUMNS,
            "FROM users u WHERE u.username_key IN (SELECT value FROM json_each(?)) ORDER BY u.id",
        ),
        (_json({username_key(name) for name in usernames if is_text(name)}),),
    )
    return [rows.user(row) for row in cursor]


def password_hash(conn: sqlite3.Connection, username: str) -> tuple[User, str] | None:
    if not is_text(username):  # text SQLite cannot hold is in no row
        return None
    row = conn.execute(
        _select(f"{USER_COLUMNS}, u.password_hash", "FROM users u WHERE u.username_key = ?"),
        (username_key(username),),
    ).fetchone()
    return None if row is None else (rows.user(row[:-1]), row[-1])


def set_password_hash(conn: sqlite3.Connection, user_id: int, password_hash: str) -> None:
    conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))


def change_password(
    conn: sqlite3.Connection, user_id: int, password_hash: str, keep_digest: str | None
) -> bool:
    changed = conn.execute(
        "UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id)
    ).rowcount
    conn.execute("DELETE FROM tokens WHERE user_id = ? AND digest IS NOT ?", (user_id, keep_digest))
    return bool(changed)


def search_users(conn: sqlite3.Connection, text: str, after: int | None, limit: int) -> list[User]:
    # A substring can use no index: this walks users in id order from ``after`` and stops
    # at ``limit`` matches. Its cost depends on the users, never on the messages.
    if not is_text(text):  # text SQLite cannot hold is in no row
        return []
    cursor = conn.execute(
        _select(
            USER_COLUMNS,
            "FROM users u WHERE u.id > ? AND instr(u.username_key, ?) > 0 ORDER BY u.id LIMIT ?",
        ),
        (0 if after is None else after, username_key(text), limit),
    )
    return [rows.user(row) for row in cursor]


def update_user(conn: sqlite3.Connection, user_id: int, changes: UserChanges) -> User | None:
    user_type = None if changes.user_type is None else changes.user_type.value
    conn.execute(
        "UPDATE users SET user_type = coalesce(?, user_type), is_active = coalesce(?, is_active),"
        " is_admin = coalesce(?, is_admin), email = coalesce(?, email) WHERE id = ?",
        (user_type, changes.is_active, changes.is_admin, changes.email, user_id),
    )
    return get_user(conn, user_id)


def delete_user(conn: sqlite3.Connection, user_id: int, leave: Plan) -> list[Event] | None:
    if get_user(conn, user_id) is None:
        return None
    doomed = conn.execute(
        "SELECT id, chat_id FROM messages WHERE sender_id = ? ORDER BY id", (user_id,)
    ).fetchall()
    events: list[Event] = [
        _record(conn, MessageDeleted(chat_id, 0, message_id)) for message_id, chat_id in doomed
    ]
    chat_ids = sorted({chat_id for _, chat_id in doomed})
    conn.execute(
        "UPDATE chats SET last_message_id = NULL"
        " WHERE last_message_id IN (SELECT id FROM messages WHERE sender_id = ?)",
        (user_id,),
    )
    conn.execute("DELETE FROM messages WHERE sender_id = ?", (user_id,))
    _refresh_last_messages(conn, chat_ids)
    mine = conn.execute(
        "SELECT chat_id FROM chat_members WHERE user_id = ? ORDER BY chat_id", (user_id,)
    ).fetchall()
    for (chat_id,) in mine:
        changed = change_chat(conn, chat_id, leave)
        assert changed is not None
        events += changed[1]
    conn.execute("DELETE FROM chat_members WHERE user_id = ?", (user_id,))  # if leave kept any
    conn.execute("DELETE FROM tokens WHERE user_id = ?", (user_id,))
    conn.execute("DELETE FROM users WHERE id = ?", (user_id,))
    return events


# chats


def add_chat(
    conn: sqlite3.Connection,
    name: str,
    participant_ids: Sequence[int],
    created_at: datetime,
    admin_id: int | None = None,
) -> Chat:
    member_ids = sorted(set(participant_ids))
    _require_users(conn, member_ids)
    created = rows.time_text(created_at)
    cursor = conn.execute(
        "INSERT INTO chats (name, created_at, last_activity) VALUES (?, ?, ?)",
        (name, created, created),
    )
    chat_id = _inserted_id(cursor)
    admin = member_ids[0] if admin_id is None else admin_id
    conn.executemany(  # with the chat's activity, which the schema's trigger checks
        "INSERT INTO chat_members (chat_id, user_id, last_activity, is_admin) VALUES (?, ?, ?, ?)",
        [(chat_id, user_id, created, user_id == admin) for user_id in member_ids],
    )
    chat = get_chat(conn, chat_id)
    assert chat is not None
    return chat


def _require_users(conn: sqlite3.Connection, user_ids: Sequence[int]) -> None:
    """NotFound unless every one of these users exists: one deleted since the caller
    looked them up is not added (the transaction then changes nothing)."""
    wanted = set(user_ids)
    if not wanted:
        return
    (found,) = conn.execute(
        "SELECT count(*) FROM users WHERE id IN (SELECT value FROM json_each(?))",
        (_json(wanted),),
    ).fetchone()
    if found != len(wanted):
        raise NotFound


def get_chat(conn: sqlite3.Connection, chat_id: int) -> Chat | None:
    row = conn.execute(_select(CHAT_COLUMNS, "FROM chats c WHERE c.id = ?"), (chat_id,)).fetchone()
    return None if row is None else _chats(conn, [row])[0]


def chat_for(conn: sqlite3.Connection, chat_id: int, user_id: int) -> Chat | None:
    # CROSS JOIN keeps the membership the outer loop: one primary-key probe decides, and
    # a chat the user is not in stops there exactly as a missing chat does.
    row = conn.execute(
        _select(
            CHAT_COLUMNS,
            "FROM chat_members cm CROSS JOIN chats c ON c.id = cm.chat_id"
            " WHERE cm.chat_id = ? AND cm.user_id = ?",
        ),
        (chat_id, user_id),
    ).fetchone()
    return None if row is None else _chats(conn, [row])[0]


def is_participant(conn: sqlite3.Connection, chat_id: int, user_id: int) -> bool:
    found = conn.execute(
        "SELECT 1 FROM chat_members WHERE chat_id = ? AND user_id = ?", (chat_id, user_id)
    ).fetchone()
    return found is not None


def chats_of_user(
    conn: sqlite3.Connection, user_id: int, limit: int, below: Activity | None
) -> list[Chat]:
    """A page of the user's chat list: ``limit`` entries of the index chat_members_activity
    read backwards from ``below`` (keyset paging), then the page's chats by primary key.
    Reads no message beyond each chat's last one."""
    bound = "" if below is None else " AND (cm.last_activity, cm.chat_id) < (:at, :chat)"
    cursor = conn.execute(
        _select(
            CHAT_COLUMNS,
            # Built from constants of this module only; every value is a parameter.
            "FROM chat_members cm CROSS JOIN chats c ON c.id = cm.chat_id"
            f" WHERE cm.user_id = :user{bound}"
            " ORDER BY cm.last_activity DESC, cm.chat_id DESC LIMIT :limit",
        ),
        {
            "user": user_id,
            "limit": limit,
            "at": None if below is None else rows.time_text(below.at),
            "chat": None if below is None else below.chat_id,
        },
    )
    return _chats(conn, cursor.fetchall())


def all_chats(conn: sqlite3.Connection, after: int | None, limit: int) -> list[Chat]:
    cursor = conn.execute(
        _select(CHAT_COLUMNS, "FROM chats c WHERE c.id > ? ORDER BY c.id LIMIT ?"),
        (0 if after is None else after, limit),
    )
    return _chats(conn, cursor.fetchall())


def delete_chat(conn: sqlite3.Connection, chat_id: int) -> ChatDeleted | None:
    seq = conn.execute("SELECT seq FROM chats WHERE id = ?", (chat_id,)).fetchone()
    if seq is None:
        return None
    conn.execute("UPDATE chats SET last_message_id = NULL WHERE id = ?", (chat_id,))
    conn.execute("DELETE FROM events WHERE chat_id = ?", (chat_id,))
    conn.execute("DELETE FROM messages WHERE chat_id = ?", (chat_id,))
    conn.execute("DELETE FROM chat_members WHERE chat_id = ?", (chat_id,))
    conn.execute("DELETE FROM chats WHERE id = ?", (chat_id,))
    return ChatDeleted(chat_id, seq[0] + 1)


def change_chat(
    conn: sqlite3.Connection, chat_id: int, plan: Plan
) -> tuple[Chat | None, list[Event]] | None:
    """The plan runs inside the writer's transaction, under the file's write lock: the
    roster it sees is the one its change applies to."""
    chat = get_chat(conn, chat_id)
    if chat is None:
        return None
    seniority = conn.execute(
        "SELECT user_id FROM chat_members WHERE chat_id = ? ORDER BY joined_seq, user_id",
        (chat_id,),
    ).fetchall()
    change = plan(Roster(chat, tuple(user_id for (user_id,) in seniority)))
    return _apply(conn, chat, change)


def _apply(
    conn: sqlite3.Connection, chat: Chat, change: ChatChange
) -> tuple[Chat | None, list[Event]]:
    _require_users(conn, change.add)
    if change.delete:
        delete_chat(conn, chat.id)
        return None, [attrs.evolve(e, seq=chat.seq + n) for n, e in enumerate(change.events, 1)]
    conn.executemany(
        "DELETE FROM chat_members WHERE chat_id = ? AND user_id = ?",
        [(chat.id, user_id) for user_id in change.remove],
    )
    conn.executemany(  # the trigger gives each the chat's activity
        "INSERT OR IGNORE INTO chat_members (chat_id, user_id, joined_seq) VALUES (?, ?, ?)",
        [(chat.id, user_id, chat.seq + 1) for user_id in change.add],
    )
    if change.admins is not None:
        conn.execute(
            "UPDATE chat_members SET is_admin = user_id IN (SELECT value FROM json_each(?))"
            " WHERE chat_id = ?",
            (_json(change.admins), chat.id),
        )
    if change.name is not None:
        conn.execute("UPDATE chats SET name = ? WHERE id = ?", (change.name, chat.id))
    events = [_record(conn, event) for event in change.events]
    return get_chat(conn, chat.id), events


E = TypeVar("E", bound=Event)


def _record(conn: sqlite3.Connection, event: E, seq: int | None = None) -> E:
    """Store an event at its chat's next seq (or at ``seq``, taken already). A
    chat_updated gets the chat as it is then: it comes after the change it reports."""
    if seq is None:
        (seq,) = conn.execute(
            "UPDATE chats SET seq = seq + 1 WHERE id = ? RETURNING seq", (event.chat_id,)
        ).fetchone()
    stored = attrs.evolve(event, seq=seq)
    message_id, detail = None, None
    if isinstance(stored, ChatUpdated):
        chat = get_chat(conn, stored.chat_id)
        assert chat is not None
        stored = attrs.evolve(stored, chat=chat)
    elif isinstance(stored, MessagePosted | MessageEdited):
        message_id = stored.message.id
    elif isinstance(stored, MessageDeleted):
        message_id = stored.message_id
    elif isinstance(stored, MemberAdded | MemberRemoved):
        stored = attrs.evolve(stored, user=as_seen(stored.user), by=as_seen(stored.by))
        detail = json.dumps({"user": rows.seen_user(stored.user), "by": rows.seen_user(stored.by)})
    conn.execute(
        "INSERT INTO events (chat_id, seq, kind, message_id, detail) VALUES (?, ?, ?, ?, ?)",
        (stored.chat_id, seq, stored.kind.value, message_id, detail),
    )
    return stored


def chat_events(conn: sqlite3.Connection, chat_id: int, since: int, limit: int) -> list[Event]:
    """One range of the events' primary key, then the messages it names and (for a
    chat_updated) the chat, as they are now: O(limit) whatever the history."""
    found = conn.execute(
        "SELECT seq, kind, message_id, detail FROM events"
        " WHERE chat_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        (chat_id, since, limit),
    ).fetchall()
    current = {m.id: m for m in _messages(conn, [r[2] for r in found if r[2] is not None])}
    chat = None
    if any(kind == EventKind.CHAT_UPDATED.value for _, kind, _, _ in found):
        chat = get_chat(conn, chat_id)
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
    people = json.loads(detail)
    member_type = MemberAdded if kind is EventKind.MEMBER_ADDED else MemberRemoved
    user, by = rows.seen_user_value(people["user"]), rows.seen_user_value(people["by"])
    return member_type(chat_id, seq, user, by)


def _chats(conn: sqlite3.Connection, chat_rows: list[Row]) -> list[Chat]:
    """Read models for these chat rows: their participants and last messages, read in
    two statements whatever the number of chats."""
    members: defaultdict[int, list[User]] = defaultdict(list)
    admins: defaultdict[int, list[int]] = defaultdict(list)
    cursor = conn.execute(
        _select(
            f"cm.chat_id, cm.is_admin, {USER_COLUMNS}",
            "FROM chat_members cm JOIN users u ON u.id = cm.user_id"
            " WHERE cm.chat_id IN (SELECT value FROM json_each(?)) ORDER BY cm.chat_id, u.id",
        ),
        (_json(row[0] for row in chat_rows),),
    )
    for row in cursor:
        user = rows.user(row[2:])
        members[row[0]].append(user)
        if row[1]:
            admins[row[0]].append(user.id)
    last_ids = [row[3] for row in chat_rows if row[3] is not None]
    last = {message.id: message for message in _messages(conn, last_ids)}
    return [
        Chat(
            chat_id,
            name,
            rows.time_value(created_at),
            tuple(members[chat_id]),
            None if last_id is None else last[last_id],
            tuple(admins[chat_id]),
            seq,
        )
        for chat_id, name, created_at, last_id, seq in chat_rows
    ]


# messages


def add_message(conn: sqlite3.Connection, new: NewMessage) -> tuple[Message, MessagePosted | None]:
    """The reply is built from what is known (the draft, the sender's row read with the
    membership check, the new id and seq), not read back: four statements a send."""
    sender = conn.execute(
        _select(
            USER_COLUMNS,
            "FROM chat_members cm JOIN users u ON u.id = cm.user_id"
            " WHERE cm.chat_id = ? AND cm.user_id = ?",
        ),
        (new.chat_id, new.sender_id),
    ).fetchone()
    if sender is None:
        raise NotFound
    if new.client_id is not None:
        row = conn.execute(
            "SELECT id FROM messages WHERE chat_id = ? AND sender_id = ? AND client_id = ?",
            (new.chat_id, new.sender_id, new.client_id),
        ).fetchone()
        if row is not None:
            original = get_message(conn, row[0])
            assert original is not None
            return original, None
    timestamp = rows.time_text(new.timestamp)
    cursor = conn.execute(
        "INSERT INTO messages (chat_id, sender_id, content, timestamp, client_id)"
        " VALUES (?, ?, ?, ?, ?)",
        (new.chat_id, new.sender_id, new.content, timestamp, new.client_id),
    )
    message_id = _inserted_id(cursor)
    (seq,) = conn.execute(
        "UPDATE chats SET last_message_id = ?, last_activity = ?, seq = seq + 1 WHERE id = ?"
        " RETURNING seq",
        (message_id, timestamp, new.chat_id),
    ).fetchone()
    stored = Message(
        message_id,
        new.chat_id,
        rows.user(sender),
        new.content,
        rows.time_value(timestamp),
        new.client_id,
    )
    return stored, _record(conn, MessagePosted(new.chat_id, seq, stored), seq)


def edit_message(
    conn: sqlite3.Connection, message_id: int, content: str, edited_at: datetime
) -> tuple[Message, MessageEdited] | None:
    changed = conn.execute(
        "UPDATE messages SET content = ?, edited_at = ? WHERE id = ?",
        (content, rows.time_text(edited_at), message_id),
    ).rowcount
    edited = get_message(conn, message_id) if changed else None
    if edited is None:
        return None
    return edited, _record(conn, MessageEdited(edited.chat_id, 0, edited))


def delete_message(conn: sqlite3.Connection, message_id: int) -> MessageDeleted | None:
    row = conn.execute("SELECT chat_id FROM messages WHERE id = ?", (message_id,)).fetchone()
    if row is None:
        return None
    conn.execute("UPDATE chats SET last_message_id = NULL WHERE last_message_id = ?", (message_id,))
    conn.execute("DELETE FROM messages WHERE id = ?", (message_id,))
    _refresh_last_messages(conn, [row[0]])
    return _record(conn, MessageDeleted(row[0], 0, message_id))


def _refresh_last_messages(conn: sqlite3.Connection, chat_ids: Sequence[int]) -> None:
    """After deletions: each chat's last message is its newest left, and its activity
    that message's time, or the chat's creation when none is left."""
    conn.execute(
        "UPDATE chats SET last_message_id = (SELECT max(id) FROM messages WHERE chat_id = chats.id)"
        " WHERE id IN (SELECT value FROM json_each(?))",
        (_json(chat_ids),),
    )
    conn.execute(
        "UPDATE chats SET last_activity = coalesce("
        " (SELECT timestamp FROM messages WHERE id = chats.last_message_id), created_at)"
        " WHERE id IN (SELECT value FROM json_each(?))",
        (_json(chat_ids),),
    )


def get_message(conn: sqlite3.Connection, message_id: int) -> Message | None:
    found = _messages(conn, [message_id])
    return found[0] if found else None


def _messages(conn: sqlite3.Connection, message_ids: Sequence[int]) -> list[Message]:
    if not message_ids:
        return []
    cursor = conn.execute(
        _select(
            MESSAGE_COLUMNS,
            "FROM messages m JOIN users u ON u.id = m.sender_id"
            " WHERE m.id IN (SELECT value FROM json_each(?)) ORDER BY m.id",
        ),
        (_json(message_ids),),
    )
    return [rows.message(row) for row in cursor]


# The chats a page reads from, by whether a chat and a member narrow it.
_SCOPES = {
    (False, False): "SELECT id AS chat_id FROM chats",
    (True, False): "SELECT :chat AS chat_id",
    (False, True): "SELECT chat_id FROM chat_members WHERE user_id = :member",
    (True, True): "SELECT chat_id FROM chat_members WHERE user_id = :member AND chat_id = :chat",
}


def page(conn: sqlite3.Connection, query: MessageQuery) -> list[Message]:
    """One window, read as at most ``limit`` index entries of each chat in scope, then
    merged: a page costs O(chats in scope x limit), whatever the length of history.
    (``chat_id IN (the member's chats)`` in id order would read every message of those
    chats inside the bounds before sorting, so a member's page would grow with history.)"""
    statement = _page_statement(
        query.chat_id is not None, query.member_id is not None, query.newest_first
    )
    cursor = conn.execute(
        statement,
        {
            "chat": query.chat_id,
            "member": query.member_id,
            "after": 0 if query.after is None else query.after,
            "below": MAX_ID if query.before is None else query.before - 1,
            "limit": query.limit,
        },
    )
    found = [rows.message(row) for row in cursor]
    if query.newest_first:
        found.reverse()
    return found


@functools.cache
def _page_statement(by_chat: bool, by_member: bool, newest_first: bool) -> str:
    order = "DESC" if newest_first else "ASC"
    return _select(
        MESSAGE_COLUMNS,
        # Built from constants of this module only; every value is a parameter.
        f"FROM ({_SCOPES[by_chat, by_member]}) s JOIN messages m ON m.id IN ("  # noqa: S608
        " SELECT id FROM messages WHERE chat_id = s.chat_id AND id > :after AND id <= :below"
        f" ORDER BY id {order} LIMIT :limit) JOIN users u ON u.id = m.sender_id"
        f" ORDER BY m.id {order} LIMIT :limit",
    )


# tokens


def add_token(conn: sqlite3.Connection, token: TokenRecord) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO tokens (digest, user_id, created_at, expires_at)"
        " VALUES (?, ?, ?, ?)",
        (
            token.digest,
            token.user_id,
            rows.time_text(token.created_at),
            rows.time_text(token.expires_at),
        ),
    )


def get_token(conn: sqlite3.Connection, digest: str) -> TokenRecord | None:
    row = conn.execute(
        "SELECT digest, user_id, created_at, expires_at FROM tokens WHERE digest = ?", (digest,)
    ).fetchone()
    if row is None:
        return None
    digest, user_id, created_at, expires_at = row
    return TokenRecord(digest, user_id, rows.time_value(created_at), rows.time_value(expires_at))


def token_holder(conn: sqlite3.Connection, digest: str) -> tuple[TokenRecord, User] | None:
    row = conn.execute(
        _select(
            f"t.created_at, t.expires_at, {USER_COLUMNS}",
            "FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.digest = ?",
        ),
        (digest,),
    ).fetchone()
    if row is None:
        return None
    created_at, expires_at, *user_row = row
    user = rows.user(user_row)
    record = TokenRecord(digest, user.id, rows.time_value(created_at), rows.time_value(expires_at))
    return record, user


def delete_token(conn: sqlite3.Connection, digest: str) -> None:
    conn.execute("DELETE FROM tokens WHERE digest = ?", (digest,))


def delete_user_tokens(conn: sqlite3.Connection, user_id: int) -> int:
    return conn.execute("DELETE FROM tokens WHERE user_id = ?", (user_id,)).rowcount


def delete_expired_tokens(conn: sqlite3.Connection, now: datetime) -> int:
    # Times are fixed-width UTC text (rows.time_text), so text order is time order.
    return conn.execute("DELETE FROM tokens WHERE expires_at <= ?", (rows.time_text(now),)).rowcount


# attempts, for throttling


def _attempt_key(key: str) -> bytes:
    """Keys are stored as bytes so that any str, lone surrogates included, is one key."""
    return key.encode("utf-8", "surrogatepass")


def hit(
    conn: sqlite3.Connection,
    keys: Sequence[str],
    at: datetime,
    window: timedelta,
    rule: Rule,
) -> float | None:
    """Run inside the writer's BEGIN IMMEDIATE transaction, which holds the file's write
    lock: no other connection, in this process or another, tallies in between."""
    now = rows.time_text(at)
    conn.execute("DELETE FROM attempts WHERE ends_at <= ?", (now,))
    stored = [_attempt_key(key) for key in keys]
    tallies = []
    for key in stored:
        count, oldest, newest = conn.execute(
            "SELECT count(*), min(at), max(at) FROM attempts WHERE key = ?", (key,)
        ).fetchone()
        tallies.append(Tally(count, _moment(oldest), _moment(newest)))
    wait = rule(tallies)
    if wait is None:
        ends = rows.time_text(at + window)
        conn.executemany(
            "INSERT INTO attempts (key, at, ends_at) VALUES (?, ?, ?)",
            [(key, now, ends) for key in stored],
        )
    return wait


def _moment(text: str | None) -> datetime | None:
    return None if text is None else rows.time_value(text)


def release_attempts(conn: sqlite3.Connection, keys: Sequence[str], at: datetime) -> None:
    now = rows.time_text(at)
    conn.executemany(
        "DELETE FROM attempts WHERE rowid ="
        " (SELECT rowid FROM attempts WHERE key = ? AND at = ? ORDER BY ends_at LIMIT 1)",
        [(_attempt_key(key), now) for key in keys],
    )


def clear_attempts(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM attempts WHERE key = ?", (_attempt_key(key),))


def prune_attempts(conn: sqlite3.Connection, now: datetime) -> int:
    return conn.execute("DELETE FROM attempts WHERE ends_at <= ?", (rows.time_text(now),)).rowcount


# the whole store


def counts(conn: sqlite3.Connection) -> Counts:
    users, chats, messages = conn.execute(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM chats),"
        " (SELECT count(*) FROM messages)"
    ).fetchone()
    return Counts(users, chats, messages)


# export and import: the whole store at once


_SEQUENCED = ("users", "chats", "messages")  # the AUTOINCREMENT tables


def dump(conn: sqlite3.Connection) -> Archive:
    """Run in one reader's snapshot: the archive is one moment of the file."""
    users = tuple(
        StoredUser(rows.user(row[:-1]), row[-1])
        for row in conn.execute(
            _select(f"{USER_COLUMNS}, u.password_hash", "FROM users u ORDER BY u.id")
        )
    )
    members: defaultdict[int, list[int]] = defaultdict(list)
    admins: defaultdict[int, list[int]] = defaultdict(list)
    for chat_id, user_id, is_admin in conn.execute(
        "SELECT chat_id, user_id, is_admin FROM chat_members ORDER BY chat_id, user_id"
    ):
        members[chat_id].append(user_id)
        if is_admin:
            admins[chat_id].append(user_id)
    chats = tuple(
        StoredChat(
            chat_id,
            name,
            rows.time_value(created_at),
            tuple(members[chat_id]),
            tuple(admins[chat_id]),
        )
        for chat_id, name, created_at in conn.execute(
            "SELECT id, name, created_at FROM chats ORDER BY id"
        )
    )
    messages = tuple(
        StoredMessage(message_id, chat_id, sender_id, content, rows.time_value(at), client_id)
        for message_id, chat_id, sender_id, content, at, client_id in conn.execute(
            "SELECT id, chat_id, sender_id, content, timestamp, client_id FROM messages ORDER BY id"
        )
    )
    sequences = dict(conn.execute("SELECT name, seq FROM sqlite_sequence").fetchall())
    last = LastIds(*(int(sequences.get(table, 0)) for table in _SEQUENCED))
    return Archive(last, users, chats, messages)


def load(conn: sqlite3.Connection, archive: Archive) -> None:
    """Run as one write (one savepoint of the writer's transaction): all or nothing."""
    if attrs.astuple(counts(conn)) != (0, 0, 0):
        raise Conflict("the database is not empty")
    conn.executemany(
        "INSERT INTO users (id, username, username_key, email, user_type, date_joined,"
        " is_admin, is_active, password_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                u.id,
                u.username,
                username_key(u.username),
                u.email,
                u.user_type.value,
                rows.time_text(u.date_joined),
                u.is_admin,
                u.is_active,
                stored.password_hash,
            )
            for stored in archive.users
            for u in [stored.user]
        ],
    )
    conn.executemany(
        "INSERT INTO chats (id, name, created_at, last_activity) VALUES (?, ?, ?, ?)",
        [
            (c.id, c.name, rows.time_text(c.created_at), rows.time_text(c.created_at))
            for c in archive.chats
        ],
    )
    conn.executemany(  # the trigger copies the chat's activity onto each membership
        "INSERT INTO chat_members (chat_id, user_id, is_admin) VALUES (?, ?, ?)",
        [
            (c.id, user_id, user_id in c.admin_ids)
            for c in archive.chats
            for user_id in sorted(set(c.participant_ids))
        ],
    )
    conn.executemany(
        "INSERT INTO messages (id, chat_id, sender_id, content, timestamp, client_id)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (m.id, m.chat_id, m.sender_id, m.content, rows.time_text(m.timestamp), m.client_id)
            for m in archive.messages
        ],
    )
    _refresh_last_messages(conn, [c.id for c in archive.chats])
    events_from_history(conn.execute)
    # Inserting an id moves a table's sequence up to it; the archive's own last ids also
    # count the rows deleted before the export, which must not be handed out again.
    for table, last in zip(_SEQUENCED, attrs.astuple(archive.last_ids), strict=True):
        conn.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (last, table))
        conn.execute(
            "INSERT INTO sqlite_sequence (name, seq) SELECT ?, ? WHERE ? > 0"
            " AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?)",
            (table, last, last, table),
        )
