"""Who is in a chat and who runs it: the membership rules as pure functions.

A change of membership, name or admins is planned here and applied by storage inside
the transaction that stores it (:meth:`chatcore.ports.ChatStore.change`): storage hands
a :data:`Plan` the chat as it stands in that transaction (a :class:`Roster`) and stores
the :class:`ChatChange` it returns, with its events at the chat's next seqs, or nothing
if the plan raises. So the rules live here once, for every adapter, and two concurrent
changes can never break them (two admins demoting each other leave one, not none),
with no retry loop: the plan runs under the store's write lock. Plans must be quick
and pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs

from .errors import NON_FIELD, Forbidden, NotFound, ValidationFailed
from .events import ChatDeleted, ChatUpdated, Event, MemberAdded, MemberRemoved
from .model import Chat, User

TOO_MANY = "A chat has at most {} participants."
LAST_ADMIN = "A chat needs at least one admin: promote someone else first."


@attrs.frozen
class Roster:
    """A chat inside the transaction that changes it: its state, and its participants'
    ids longest-standing first (join order; those who joined together by id)."""

    chat: Chat
    seniority: tuple[int, ...]

    def member(self, user_id: int) -> User | None:
        return next((u for u in self.chat.participants if u.id == user_id), None)


@attrs.frozen
class ChatChange:
    """What storage applies, atomically with ``events`` (their seqs 0 here: storage
    gives each the chat's next seq, in order; a :class:`ChatUpdated` is given the chat
    as it stands after the change). ``delete`` removes the chat with its history; its
    events are then not stored, only returned."""

    name: str | None = None
    add: tuple[int, ...] = ()
    remove: tuple[int, ...] = ()
    admins: tuple[int, ...] | None = None
    delete: bool = False
    events: tuple[Event, ...] = ()


Plan = Callable[[Roster], ChatChange]


def require_member(roster: Roster, actor: User) -> None:
    """An outsider may not even know the chat exists."""
    if not roster.chat.has_participant(actor.id):
        raise NotFound


def require_admin(roster: Roster, actor: User) -> None:
    require_member(roster, actor)
    if not roster.chat.is_admin(actor.id):
        raise Forbidden


def _admins(ids: Iterable[int]) -> tuple[int, ...]:
    return tuple(sorted(set(ids)))


def _updated(chat: Chat) -> ChatUpdated:
    return ChatUpdated(chat.id, 0, chat)  # storage fills in the seq and the chat after


def membership(
    roster: Roster,
    by: User,
    wanted: Iterable[User],
    limit: int,
    name: str | None = None,
    *,
    by_joins: bool = True,
) -> ChatChange:
    """The chat with exactly ``wanted`` as participants (``by`` always among them) and
    ``name`` (None: as it is). Admins who leave are no longer admins; ``by`` is an admin,
    so one stays. Events: member_removed for each one gone, member_added for each one
    new (by id), and chat_updated when the name changes. Nothing changes, nothing is
    told.

    ``by_joins`` False: ``by`` is a site administrator changing a chat they need not be
    in, who joins it only if ``wanted`` names them; the caller then keeps an admin among
    ``wanted`` (adds and renames leave everyone in; removals go by :func:`departure`)."""
    chat = roster.chat
    people = {u.id: u for u in chat.participants}
    wanted_by_id = {u.id: u for u in wanted} | ({by.id: by} if by_joins else {})
    if len(wanted_by_id) > limit:
        raise ValidationFailed.on(NON_FIELD, TOO_MANY.format(limit))
    current = people.keys()
    gone = sorted(current - wanted_by_id.keys())
    new = sorted(wanted_by_id.keys() - current)
    renamed = name is not None and name != chat.name
    admins = _admins(a for a in chat.admins if a in wanted_by_id)
    events: list[Event] = [MemberRemoved(chat.id, 0, people[i], by) for i in gone]
    events += [MemberAdded(chat.id, 0, wanted_by_id[i], by) for i in new]
    if renamed:
        events.append(_updated(chat))
    return ChatChange(
        name=name if renamed else None,
        add=tuple(new),
        remove=tuple(gone),
        admins=admins if admins != chat.admins else None,
        events=tuple(events),
    )


def departure(user_id: int, by: User | None = None) -> Plan:
    """``user_id`` leaves the chat (``by`` None: of their own accord), or is removed by
    ``by``. When the last admin goes, the longest-standing participant left becomes
    admin (chat_updated); when the last participant goes, the chat is deleted."""

    def plan(roster: Roster) -> ChatChange:
        chat = roster.chat
        leaving = roster.member(user_id)
        if leaving is None:
            raise NotFound
        actor = leaving if by is None else by
        stay = [i for i in roster.seniority if i != user_id]
        if not stay:
            return ChatChange(delete=True, events=(ChatDeleted(chat.id, 0),))
        admins = _admins(a for a in chat.admins if a != user_id) or (stay[0],)
        events: list[Event] = [MemberRemoved(chat.id, 0, leaving, actor)]
        handed_over = any(a not in chat.admins for a in admins)
        if handed_over:
            events.append(_updated(chat))
        return ChatChange(
            remove=(user_id,),
            admins=admins if admins != chat.admins else None,
            events=tuple(events),
        )

    return plan


def promotion(roster: Roster, user_id: int) -> ChatChange:
    """``user_id`` becomes an admin too (already one: nothing happens)."""
    chat = roster.chat
    if not chat.has_participant(user_id):
        raise ValidationFailed.on("user_id", f'User "{user_id}" is not in this chat.')
    if chat.is_admin(user_id):
        return ChatChange()
    return ChatChange(admins=_admins((*chat.admins, user_id)), events=(_updated(chat),))


def demotion(roster: Roster, user_id: int) -> ChatChange:
    """``user_id`` stops being an admin; the last admin cannot."""
    chat = roster.chat
    if not chat.is_admin(user_id):
        raise NotFound  # no such admin of this chat
    if chat.admins == (user_id,):
        raise ValidationFailed.on(NON_FIELD, LAST_ADMIN)
    admins = _admins(a for a in chat.admins if a != user_id)
    return ChatChange(admins=admins, events=(_updated(chat),))


def deletion(roster: Roster) -> ChatChange:
    return ChatChange(delete=True, events=(ChatDeleted(roster.chat.id, 0),))
