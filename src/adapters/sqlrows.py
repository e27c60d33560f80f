"""Between SQL rows and the domain's models, for both SQL adapters (SQLite, PostgreSQL):
the column lists their SELECTs share and the decoders of those columns, each told how
its engine hands back a stored time (ISO text in SQLite, a datetime from PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from chatcore.model import Message, User, UserType

Row = Sequence[Any]
Time = Callable[[Any], datetime]

USER_COLUMNS = "u.id, u.username, u.email, u.user_type, u.date_joined, u.is_admin, u.is_active"
MESSAGE_COLUMNS = (
    f"m.id, m.chat_id, m.content, m.timestamp, m.client_id, m.edited_at, {USER_COLUMNS}"
)
CHAT_COLUMNS = "c.id, c.name, c.created_at, c.last_message_id, c.seq"


def user(row: Row, time: Time) -> User:
    user_id, username, email, user_type, date_joined, is_admin, is_active = row
    return User(
        user_id,
        username,
        email,
        UserType(user_type),
        time(date_joined),
        is_admin=bool(is_admin),
        is_active=bool(is_active),
    )


def message(row: Row, time: Time) -> Message:
    message_id, chat_id, content, timestamp, client_id, edited_at = row[:6]
    return Message(
        message_id,
        chat_id,
        user(row[6:], time),
        content,
        time(timestamp),
        client_id,
        None if edited_at is None else time(edited_at),
    )
