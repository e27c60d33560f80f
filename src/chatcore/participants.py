"""Participant lists as clients name them (ids and usernames): checked and looked up
the one way, for a new chat and for every later change of its membership."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from .errors import NON_FIELD
from .model import User
from .ports import UserStore
from .roster import TOO_MANY
from .rules import MAX_ID, Errors, check_ids, check_usernames, username_key

K = TypeVar("K")
UNKNOWN_ID = 'Invalid pk "{}" - object does not exist.'
UNKNOWN_NAME = 'User "{}" does not exist.'


async def resolve(
    users: UserStore,
    ids: Sequence[int],
    usernames: Sequence[str],
    limit: int,
    errors: Errors,
    actor: User | None,
) -> list[User]:
    """The active users named by ``ids`` and ``usernames``, with ``actor`` (None: an
    administrator who changes a chat without joining it), each once (in id order).
    Every id or username that names no active user is reported on its field, and more
    than ``limit`` of them in all on non_field_errors, into ``errors``; the caller
    raises."""
    ids = check_ids(ids, limit, "participant_ids", errors)
    names = check_usernames(usernames, limit, "participant_usernames", errors)
    ids = [i for i in ids if 0 < i <= MAX_ID][:limit]  # look the rest up too: report every field
    names = names[:limit]
    by_id = [u for u in await users.get_many(ids) if u.is_active]
    by_name = [u for u in await users.by_usernames(names) if u.is_active]
    _report_missing(ids, {u.id for u in by_id}, "participant_ids", UNKNOWN_ID, errors)
    found_names = {username_key(u.username) for u in by_name}
    _report_missing(names, found_names, "participant_usernames", UNKNOWN_NAME, errors, username_key)
    members = {u.id: u for u in (*by_id, *by_name)}
    if actor is not None:
        members[actor.id] = actor
    if len(members) > limit:
        errors.add(NON_FIELD, TOO_MANY.format(limit))
    return [members[i] for i in sorted(members)]


async def report_gone(
    users: UserStore,
    ids: Sequence[int],
    usernames: Sequence[str],
    limit: int,
    actor: User,
) -> None:
    """Storage refused to add someone (NotFound): look the names up again, so that a
    user deleted (or deactivated) since :func:`resolve` is a 400 on their field, as if
    they had never existed. Returns when everyone named is still there: then the chat,
    or the actor's place in it, is what went missing."""
    errors = Errors()
    await resolve(users, ids, usernames, limit, errors, actor)
    errors.raise_if_any()


def _report_missing(
    wanted: Sequence[K],
    found: set[K],
    field: str,
    template: str,
    errors: Errors,
    key: Callable[[K], K] = lambda value: value,
) -> None:
    for missing in (w for w in wanted if key(w) not in found):
        errors.add(field, template.format(missing))
