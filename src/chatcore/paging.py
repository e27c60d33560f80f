"""Pages over id-ordered lists: the one place that decides what a page holds and
whether more lie on either side of it."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

import attrs

from .model import Activity, Chat, Message, MessageQuery, Page
from .ports import MessageStore
from .rules import MAX_ID, Errors, check_limit, check_positive


class HasId(Protocol):
    @property
    def id(self) -> int: ...


T = TypeVar("T", bound=HasId)


@attrs.frozen
class Window:
    """Which page of a message list: the newest ``limit`` by default, ``before`` an id
    to page back, ``after`` an id to page forward."""

    limit: int | None = None
    before: int | None = None
    after: int | None = None


async def forward_page(
    fetch: Callable[[int | None, int], Awaitable[list[T]]],
    after: int | None,
    limit: int | None,
    errors: Errors | None = None,
) -> Page[T]:
    """A page of a list read forward from ``after`` by ``fetch(after, limit)``.
    Reads one item more than the page to learn whether more follow."""
    errors = errors or Errors()
    check_positive(after, "after", errors)
    size = check_limit(limit, errors)
    errors.raise_if_any()
    rows = await fetch(after, size + 1)
    older = False
    if after is not None:
        first = await fetch(None, 1)
        older = bool(first) and first[0].id <= after
    return Page(tuple(rows[:size]), has_older=older, has_newer=len(rows) > size)


async def message_page(
    store: MessageStore, scope: MessageQuery, window: Window, errors: Errors | None = None
) -> Page[Message]:
    """One page of the messages in ``scope`` (its chat and member filters). Reads one row
    more than the page to learn whether more lie beyond it, and one row on the other
    side; every read is an index range scan, so the cost does not grow with history.
    ``errors`` may hold the caller's own findings, reported with the window's."""
    errors = errors or Errors()
    limit = check_limit(window.limit, errors)
    before = check_positive(window.before, "before", errors)
    after = check_positive(window.after, "after", errors)
    errors.raise_if_any()

    async def any_past(**bound: int) -> bool:
        query = attrs.evolve(scope, limit=1, newest_first="before" in bound, **bound)
        return bool(await store.page(query))

    query = attrs.evolve(
        scope, limit=limit + 1, before=before, after=after, newest_first=after is None
    )
    rows = await store.page(query)
    if after is not None:
        items = rows[:limit]
        older = await any_past(before=items[0].id if items else after + 1)
        newer = len(rows) > limit or (before is not None and await any_past(after=before - 1))
    else:
        items = rows[-limit:]
        older = len(rows) > limit
        newer = before is not None and await any_past(after=items[-1].id if items else before - 1)
    return Page(tuple(items), has_older=older, has_newer=newer)


# The chat list's cursor: the activity of the last chat of a page, as microseconds since
# datetime.min (never negative, so no sign) and the chat id. Every string the pattern
# matches is a cursor (a time past datetime.max, an id past MAX_ID, mean "below every
# chat" there), so the documented pattern is exactly what the server accepts.
CURSOR_PATTERN = re.compile(r"[0-9]{1,18}\.[0-9]{1,19}")
CURSOR_MAX = 38
INVALID_CURSOR = "Invalid cursor."
_ORIGIN = datetime.min.replace(tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_LAST = (datetime.max.replace(tzinfo=UTC) - _ORIGIN) // _MICROSECOND


def chat_cursor(chat: Chat) -> str:
    """The cursor of the page that follows ``chat`` in its participants' chat lists."""
    activity = chat.activity
    return f"{(activity.at - _ORIGIN) // _MICROSECOND}.{activity.chat_id}"


def check_cursor(value: str | None, field: str, errors: Errors) -> Activity | None:
    """The position a chat-list cursor stands for: a page holds the chats below it."""
    if value is None:
        return None
    if len(value) > CURSOR_MAX or not CURSOR_PATTERN.fullmatch(value):
        errors.add(field, INVALID_CURSOR)
        return None
    micros, chat_id = (int(part) for part in value.split("."))
    at = _ORIGIN + min(micros, _LAST) * _MICROSECOND
    if micros > _LAST:  # later than any time: every chat at datetime.max is below it too
        chat_id = MAX_ID
    return Activity(at, min(chat_id, MAX_ID))


async def chat_list_page(
    fetch: Callable[[int, Activity | None], Awaitable[list[Chat]]],
    limit: int | None,
    cursor: str | None,
) -> Page[Chat]:
    """One page of a chat list read by ``fetch(limit, below)``, most recent activity
    first, from the top or from below a cursor (keyset paging: the storage reads an
    index from the cursor, so a page costs the same however many chats there are).
    Reads one chat more than the page to learn whether more follow."""
    errors = Errors()
    size = check_limit(limit, errors)
    below = check_cursor(cursor, "cursor", errors)
    errors.raise_if_any()
    chats = await fetch(size + 1, below)
    return Page(tuple(chats[:size]), has_older=len(chats) > size, has_newer=False)
