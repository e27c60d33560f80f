"""Helpers the storage tests share: building rows through the port, with a clock that
moves (by a second and a microsecond, so stored times keep their microseconds)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from adapters.postgres import PostgresStorage
from adapters.sqlite import SqliteStorage
from chatcore.model import Chat, Message, MessageQuery, NewMessage, NewUser, User, UserType
from chatcore.ports import Storage

START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(seconds=1, microseconds=1)


class Seed:
    def __init__(self, storage: Storage, start: datetime = START) -> None:
        self.storage = storage
        self._now = start

    def tick(self) -> datetime:
        self._now += STEP
        return self._now

    async def user(self, username: str, *, is_admin: bool = False) -> User:
        new = NewUser(
            username, f"{username}@example.com", UserType.STUDENT, self.tick(), is_admin=is_admin
        )
        return await self.storage.users.add(new, password_hash(username))

    async def chat(self, *members: User, name: str = "chat", at: datetime | None = None) -> Chat:
        created = self.tick() if at is None else at
        return await self.storage.chats.add(name, [m.id for m in members], created)

    async def send(
        self,
        chat: Chat,
        sender: User,
        content: str = "hello",
        client_id: str | None = None,
        at: datetime | None = None,
    ) -> Message:
        message, created = await self.storage.messages.add(
            self.draft(chat, sender, content, client_id, at)
        )
        assert created
        return message

    def draft(
        self,
        chat: Chat,
        sender: User,
        content: str = "hello",
        client_id: str | None = None,
        at: datetime | None = None,
    ) -> NewMessage:
        return NewMessage(chat.id, sender.id, content, self.tick() if at is None else at, client_id)


def shared_storage(target: str) -> SqliteStorage | PostgresStorage:
    """A storage several processes can share: a PostgreSQL URL, else a SQLite file."""
    if target.startswith("postgresql://"):
        return PostgresStorage(target)
    return SqliteStorage(target)


def password_hash(username: str) -> str:
    return f"$argon2id$fake${username}"


def ids(items: list[Message] | list[User] | list[Chat]) -> list[int]:
    return [item.id for item in items]


async def everything_in(storage: Storage, chat: Chat) -> list[Message]:
    """Every message of a chat, oldest first (the port's largest page holds them all)."""
    return await storage.messages.page(MessageQuery(limit=1_000_000, chat_id=chat.id))


ROUNDS = 10
ROUND_SIZE = 10


async def send_rounds(storage: Storage, chat_id: int, sender_id: int, tag: str) -> list[str]:
    """ROUNDS rounds of ROUND_SIZE concurrent sends: many transactions, each holding
    several messages, to interleave with other writers. Returns the contents sent."""
    contents = []
    for number in range(ROUNDS):
        batch = [f"{tag}:{number}:{n}" for n in range(ROUND_SIZE)]
        drafts = [NewMessage(chat_id, sender_id, text, datetime.now(UTC)) for text in batch]
        await asyncio.gather(*(storage.messages.add(draft) for draft in drafts))
        contents += batch
    return contents
