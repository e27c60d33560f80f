"""Between SQLite rows and the domain's models: column lists and decoders.

Times are stored as ISO 8601 text in UTC with microseconds, one fixed width, so text
order is time order (chats are sorted by it) and a read gives back an aware datetime
equal to the one stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from adapters import sqlrows
from adapters.sqlrows import Row as Row
from chatcore.model import Message, User, UserType

# The column lists and decoders both SQL adapters share.
USER_COLUMNS, MESSAGE_COLUMNS, CHAT_COLUMNS = (
    sqlrows.USER_COLUMNS,
    sqlrows.MESSAGE_COLUMNS,
    sqlrows.CHAT_COLUMNS,
)


def time_text(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"storage keeps aware times only, got naive {moment!r}")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def time_value(text: str) -> datetime:
    return datetime.fromisoformat(text)


def user(row: Row) -> User:
    return sqlrows.user(row, time_value)


def message(row: Row) -> Message:
    return sqlrows.message(row, time_value)


def seen_user(user: User) -> list[object]:
    """A user as an event row keeps them (:func:`chatcore.events.as_seen`), as JSON."""
    return [user.id, user.username, user.user_type.value, time_text(user.date_joined)]


def seen_user_value(value: Sequence[Any]) -> User:
    user_id, username, user_type, date_joined = value
    return User(user_id, username, "", UserType(user_type), time_value(date_joined))
