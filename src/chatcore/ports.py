"""Everything the domain needs from outside, as Protocols. Adapters implement them;
the use cases take them from :class:`chatcore.services.Deps`.

Storage methods are coroutines so that an adapter may do I/O (a thread, a socket)
without stalling the caller's event loop. Each method is atomic on its own: the use
cases never need a transaction spanning two calls.

A method that changes what a chat's participants see stores its events in the same
atomic step, each with the chat's next ``seq`` (1, 2, 3, ... per chat: no gap, no
reuse, in commit order), and returns them, seqs filled in, for the use case to publish
once the call has returned (after the commit). A chat's message ids grow with its seq.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

import attrs

from .events import ChatDeleted, Event, MessageDeleted, MessageEdited, MessagePosted
from .model import (
    Activity,
    Archive,
    Chat,
    Counts,
    Message,
    MessageQuery,
    NewMessage,
    NewUser,
    Revocation,
    TokenRecord,
    User,
    UserChanges,
)
from .roster import Plan


class UserStore(Protocol):
    async def add(self, user: NewUser, password_hash: str) -> User:
        """Store a new user with the next id. Raises ``Conflict`` when the username is
        taken, compared by :func:`chatcore.rules.username_key`."""
        ...

    async def get(self, user_id: int) -> User | None: ...

    async def get_many(self, user_ids: Sequence[int]) -> list[User]:
        """The users with these ids that exist, in id order."""
        ...

    async def by_usernames(self, usernames: Sequence[str]) -> list[User]:
        """The users whose username key matches one of these names', in id order."""
        ...

    async def password_hash(self, username: str) -> tuple[User, str] | None:
        """The user with this username (compared by key) and their password hash."""
        ...

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        """Replace the hash of the same password (a rehash with new parameters)."""
        ...

    async def change_password(
        self, user_id: int, password_hash: str, keep_digest: str | None = None
    ) -> bool:
        """Store a new password's hash and revoke every token of the user but
        ``keep_digest``, atomically (no old credential outlives the change); False if no
        such user."""
        ...

    async def search(self, text: str, after: int | None, limit: int) -> list[User]:
        """Users whose username key contains ``username_key(text)``, with ``id > after``,
        in id order, at most ``limit`` of them."""
        ...

    async def update(self, user_id: int, changes: UserChanges) -> User | None:
        """Apply the fields of ``changes`` that are not None; None if no such user."""
        ...

    async def delete(self, user_id: int, leave: Plan) -> list[Event] | None:
        """Remove the user with their tokens, memberships and messages (each chat's last
        message then being the newest that remains), atomically; None if no such user.

        Every other participant is told: each of the user's messages, in any chat, goes
        with a ``message_deleted`` event; then each chat the user is in is changed by
        ``leave`` (called as :meth:`ChatStore.change` calls a plan; it must remove the
        user: :func:`chatcore.roster.departure`). Returns the events of every chat, each
        chat's in seq order."""
        ...


class ChatStore(Protocol):
    async def add(
        self,
        name: str,
        participant_ids: Sequence[int],
        created_at: datetime,
        admin_id: int | None = None,
    ) -> Chat:
        """Store a chat and its participants at once (ids are existing users), with
        ``admin_id`` (one of them: the creator) its first admin; left out, the
        participant with the lowest id. Its seq is 0: a creation is no event. Raises
        ``NotFound``, storing nothing, when one of them does not exist (deleted since the
        caller looked them up)."""
        ...

    async def change(self, chat_id: int, plan: Plan) -> tuple[Chat | None, list[Event]] | None:
        """In one atomic step: call ``plan`` with the chat as it stands (a
        :class:`chatcore.roster.Roster`), apply the :class:`chatcore.roster.ChatChange` it
        returns and store its events at the chat's next seqs. Returns the chat after it
        (None once deleted) and the events; None if there is no such chat. An exception
        from ``plan`` changes nothing and propagates; so does ``NotFound`` when a user the
        change adds does not exist (deleted since the plan was made)."""
        ...

    async def events(self, chat_id: int, since: int, limit: int) -> list[Event]:
        """Up to ``limit`` of the chat's events with seqs above ``since``, in seq order,
        rendered as things are now (:func:`chatcore.events.rendered`). The cost does not
        grow with the chat's history. Member events show the user as they were when it
        happened (a deleted user too)."""
        ...

    async def get(self, chat_id: int) -> Chat | None: ...

    async def get_for(self, chat_id: int, user_id: int) -> Chat | None:
        """The chat if the user is one of its participants, else None. The membership is
        looked up first and nothing more is read without it, so a chat the user is not
        in costs the same as one that does not exist."""
        ...

    async def is_participant(self, chat_id: int, user_id: int) -> bool: ...

    async def for_user(self, user_id: int, limit: int, below: Activity | None = None) -> list[Chat]:
        """At most ``limit`` of the user's chats, most recent activity first (by
        :attr:`Chat.activity`: the newest message's time, or the chat's creation for a
        chat with none; ties broken by the larger chat id), only those whose activity is
        below ``below`` when given. The cost must not grow with the user's chats."""
        ...

    async def list_all(self, after: int | None, limit: int) -> list[Chat]:
        """Every chat with ``id > after``, in id order, at most ``limit``."""
        ...

    async def delete(self, chat_id: int) -> ChatDeleted | None:
        """Remove the chat with its memberships, messages and events; None if no such
        chat. Its ``chat_deleted`` event has the seq after its last (chat ids are never
        reused, so neither is it)."""
        ...


