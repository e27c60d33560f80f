"""In-memory adapters: complete storage and notifier for library use and unit tests.

Every store method runs to completion without awaiting, so on one event loop each call
is atomic, as the storage port requires. State lives in plain dicts of rows; the rows
keep ids, and read models (Chat, Message) are built on read so they always carry the
current user objects.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

import attrs

from chatcore.errors import Conflict, NotFound
from chatcore.events import (
    ChatDeleted,
    ChatUpdated,
    Event,
    MemberAdded,
    MemberRemoved,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    as_seen,
    rendered,
)
from chatcore.model import (
    Activity,
    Archive,
    Chat,
    Counts,
    LastIds,
    Message,
    MessageQuery,
    NewMessage,
    NewUser,
    Revocation,
    StoredChat,
    StoredMessage,
    StoredUser,
    TokenRecord,
    User,
    UserChanges,
)
from chatcore.ports import (
    ConnectionListener,
    Listener,
    RevocationListener,
    Rule,
    Tally,
    Unsubscribe,
)
from chatcore.roster import ChatChange, Plan, Roster
from chatcore.rules import username_key

from .listeners import Listeners

EV = TypeVar("EV", bound=Event)


@attrs.define
class _ChatRow:
    id: int
    name: str
    created_at: datetime
    member_ids: list[int]  # ascending
    admins: list[int]  # ascending
    # Each member's place in the join order: the chat's seq when they joined (ties by id).
    joined: dict[int, int]
    last_message_id: int | None = None
    activity: Activity = attrs.field(
        default=attrs.Factory(lambda row: Activity(row.created_at, row.id), takes_self=True)
    )
    seq: int = 0
    events: list[Event] = attrs.Factory(list)  # the event of seq n at index n - 1


@attrs.define
class _State:
    users: dict[int, User] = attrs.Factory(dict)
    password_hashes: dict[int, str] = attrs.Factory(dict)
    user_by_key: dict[str, int] = attrs.Factory(dict)
    chats: dict[int, _ChatRow] = attrs.Factory(dict)
    chats_of_user: dict[int, set[int]] = attrs.Factory(dict)
    # Each user's chats as their activities, ascending: a page of the chat list is a
    # slice below a bisection, so its cost does not grow with the user's chats.
    activities_of_user: dict[int, list[Activity]] = attrs.Factory(dict)
    messages: dict[int, NewMessage] = attrs.Factory(dict)
    edited_at: dict[int, datetime] = attrs.Factory(dict)
    message_ids_of_chat: dict[int, list[int]] = attrs.Factory(dict)
    by_client_id: dict[tuple[int, int, str], int] = attrs.Factory(dict)
    tokens: dict[str, TokenRecord] = attrs.Factory(dict)
    last_user_id: int = 0
    last_chat_id: int = 0
    last_message_id: int = 0

    def message(self, message_id: int) -> Message:
        row = self.messages[message_id]
        sender = self.users[row.sender_id]
        edited = self.edited_at.get(message_id)
        return Message(
            message_id, row.chat_id, sender, row.content, row.timestamp, row.client_id, edited
        )

    def drop_messages(self, chat_id: int, doomed: Callable[[NewMessage], bool]) -> list[int]:
        """Remove the chat's messages ``doomed`` picks; the newest left becomes its last.
        Returns the ids removed, ascending."""
        kept, dropped = [], []
        for message_id in self.message_ids_of_chat[chat_id]:
            row = self.messages[message_id]
            if doomed(row):
                del self.messages[message_id]
                self.edited_at.pop(message_id, None)
                if row.client_id is not None:
                    del self.by_client_id[(row.chat_id, row.sender_id, row.client_id)]
                dropped.append(message_id)
            else:
                kept.append(message_id)
        self.message_ids_of_chat[chat_id] = kept
        self.set_last_message(self.chats[chat_id], kept[-1] if kept else None)
        return dropped

    def record(self, row: _ChatRow, event: EV) -> EV:
        """Store an event at the chat's next seq. A chat_updated takes the chat as it
        is then (so it comes after the change it reports)."""
        row.seq += 1
        stored = attrs.evolve(event, seq=row.seq)
        if isinstance(stored, ChatUpdated):
            stored = attrs.evolve(stored, chat=self.chat(row))
        elif isinstance(stored, MemberAdded | MemberRemoved):
            stored = attrs.evolve(stored, user=as_seen(stored.user), by=as_seen(stored.by))
        row.events.append(stored)
        return stored

    def roster(self, row: _ChatRow) -> Roster:
        seniority = sorted(row.member_ids, key=lambda user_id: (row.joined[user_id], user_id))
        return Roster(self.chat(row), tuple(seniority))

    def apply(self, row: _ChatRow, change: ChatChange) -> tuple[Chat | None, list[Event]]:
        self.require_users(change.add)  # before anything changes: all or nothing
        if change.delete:
            self.delete_chat(row)
            return None, [attrs.evolve(e, seq=row.seq + n) for n, e in enumerate(change.events, 1)]
        for user_id in change.remove:
            self.remove_member(row, user_id)
        for user_id in change.add:
            self.add_member(row, user_id, row.seq + 1)  # after everyone before this change
        admins = row.admins if change.admins is None else change.admins
        row.admins = sorted(a for a in set(admins) if a in row.joined)
        if change.name is not None:
            row.name = change.name
        events = [self.record(row, event) for event in change.events]
        return self.chat(row), events

    def require_users(self, user_ids: Sequence[int]) -> None:
        if any(user_id not in self.users for user_id in user_ids):
            raise NotFound  # deleted since the plan was made

    def add_member(self, row: _ChatRow, user_id: int, joined: int) -> None:
        if user_id in row.joined:
            return
        bisect.insort(row.member_ids, user_id)
        row.joined[user_id] = joined
        self.chats_of_user[user_id].add(row.id)
        bisect.insort(self.activities_of_user[user_id], row.activity)

    def remove_member(self, row: _ChatRow, user_id: int) -> None:
        if row.joined.pop(user_id, None) is None:
            return
        row.member_ids.remove(user_id)
        self.chats_of_user[user_id].discard(row.id)
        self.unlist(user_id, row.activity)

    def delete_chat(self, row: _ChatRow) -> None:
        self.drop_messages(row.id, lambda _: True)
        for user_id in list(row.member_ids):
            self.remove_member(row, user_id)
        del self.chats[row.id], self.message_ids_of_chat[row.id]

    def set_last_message(self, row: _ChatRow, message_id: int | None) -> None:
        """The one way a chat's last message changes: it moves the chat in the chat
        lists of its members."""
        old = row.activity
        row.last_message_id = message_id
        at = row.created_at if message_id is None else self.messages[message_id].timestamp
        row.activity = Activity(at, row.id)
        if row.activity == old:
            return
        for user_id in row.member_ids:
            self.unlist(user_id, old)
            bisect.insort(self.activities_of_user[user_id], row.activity)

    def unlist(self, user_id: int, activity: Activity) -> None:
        activities = self.activities_of_user[user_id]
        del activities[bisect.bisect_left(activities, activity)]

    def chat(self, row: _ChatRow) -> Chat:
        participants = tuple(self.users[i] for i in row.member_ids)
        last = None if row.last_message_id is None else self.message(row.last_message_id)
        return Chat(
            row.id, row.name, row.created_at, participants, last, tuple(row.admins), row.seq
        )


class InMemoryUserStore:
    def __init__(self, state: _State) -> None:
        self._s = state

    async def add(self, user: NewUser, password_hash: str) -> User:
        key = username_key(user.username)
        if key in self._s.user_by_key:
            raise Conflict("username taken")
        self._s.last_user_id += 1
        stored = User(self._s.last_user_id, **attrs.asdict(user, recurse=False))
        self._s.users[stored.id] = stored
        self._s.password_hashes[stored.id] = password_hash
        self._s.user_by_key[key] = stored.id
        self._s.chats_of_user[stored.id] = set()
        self._s.activities_of_user[stored.id] = []
        return stored

    async def get(self, user_id: int) -> User | None:
        return self._s.users.get(user_id)

    async def get_many(self, user_ids: Sequence[int]) -> list[User]:
        return [self._s.users[i] for i in sorted(set(user_ids)) if i in self._s.users]

    async def by_usernames(self, usernames: Sequence[str]) -> list[User]:
        ids = {self._s.user_by_key.get(username_key(name)) for name in usernames}
        return [self._s.users[i] for i in sorted(i for i in ids if i is not None)]

    async def password_hash(self, username: str) -> tuple[User, str] | None:
        user_id = self._s.user_by_key.get(username_key(username))
        if user_id is None:
            return None
        return self._s.users[user_id], self._s.password_hashes[user_id]

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        if user_id in self._s.users:
            self._s.password_hashes[user_id] = password_hash

    async def change_password(
        self, user_id: int, password_hash: str, keep_digest: str | None = None
    ) -> bool:
        if user_id not in self._s.users:
            return False
        self._s.password_hashes[user_id] = password_hash
        doomed = [d for d, t in self._s.tokens.items() if t.user_id == user_id and d != keep_digest]
        for digest in doomed:
            del self._s.tokens[digest]
        return True

    async def search(self, text: str, after: int | None, limit: int) -> list[User]:
        needle = username_key(text)
        found = (
            user
            for user_id, user in self._s.users.items()  # dicts keep insertion = id order
            if (after is None or user_id > after) and needle in username_key(user.username)
        )
        return [user for _, user in zip(range(limit), found, strict=False)]

    async def update(self, user_id: int, changes: UserChanges) -> User | None:
        user = self._s.users.get(user_id)
        if user is None:
            return None
        edits = {k: v for k, v in attrs.asdict(changes, recurse=False).items() if v is not None}
        self._s.users[user_id] = updated = attrs.evolve(user, **edits)
        return updated

    async def delete(self, user_id: int, leave: Plan) -> list[Event] | None:
        user = self._s.users.get(user_id)
        if user is None:
            return None
        events: list[Event] = []
        for chat_id, row in list(self._s.chats.items()):
            for message_id in self._s.drop_messages(chat_id, lambda m: m.sender_id == user_id):
                events.append(self._s.record(row, MessageDeleted(chat_id, 0, message_id)))
            if user_id in row.joined:
                events += self._s.apply(row, leave(self._s.roster(row)))[1]
        del self._s.users[user_id], self._s.password_hashes[user_id]
        del self._s.user_by_key[username_key(user.username)]
        del self._s.chats_of_user[user_id], self._s.activities_of_user[user_id]
        for digest in [d for d, t in self._s.tokens.items() if t.user_id == user_id]:
            del self._s.tokens[digest]
        return events


class InMemoryChatStore:
    def __init__(self, state: _State) -> None:
        self._s = state

    async def add(
        self,
        name: str,
        participant_ids: Sequence[int],
        created_at: datetime,
        admin_id: int | None = None,
    ) -> Chat:
        member_ids = sorted(set(participant_ids))
        self._s.require_users(member_ids)
        self._s.last_chat_id += 1
        admin = member_ids[0] if admin_id is None else admin_id
        row = _ChatRow(self._s.last_chat_id, name, created_at, [], [admin], {})
        self._s.chats[row.id] = row
        self._s.message_ids_of_chat[row.id] = []
        for user_id in member_ids:
            self._s.add_member(row, user_id, 0)
        return self._s.chat(row)

    async def change(self, chat_id: int, plan: Plan) -> tuple[Chat | None, list[Event]] | None:
        row = self._s.chats.get(chat_id)
        if row is None:
            return None
        return self._s.apply(row, plan(self._s.roster(row)))

    async def events(self, chat_id: int, since: int, limit: int) -> list[Event]:
        row = self._s.chats.get(chat_id)
        if row is None:
            return []
        page = row.events[max(0, since) : max(0, since) + limit]
        chat = self._s.chat(row) if any(isinstance(e, ChatUpdated) for e in page) else None
        return [rendered(event, self._current(event), chat) for event in page]

    def _current(self, event: Event) -> Message | None:
        if not isinstance(event, MessagePosted | MessageEdited):
            return None
        message_id = event.message.id
        return self._s.message(message_id) if message_id in self._s.messages else None

    async def get(self, chat_id: int) -> Chat | None:
        row = self._s.chats.get(chat_id)
        return None if row is None else self._s.chat(row)

    async def get_for(self, chat_id: int, user_id: int) -> Chat | None:
        if chat_id not in self._s.chats_of_user.get(user_id, ()):
            return None
        return self._s.chat(self._s.chats[chat_id])

    async def is_participant(self, chat_id: int, user_id: int) -> bool:
        return chat_id in self._s.chats_of_user.get(user_id, ())

    async def for_user(self, user_id: int, limit: int, below: Activity | None = None) -> list[Chat]:
        activities = self._s.activities_of_user.get(user_id, [])
        end = len(activities) if below is None else bisect.bisect_left(activities, below)
        page = activities[max(0, end - limit) : end]
        return [self._s.chat(self._s.chats[a.chat_id]) for a in reversed(page)]

    async def list_all(self, after: int | None, limit: int) -> list[Chat]:
        rows = (row for chat_id, row in self._s.chats.items() if after is None or chat_id > after)
        return [self._s.chat(row) for _, row in zip(range(limit), rows, strict=False)]

    async def delete(self, chat_id: int) -> ChatDeleted | None:
        row = self._s.chats.get(chat_id)
        if row is None:
            return None
        self._s.delete_chat(row)
        return ChatDeleted(chat_id, row.seq + 1)


class InMemoryMessageStore:
    def __init__(self, state: _State) -> None:
        self._s = state

    async def add(self, message: NewMessage) -> tuple[Message, MessagePosted | None]:
        if message.chat_id not in self._s.chats_of_user.get(message.sender_id, ()):
            raise NotFound
        key = None
        if message.client_id is not None:
            key = (message.chat_id, message.sender_id, message.client_id)
            original = self._s.by_client_id.get(key)
            if original is not None:
                return self._s.message(original), None
        self._s.last_message_id += 1
        message_id = self._s.last_message_id
        self._s.messages[message_id] = message
        self._s.message_ids_of_chat[message.chat_id].append(message_id)
        row = self._s.chats[message.chat_id]
        self._s.set_last_message(row, message_id)
        if key is not None:
            self._s.by_client_id[key] = message_id
        stored = self._s.message(message_id)
        return stored, self._s.record(row, MessagePosted(row.id, 0, stored))

    async def edit(
        self, message_id: int, content: str, edited_at: datetime
    ) -> tuple[Message, MessageEdited] | None:
        row = self._s.messages.get(message_id)
        if row is None:
            return None
        self._s.messages[message_id] = attrs.evolve(row, content=content)
        self._s.edited_at[message_id] = edited_at
        edited = self._s.message(message_id)
        return edited, self._s.record(
            self._s.chats[row.chat_id], MessageEdited(row.chat_id, 0, edited)
        )

    async def get(self, message_id: int) -> Message | None:
        return self._s.message(message_id) if message_id in self._s.messages else None

    async def delete(self, message_id: int) -> MessageDeleted | None:
        row = self._s.messages.get(message_id)
        if row is None:
            return None
        self._s.drop_messages(row.chat_id, lambda m: m is row)
        return self._s.record(
            self._s.chats[row.chat_id], MessageDeleted(row.chat_id, 0, message_id)
        )

    async def page(self, query: MessageQuery) -> list[Message]:
        chat_ids: Iterable[int] = self._s.chats if query.chat_id is None else [query.chat_id]
        if query.member_id is not None:
            mine = self._s.chats_of_user.get(query.member_id, set())
            chat_ids = mine if query.chat_id is None else [c for c in chat_ids if c in mine]
        windows = [self._window(chat_id, query) for chat_id in chat_ids]
        if query.newest_first:
            ids = heapq.nlargest(query.limit, heapq.merge(*windows))
            ids.reverse()
        else:
            ids = heapq.nsmallest(query.limit, heapq.merge(*windows))
        return [self._s.message(i) for i in ids]

    def _window(self, chat_id: int, query: MessageQuery) -> list[int]:
        """The chat's ids inside the query's bounds, at most ``limit`` from the end read."""
        ids = self._s.message_ids_of_chat.get(chat_id, [])
        low = 0 if query.after is None else bisect.bisect_right(ids, query.after)
        high = len(ids) if query.before is None else bisect.bisect_left(ids, query.before)
        if query.newest_first:
            return ids[max(low, high - query.limit) : high]
        return ids[low : min(high, low + query.limit)]


class InMemoryTokenStore:
    def __init__(self, state: _State) -> None:
        self._s = state

    async def add(self, token: TokenRecord) -> None:
        self._s.tokens[token.digest] = token

    async def get(self, digest: str) -> TokenRecord | None:
        return self._s.tokens.get(digest)

    async def holder(self, digest: str) -> tuple[TokenRecord, User] | None:
        record = self._s.tokens.get(digest)
        user = None if record is None else self._s.users.get(record.user_id)
        return None if record is None or user is None else (record, user)

    async def delete(self, digest: str) -> None:
        self._s.tokens.pop(digest, None)

    async def delete_for_user(self, user_id: int) -> int:
        doomed = [d for d, t in self._s.tokens.items() if t.user_id == user_id]
        for digest in doomed:
            del self._s.tokens[digest]
        return len(doomed)

    async def delete_expired(self, now: datetime) -> int:
        doomed = [d for d, t in self._s.tokens.items() if t.expires_at <= now]
        for digest in doomed:
            del self._s.tokens[digest]
        return len(doomed)


class InMemoryAttemptStore:
    """Each key's attempts as (moment, end of window), oldest first, and one heap of
    every window's end: a hit first drops what has ended, whatever its key."""

    def __init__(self) -> None:
        self._attempts: dict[str, list[tuple[datetime, datetime]]] = {}
        self._ends: list[tuple[datetime, str]] = []

    async def hit(
        self, keys: Sequence[str], at: datetime, window: timedelta, rule: Rule
    ) -> float | None:
        self._forget_ended(at)
        wait = rule([self._tally(key) for key in keys])
        if wait is None:
            for key in keys:
                bisect.insort(self._attempts.setdefault(key, []), (at, at + window))
                heapq.heappush(self._ends, (at + window, key))
        return wait

    async def release(self, keys: Sequence[str], at: datetime) -> None:
        for key in keys:
            entries = self._attempts.get(key, [])
            found = next((i for i, (moment, _) in enumerate(entries) if moment == at), None)
            if found is not None:
                del entries[found]  # its heap entry stays: _forget_ended allows for that
                if not entries:
                    del self._attempts[key]

    async def clear(self, key: str) -> None:
        self._attempts.pop(key, None)

    async def prune(self, now: datetime) -> int:
        before = self._held()
        self._forget_ended(now)
        return before - self._held()

    def _held(self) -> int:
        return sum(len(entries) for entries in self._attempts.values())

    def _tally(self, key: str) -> Tally:
        entries = self._attempts.get(key)
        if not entries:
            return Tally()
        return Tally(len(entries), entries[0][0], entries[-1][0])

    def _forget_ended(self, now: datetime) -> None:
        while self._ends and self._ends[0][0] <= now:
            _, key = heapq.heappop(self._ends)
            entries = self._attempts.get(key)
            if entries is None:
                continue
            entries[:] = [entry for entry in entries if entry[1] > now]
            if not entries:
                del self._attempts[key]


