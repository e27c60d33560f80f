"""The domain's value objects: frozen, comparable, free of I/O."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Generic, TypeVar

import attrs

T = TypeVar("T")


class UserType(enum.Enum):
    OWNER = "owner"
    STUDENT = "student"
    STAFF = "staff"


@attrs.frozen
class User:
    """An account. The password hash is not part of it: only storage and login see that."""

    id: int
    username: str
    email: str
    user_type: UserType
    date_joined: datetime
    is_admin: bool = False
    is_active: bool = True


@attrs.frozen
class UserChanges:
    """A validated edit of an account; None leaves a field as it is."""

    user_type: UserType | None = None
    is_active: bool | None = None
    is_admin: bool | None = None
    email: str | None = None


@attrs.frozen
class NewUser:
    """A validated registration, before storage gives it an id."""

    username: str
    email: str
    user_type: UserType
    date_joined: datetime
    is_admin: bool = False


@attrs.frozen
class Message:
    """A stored message. Ids grow in storage order: id order is the one order of a chat."""

    id: int
    chat_id: int
    sender: User
    content: str
    timestamp: datetime
    client_id: str | None = None
    edited_at: datetime | None = None


@attrs.frozen
class NewMessage:
    """A validated message, before storage gives it an id."""

    chat_id: int
    sender_id: int
    content: str
    timestamp: datetime
    client_id: str | None = None


@attrs.frozen(order=True)
class Activity:
    """Where a chat stands in its participants' chat lists, which put the greatest first:
    the time of its newest message, or of its creation for a chat with none; of two
    chats at one time, the one with the larger id counts as the more recent."""

    at: datetime
    chat_id: int


@attrs.frozen
class Chat:
    """A group chat as its participants see it: who is in it, which of them are its
    admins (user ids, ascending), its latest message, and ``seq``, the seq of its latest
    event (0 for a chat nothing happened in since its creation, which is no event: the
    created chat is the state)."""

    id: int
    name: str
    created_at: datetime
    participants: tuple[User, ...]
    last_message: Message | None = None
    admins: tuple[int, ...] = ()
    seq: int = 0

    def has_participant(self, user_id: int) -> bool:
        return any(user.id == user_id for user in self.participants)

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.admins

    @property
    def activity(self) -> Activity:
        last = self.last_message
        return Activity(self.created_at if last is None else last.timestamp, self.id)


@attrs.frozen
class TokenRecord:
    """A stored credential. Only the digest of the secret is kept, never the secret."""

    digest: str
    user_id: int
    created_at: datetime
    expires_at: datetime


@attrs.frozen
class Revocation:
    """Credentials that stopped working: one token (by digest) or, with ``token_digest``
    None, every credential of the user (deactivated or deleted) except ``keep_digest``
    (the one that changed the password, which stays logged in)."""

    user_id: int
    token_digest: str | None = None
    keep_digest: str | None = None

    def covers(self, user_id: int, digest: str) -> bool:
        """Whether a credential of ``user_id`` with this digest is among those revoked."""
        if user_id != self.user_id or digest == self.keep_digest:
            return False
        return self.token_digest is None or self.token_digest == digest


@attrs.frozen
class MessageQuery:
    """One window of messages, as storage reads it.

    ``chat_id`` narrows to one chat, ``member_id`` to the chats a user is in (both may be
    given). ``newest_first`` reads from the top of the window down (a "before" page, or
    the latest page); otherwise from ``after`` up.
    """

    limit: int
    chat_id: int | None = None
    member_id: int | None = None
    before: int | None = None
    after: int | None = None
    newest_first: bool = True


@attrs.frozen
class Page(Generic[T]):
    """A page of items in id order, and whether more lie on either side of it. (The chat
    list is the one page in another order, most recent activity first: there
    ``has_older`` says that chats of older activity follow, and ``has_newer`` is
    always False, as that list is read one way, from its top.)"""

    items: tuple[T, ...]
    has_older: bool
    has_newer: bool


@attrs.frozen
class Session:
    """A logged-in user and the token they hold (the raw token is shown once, here)."""

    user: User
    token: str


@attrs.frozen
class Counts:
    """How much a store holds."""

    users: int
    chats: int
    messages: int


@attrs.frozen
class StoredUser:
    """A user with their password hash, as an export carries them (never a token)."""

    user: User
    password_hash: str


@attrs.frozen
class StoredChat:
    """A chat as storage keeps it: its participants and admins by id. (Its last message
    and activity follow from its messages, so an archive does not carry them; nor does
    it carry the event stream: a loaded chat's stream starts anew, one event a message.)
    No ``admin_ids`` (an archive made before chats had admins): the lowest-id
    participant is the admin, as the event-log migration decided."""

    id: int
    name: str
    created_at: datetime
    participant_ids: tuple[int, ...]
    admin_ids: tuple[int, ...] = ()


@attrs.frozen
class StoredMessage:
    """A message as storage keeps it: its sender by id."""

    id: int
    chat_id: int
    sender_id: int
    content: str
    timestamp: datetime
    client_id: str | None = None


@attrs.frozen
class LastIds:
    """The largest id each table ever handed out (deleted rows included): a store loaded
    from an archive goes on from here, so no id is ever given to a second thing."""

    users: int = 0
    chats: int = 0
    messages: int = 0


@attrs.frozen
class Archive:
    """Everything a store holds but credentials and throttle state, ids kept, each kind
    in id order: what ``chatcore export`` writes and ``chatcore import`` reads."""

    last_ids: LastIds
    users: tuple[StoredUser, ...] = ()
    chats: tuple[StoredChat, ...] = ()
    messages: tuple[StoredMessage, ...] = ()


@attrs.frozen
class Cleared:
    """What :meth:`chatcore.operator.Operator.clear_sessions` removed."""

    tokens: int
    attempts: int