class MessageStore(Protocol):
    async def add(self, message: NewMessage) -> tuple[Message, MessagePosted | None]:
        """Store the message and make it its chat's ``last_message``, with its
        ``message`` event, atomically.

        Raises ``NotFound`` when the sender is not a participant of the chat (or there
        is no such chat), checked in the same atomic step as the insert.

        When ``client_id`` is set and the same sender already stored a message with it
        in the same chat, store nothing and return ``(that message, None)``; otherwise
        ``(the new message, its event)``. Ids grow in storage order across all chats.
        """
        ...

    async def edit(
        self, message_id: int, content: str, edited_at: datetime
    ) -> tuple[Message, MessageEdited] | None:
        """Replace the content and set ``edited_at``, with a ``message_edited`` event,
        atomically; None if no such message."""
        ...

    async def get(self, message_id: int) -> Message | None: ...

    async def delete(self, message_id: int) -> MessageDeleted | None:
        """Remove one message (its chat's last message then being the newest left), with
        a ``message_deleted`` event, atomically; None if no such message."""
        ...

    async def page(self, query: MessageQuery) -> list[Message]:
        """Up to ``query.limit`` messages of the window, oldest first: the newest of the
        window when ``newest_first``, else the oldest."""
        ...


class TokenStore(Protocol):
    async def add(self, token: TokenRecord) -> None: ...

    async def get(self, digest: str) -> TokenRecord | None: ...

    async def holder(self, digest: str) -> tuple[TokenRecord, User] | None:
        """The token and the user holding it, in one read (every request does this)."""
        ...

    async def delete(self, digest: str) -> None: ...

    async def delete_for_user(self, user_id: int) -> int:
        """Revoke every token of a user; returns how many there were."""
        ...

    async def delete_expired(self, now: datetime) -> int:
        """Remove every token (API token or browser session) whose ``expires_at`` is at
        or before ``now``; returns how many there were."""
        ...


@attrs.frozen
class Tally:
    """What a key of an :class:`AttemptStore` holds inside the window."""

    count: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None


Rule = Callable[[Sequence[Tally]], float | None]
"""Given one tally per key, the seconds to wait (refused), or None (admitted)."""


class AttemptStore(Protocol):
    """Attempts per key inside a sliding window, for throttling: failed logins,
    registrations, chat creations."""

    async def hit(
        self, keys: Sequence[str], at: datetime, window: timedelta, rule: Rule
    ) -> float | None:
        """In one atomic step (against every caller of the store, in any process):
        forget what fell out of its window, tally each key's attempts, and ask ``rule``;
        when it admits (None), count one attempt at ``at`` under every key, remembered
        for ``window``. Returns the rule's answer. ``rule`` must be quick and pure: it
        runs inside the store's lock or transaction. Keys must be distinct.

        Attempts whose window has ended are forgotten whatever their key, so keys that
        are never hit again take no room."""
        ...

    async def release(self, keys: Sequence[str], at: datetime) -> None:
        """Uncount one attempt counted at ``at`` under each key (a hit that turned out
        not to be a failure), the one whose window ends first if there are several; a
        key with none at that moment is left alone."""
        ...

    async def clear(self, key: str) -> None:
        """Forget every attempt of the key."""
        ...

    async def prune(self, now: datetime) -> int:
        """Forget every attempt whose window has ended by ``now``, whatever its key (what
        :meth:`hit` does on the way); returns how many were forgotten."""
        ...


