"""Pages over id-ordered lists: the one place that decides what a page holds and
whether more lie on either side of it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import attrs

from .model import Message, MessageQuery, Page
from .ports import MessageStore
from .rules import Errors, check_limit, check_positive


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
