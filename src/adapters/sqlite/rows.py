"""Between SQLite rows and the domain's models: column lists and decoders.

Times are stored as ISO 8601 text in UTC with microseconds, one fixed width, so text
order is time order (chats are sorted by it) and a read gives back an aware datetime
equal to the one stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from chatcore.model import Message, User, UserType

Row = Sequence[Any]

USER_COLUMNS = "u.id, u.username, u.email, u.user_type, u.date_joined, u.is_admin, u.is_active"
MESSAGE_COLUMNS = (
    f"m.id, m.chat_id, m.content, m.timestamp, m.client_id, m.edited_at, {USER_COLUMNS}"
)
CHAT_COLUMNS = "c.id, c.name, c.created_at, c.last_message_id, c.seq"


def time_text(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"storage keeps aware times only, got naive {moment!r}")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def time_value(text: str) -> datetime:
    return datetime.fromisoformat(text)


def user(row: Row) -> User:
    user_id, username, email, user_type, date_joined, is_admin, is_active = row
    return User(
        user_id,
        username,
        email,
        UserType(user_type),
        time_value(date_joined),
        is_admin=bool(is_admin),
        is_active=bool(is_active),
    )


def message(row: Row) -> Message:
    message_id, chat_id, content, timestamp, client_id, edited_at = row[:6]
    return Message(
        message_id,
        chat_id,
        user(row[6:]),
        content,
        time_value(timestamp),
        client_id,
        None if edited_at is None else time_value(edited_at),
    )


def seen_user(user: User) -> list[object]:
    """A user as an event row keeps them (:func:`chatcore.events.as_seen`), as JSON."""
    return [user.id, user.username, user.user_type.value, time_text(user.date_joined)]


def seen_user_value(value: Sequence[Any]) -> User:
    user_id, username, user_type, date_joined = value
    return User(user_id, username, "", UserType(user_type), time_value(date_joined))