class Storage(Protocol):
    """One storage backend: the stores over one shared state."""

    @property
    def users(self) -> UserStore: ...

    @property
    def chats(self) -> ChatStore: ...

    @property
    def messages(self) -> MessageStore: ...

    @property
    def tokens(self) -> TokenStore: ...

    @property
    def attempts(self) -> AttemptStore: ...

    async def counts(self) -> Counts:
        """How many users, chats and messages are stored."""
        ...

    async def dump(self) -> Archive:
        """Every user (with their password hash), chat and message, and the last id each
        table handed out, read in one consistent snapshot. Tokens and attempts are not
        part of it."""
        ...

    async def load(self, archive: Archive) -> None:
        """Store an archive's users, chats and messages with their ids, in one atomic
        step, into a store that holds no user, chat or message (else ``Conflict``, and
        nothing is stored). Each chat's last message and activity follow from its
        messages; new ids continue after ``archive.last_ids`` (and every id stored).
        The archive must be consistent (see :func:`chatcore.operator.check_archive`)."""
        ...

    async def ping(self) -> None:
        """Return when the storage can serve requests now, raise when it cannot: the
        readiness check (``GET /readyz``) calls it, so that a load balancer sends no
        traffic to a process whose database is gone.

        The contract, for every adapter:

        - *Reachable* means a real round trip to where the data lives, on the path
          requests use: a trivial statement (``SELECT 1``) on a connection of the pool
          requests draw from, through the threads or event loop they run on; not a
          check of a flag kept in memory. For a file, that the file it has open is still
          the one at its path (not deleted, moved or replaced).
        - *Cheap*: no table is read, nothing is written, no lock is held past the
          statement; it is called every few seconds, by several probes at once.
        - *Bounded*: it returns or raises within a few seconds (say 2) even when the
          server hangs, using the driver's own timeout (a pool's wait for a connection
          included). The caller also gives up after ``READY_TIMEOUT`` seconds and counts
          that as unreachable, but cancelling must leave the pool sound.
        - *Raises* any ``Exception`` when unreachable, with a message for the operator's
          log (never shown to clients: no password or URL with credentials in it); after
          the cause goes away, the next call returns again, with no restart.
        - Only while open (between ``__aenter__`` and ``__aexit__``, where the adapter
          has a lifecycle); closed, it raises.
        """
        ...


Listener = Callable[[Event], None]
"""Called once for each event published to a chat it listens on, in publish order."""

Unsubscribe = Callable[[], None]

RevocationListener = Callable[[Revocation], None]

ConnectionListener = Callable[[bool], None]
"""Called with False when a notifier loses what carries its notifications, True once it
is back and every subscription is live again."""


class Notifier(Protocol):
    """Wakes up whoever listens on a chat when one of its events is stored, in this
    process or, for a cross-process adapter, in every process.

    A cross-process adapter depends on a broker it can lose. While it has lost it
    (:attr:`connected` False), publishing still succeeds (it never fails the change that
    was stored) but listeners, here or elsewhere, may hear nothing: they look in storage
    themselves meanwhile, and once more when it is back (``on_connection``), since
    whatever was published during the outage may never reach them. An adapter that
    cannot lose it (in-process) is always connected and never calls those listeners."""

    @property
    def connected(self) -> bool:
        """Whether every event published from now on reaches every listener."""
        ...

    async def publish(self, event: Event) -> None:
        """Hand a stored event to every listener on its chat (in this process or, for a
        cross-process adapter, in every process). Called after the event is stored. A
        wake-up, not the record: a listener may miss one, or hear one late or twice, and
        then fills in from storage by seq (DESIGN.md). Never raises for a broker that
        cannot be reached."""
        ...

    async def subscribe(self, chat_id: int, listener: Listener) -> Unsubscribe:
        """Start calling ``listener`` for the chat's events until unsubscribed; returns
        once the subscription is live (every event published from then on reaches it),
        or at once while the notifier is not :attr:`connected` (it goes live with the
        connection, which ``on_connection`` listeners hear). A listener that raises is
        logged and does not keep the event from the others."""
        ...

    async def revoke(self, revocation: Revocation) -> None:
        """Announce that credentials stopped working, so that every process closes the
        live connections opened with them. Called after the change is stored. Like
        :meth:`publish`, never raises for a broker that cannot be reached (whoever
        misses it finds out by checking the credential again)."""
        ...

    def on_revoke(self, listener: RevocationListener) -> Unsubscribe:
        """Start calling ``listener`` for every revocation until unsubscribed."""
        ...

    def on_connection(self, listener: ConnectionListener) -> Unsubscribe:
        """Start calling ``listener`` on every change of :attr:`connected` until
        unsubscribed: False when the notifier lost its connection, True when it is back
        with every subscription live again."""
        ...

    async def ping(self) -> None:
        """Return when the notifier can carry events between processes now, raise when
        it cannot (``GET /readyz``). Same contract as :meth:`Storage.ping`: a real
        round trip to the broker on the connection publishes use (Redis: ``PING`` on
        the client's pool; a pub/sub adapter should also raise while its subscription
        connection is down and being re-established), cheap, bounded by the client's
        socket timeout (a few seconds), raising any ``Exception`` with a message for the
        log and no credentials, and returning again once the broker is back. An
        in-process notifier is always reachable. Unreachable means late, not lost
        (storage is the record): readiness reports it so that an operator sees it.
        """
        ...


class Telemetry(Protocol):
    """What the use cases report for an operator to count: how often, never who or what
    (no username, address or credential is passed). Each method returns at once and
    never raises; :class:`chatcore.deps.NoTelemetry` does nothing."""

    def login_failed(self, throttled: bool) -> None:
        """A password was guessed wrong (a login, or a password change's current
        password), or, ``throttled``, a guess was refused unchecked by the login
        throttle."""
        ...


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool:
        """True when the password matches; False for a mismatch or a malformed hash."""
        ...

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than the current ones."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class TokenGenerator(Protocol):
    def new(self) -> str:
        """A fresh, unguessable secret to hand to a client."""
        ...

    def digest(self, token: str) -> str:
        """The one-way digest under which a token is stored and looked up."""
        ...