class InMemoryStorage:
    """All the stores over one state: what a test or a library user plugs in."""

    def __init__(self) -> None:
        state = _State()
        self.users = InMemoryUserStore(state)
        self.chats = InMemoryChatStore(state)
        self.messages = InMemoryMessageStore(state)
        self.tokens = InMemoryTokenStore(state)
        self.attempts = InMemoryAttemptStore()
        self._state = state

    async def counts(self) -> Counts:
        s = self._state
        return Counts(len(s.users), len(s.chats), len(s.messages))

    async def dump(self) -> Archive:
        s = self._state
        return Archive(
            LastIds(s.last_user_id, s.last_chat_id, s.last_message_id),
            tuple(StoredUser(s.users[i], s.password_hashes[i]) for i in sorted(s.users)),
            tuple(
                StoredChat(
                    row.id, row.name, row.created_at, tuple(row.member_ids), tuple(row.admins)
                )
                for row in (s.chats[i] for i in sorted(s.chats))
            ),
            tuple(
                StoredMessage(i, m.chat_id, m.sender_id, m.content, m.timestamp, m.client_id)
                for i, m in ((i, s.messages[i]) for i in sorted(s.messages))
            ),
        )

    async def ping(self) -> None:
        return None  # the state is this process's memory: reachable while it runs

    async def load(self, archive: Archive) -> None:
        s = self._state
        if s.users or s.chats or s.messages:
            raise Conflict("the store is not empty")
        # Built aside and swapped in at the end: a failure leaves the store as it was.
        new = _State()
        for stored in archive.users:
            user = stored.user
            new.users[user.id] = user
            new.password_hashes[user.id] = stored.password_hash
            new.user_by_key[username_key(user.username)] = user.id
            new.chats_of_user[user.id] = set()
            new.activities_of_user[user.id] = []
        for chat in archive.chats:
            members = sorted(set(chat.participant_ids))
            # As the event-log migration does with the history it finds: the lowest-id
            # participant (all joined together) is the admin, each message an event.
            admins = sorted(set(chat.admin_ids) & set(members)) or members[:1]
            row = _ChatRow(
                chat.id, chat.name, chat.created_at, members, admins, dict.fromkeys(members, 0)
            )
            new.chats[row.id] = row
            new.message_ids_of_chat[row.id] = []
            for user_id in row.member_ids:
                new.chats_of_user[user_id].add(row.id)
                bisect.insort(new.activities_of_user[user_id], row.activity)
        for message in sorted(archive.messages, key=lambda m: m.id):
            new.messages[message.id] = NewMessage(
                message.chat_id,
                message.sender_id,
                message.content,
                message.timestamp,
                message.client_id,
            )
            new.message_ids_of_chat[message.chat_id].append(message.id)
            if message.client_id is not None:
                key = (message.chat_id, message.sender_id, message.client_id)
                new.by_client_id[key] = message.id
        for chat_id, message_ids in new.message_ids_of_chat.items():
            for message_id in message_ids:
                new.record(new.chats[chat_id], MessagePosted(chat_id, 0, new.message(message_id)))
            if message_ids:
                new.set_last_message(new.chats[chat_id], message_ids[-1])
        last = archive.last_ids
        new.last_user_id = max([last.users, *new.users])
        new.last_chat_id = max([last.chats, *new.chats])
        new.last_message_id = max([last.messages, *new.messages])
        for field in attrs.fields(_State):
            setattr(s, field.name, getattr(new, field.name))


class LocalNotifier:
    """Delivers to listeners in this process, synchronously, in publication order. It
    has no connection to lose: :attr:`connected` is always True."""

    def __init__(self) -> None:
        self._listeners: Listeners[int, Event] = Listeners()
        self._revocation_listeners: Listeners[None, Revocation] = Listeners()

    @property
    def connected(self) -> bool:
        return True

    async def publish(self, event: Event) -> None:
        self._listeners.call(event.chat_id, event)

    async def subscribe(self, chat_id: int, listener: Listener) -> Unsubscribe:
        return self._listeners.add(chat_id, listener)

    async def revoke(self, revocation: Revocation) -> None:
        self._revocation_listeners.call(None, revocation)

    def on_revoke(self, listener: RevocationListener) -> Unsubscribe:
        return self._revocation_listeners.add(None, listener)

    def on_connection(self, listener: ConnectionListener) -> Unsubscribe:
        return _never_called

    async def ping(self) -> None:
        return None  # in-process: nothing between publisher and listeners to lose


def _never_called() -> None:
    """The unsubscribe of a listener that is never called."""
