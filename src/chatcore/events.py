"""The events of a chat: every change its participants can see, in one ordered stream.

Each event carries its chat's id and ``seq``: 1, 2, 3, ... per chat, with no gap and no
reuse, given by storage in the same transaction as the change itself. Storage is the
source of truth and the notifier a wake-up (DESIGN.md): a reader that remembers the last
seq it handed on can tell a duplicate (at or below it) from a gap (past the next one),
and fill a gap from storage, whatever order notifications arrive in.

Events are rendered as things are *now* when read back: a message edited later shows its
latest content, and an event that carried a message deleted later reads as
:class:`MessageDeleted` at its own seq, so a replay stays gapless and never carries
deleted content. :func:`rendered` is that rule, in one place.
"""

from __future__ import annotations

import enum
from typing import ClassVar

import attrs

from .model import Chat, Message, User


class EventKind(enum.Enum):
    MESSAGE = "message"
    MESSAGE_EDITED = "message_edited"
    MESSAGE_DELETED = "message_deleted"
    MEMBER_ADDED = "member_added"
    MEMBER_REMOVED = "member_removed"
    CHAT_UPDATED = "chat_updated"
    CHAT_DELETED = "chat_deleted"


@attrs.frozen
class Event:
    """Base of every event: which chat, and where in its stream."""

    kind: ClassVar[EventKind]
    chat_id: int
    seq: int


@attrs.frozen
class MessagePosted(Event):
    kind: ClassVar[EventKind] = EventKind.MESSAGE
    message: Message


@attrs.frozen
class MessageEdited(Event):
    kind: ClassVar[EventKind] = EventKind.MESSAGE_EDITED
    message: Message


@attrs.frozen
class MessageDeleted(Event):
    kind: ClassVar[EventKind] = EventKind.MESSAGE_DELETED
    message_id: int


@attrs.frozen
class MemberAdded(Event):
    kind: ClassVar[EventKind] = EventKind.MEMBER_ADDED
    user: User
    by: User


@attrs.frozen
class MemberRemoved(Event):
    """``user`` left (``by`` is ``user``), was removed by ``by``, or was deleted by an
    administrator (``by`` is that administrator)."""

    kind: ClassVar[EventKind] = EventKind.MEMBER_REMOVED
    user: User
    by: User


@attrs.frozen
class ChatUpdated(Event):
    """A rename, a change of admins (a promotion, a demotion, the hand-over when the
    last admin leaves): the chat as it stands after it."""

    kind: ClassVar[EventKind] = EventKind.CHAT_UPDATED
    chat: Chat


@attrs.frozen
class ChatDeleted(Event):
    """The last event of a chat: it is gone, with its history, for everyone."""

    kind: ClassVar[EventKind] = EventKind.CHAT_DELETED


EVENT_TYPES: tuple[type[Event], ...] = (
    MessagePosted,
    MessageEdited,
    MessageDeleted,
    MemberAdded,
    MemberRemoved,
    ChatUpdated,
    ChatDeleted,
)
BY_KIND: dict[EventKind, type[Event]] = {cls.kind: cls for cls in EVENT_TYPES}


def as_seen(user: User) -> User:
    """A user as an event keeps them, whatever becomes of the account: what anyone may
    see of them (id, username, type) and when they joined; no email, no flags."""
    return User(user.id, user.username, "", user.user_type, user.date_joined)


def rendered(event: Event, current: Message | None, chat: Chat | None = None) -> Event:
    """``event`` as a replay shows it, given the current state of the message it carries
    (None when that message is deleted): edits show the latest content, a deleted
    message's events become :class:`MessageDeleted` at their own seq. A
    :class:`ChatUpdated` shows ``chat``, the chat as it is now, when given (so that no
    replay carries a last message deleted since, and storage keeps no copy of a chat per
    event). Other events are shown as stored."""
    if isinstance(event, ChatUpdated) and chat is not None:
        return attrs.evolve(event, chat=chat)
    if not isinstance(event, MessagePosted | MessageEdited):
        return event
    return message_event(event.kind, event.chat_id, event.seq, event.message.id, current)


def message_event(
    kind: EventKind, chat_id: int, seq: int, message_id: int, current: Message | None
) -> Event:
    """A ``message`` or ``message_edited`` event as a replay shows it, from what storage
    keeps of it (the message's id) and the message as it is now (None: deleted)."""
    if current is None:
        return MessageDeleted(chat_id, seq, message_id)
    event_type = MessageEdited if kind is EventKind.MESSAGE_EDITED else MessagePosted
    return event_type(chat_id, seq, current)
