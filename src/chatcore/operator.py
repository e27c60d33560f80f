"""What the person running the service does from its command line, which no API caller
may: they hold the database, so they are trusted as its owner. Grant or drop the admin
flag, clear expired credentials, and move the whole store out and back in."""

from __future__ import annotations

from collections.abc import Iterable

from .deps import Deps
from .errors import Conflict, NotFound
from .model import Archive, Cleared, Counts, User, UserChanges
from .rules import MAX_ID, is_text, username_key


class ArchiveInvalid(ValueError):
    """An archive that no store could hold as it is; ``problems`` says why, each naming
    the record."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class Operator:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._storage = deps.storage

    async def user_named(self, username: str) -> User:
        """The user with this username (compared as logins compare it), or NotFound."""
        found = await self._storage.users.by_usernames([username])
        if not found:
            raise NotFound(f"There is no user named {username!r}.")
        return found[0]

    async def set_admin(self, username: str, is_admin: bool) -> User:
        """Grant or drop the admin flag. Dropping the last admin's is allowed: unlike an
        admin on the API, an operator cannot lock themselves out (this command grants
        it again). The flag is read on every request, so it applies at once."""
        user = await self.user_named(username)
        updated = await self._storage.users.update(user.id, UserChanges(is_admin=is_admin))
        if updated is None:  # deleted meanwhile
            raise NotFound(f"There is no user named {username!r}.")
        return updated

    async def clear_sessions(self) -> Cleared:
        """Forget expired tokens and sessions, and throttle attempts whose window ended:
        neither counts for anything any more, they only take room."""
        now = self._deps.clock.now()
        tokens = await self._storage.tokens.delete_expired(now)
        attempts = await self._storage.attempts.prune(now)
        return Cleared(tokens, attempts)

    async def export(self) -> Archive:
        return await self._storage.dump()

    async def import_archive(self, archive: Archive) -> Counts:
        """Load an archive into an empty store, all of it or nothing. Raises
        :class:`ArchiveInvalid` for an inconsistent archive and ``Conflict`` for a store
        that already holds users, chats or messages."""
        problems = check_archive(archive)
        if problems:
            raise ArchiveInvalid(problems)
        counts = await self._storage.counts()
        if (counts.users, counts.chats, counts.messages) != (0, 0, 0):
            raise Conflict(
                f"The database is not empty ({counts.users} users, {counts.chats} chats, "
                f"{counts.messages} messages): import only into an empty one."
            )
        await self._storage.load(archive)
        return await self._storage.counts()


def check_archive(archive: Archive) -> list[str]:
    """What keeps an archive from being stored as it is: duplicate ids or usernames, a
    participant, chat or sender that is not there, a sender outside the chat, a repeated
    client id, text SQLite cannot hold, naive times. Empty when it is consistent."""
    problems: list[str] = []
    user_ids = _unique("user", (s.user.id for s in archive.users), problems)
    keys: dict[str, int] = {}
    for stored in archive.users:
        user = stored.user
        _text(f"user {user.id}", (user.username, user.email, stored.password_hash), problems)
        _aware(f"user {user.id}", user.date_joined, problems)
        key = username_key(user.username) if is_text(user.username) else user.username
        if key in keys:
            problems.append(f"user {user.id}: username taken by user {keys[key]}")
        keys.setdefault(key, user.id)
    chat_ids = _unique("chat", (c.id for c in archive.chats), problems)
    members: dict[int, set[int]] = {}
    for chat in archive.chats:
        _text(f"chat {chat.id}", (chat.name,), problems)
        _aware(f"chat {chat.id}", chat.created_at, problems)
        for user_id in sorted(set(chat.participant_ids) - user_ids):
            problems.append(f"chat {chat.id}: no user {user_id}")
        members[chat.id] = set(chat.participant_ids)
    _unique("message", (m.id for m in archive.messages), problems)
    client_ids: set[tuple[int, int, str]] = set()
    for message in archive.messages:
        where = f"message {message.id}"
        _text(where, (message.content, message.client_id or ""), problems)
        _aware(where, message.timestamp, problems)
        if message.chat_id not in chat_ids:
            problems.append(f"{where}: no chat {message.chat_id}")
        elif message.sender_id not in members[message.chat_id]:
            problems.append(f"{where}: sender {message.sender_id} is not in the chat")
        if message.client_id is not None:
            sent = (message.chat_id, message.sender_id, message.client_id)
            if sent in client_ids:
                problems.append(f"{where}: client_id repeated by the same sender in the chat")
            client_ids.add(sent)
    return problems


def _unique(kind: str, ids: Iterable[int], problems: list[str]) -> set[int]:
    seen: set[int] = set()
    for item_id in ids:
        if not 1 <= item_id <= MAX_ID:
            problems.append(f"{kind} {item_id}: ids are from 1 to {MAX_ID}")
        if item_id in seen:
            problems.append(f"{kind} {item_id}: id repeated")
        seen.add(item_id)
    return seen


def _text(where: str, values: Iterable[str], problems: list[str]) -> None:
    if not all(is_text(value) for value in values):
        problems.append(f"{where}: text with unpaired surrogate characters")


def _aware(where: str, moment: object, problems: list[str]) -> None:
    if getattr(moment, "tzinfo", None) is None:
        problems.append(f"{where}: a time without a timezone")
