"""The PostgreSQL storage adapter: the stores of :class:`chatcore.ports.Storage` over one
database, their SQL run on pooled connections by an :class:`~.engine.Engine`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING

import psycopg

from chatcore.events import ChatDeleted, Event, MessageDeleted, MessageEdited, MessagePosted
from chatcore.model import (
    Activity,
    Archive,
    Chat,
    Counts,
    Message,
    MessageQuery,
    NewMessage,
    NewUser,
    TokenRecord,
    User,
    UserChanges,
)
from chatcore.ports import Rule
from chatcore.roster import Plan

from . import queries as q
from .engine import Engine
from .maintenance import Unreachable, redacted
from .schema import LATEST, migrate, recorded_versions


class PostgresUserStore:
    def __init__(self, engine: Engine) -> None:
        self._e = engine

    async def add(self, user: NewUser, password_hash: str) -> User:
        return await self._e.write(q.add_user, user, password_hash)

    async def get(self, user_id: int) -> User | None:
        return await self._e.read(q.get_user, user_id)

    async def get_many(self, user_ids: Sequence[int]) -> list[User]:
        return await self._e.read(q.get_users, user_ids)

    async def by_usernames(self, usernames: Sequence[str]) -> list[User]:
        return await self._e.read(q.users_by_names, usernames)

    async def password_hash(self, username: str) -> tuple[User, str] | None:
        return await self._e.read(q.password_hash, username)

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        await self._e.write(q.set_password_hash, user_id, password_hash)

    async def change_password(
        self, user_id: int, password_hash: str, keep_digest: str | None = None
    ) -> bool:
        return await self._e.write(q.change_password, user_id, password_hash, keep_digest)

    async def search(self, text: str, after: int | None, limit: int) -> list[User]:
        return await self._e.read(q.search_users, text, after, limit)

    async def update(self, user_id: int, changes: UserChanges) -> User | None:
        return await self._e.write(q.update_user, user_id, changes)

    async def delete(self, user_id: int, leave: Plan) -> list[Event] | None:
        return await self._e.write(q.delete_user, user_id, leave)


class PostgresChatStore:
    def __init__(self, engine: Engine) -> None:
        self._e = engine

    async def add(
        self,
        name: str,
        participant_ids: Sequence[int],
        created_at: datetime,
        admin_id: int | None = None,
    ) -> Chat:
        return await self._e.write(q.add_chat, name, participant_ids, created_at, admin_id)

    async def change(self, chat_id: int, plan: Plan) -> tuple[Chat | None, list[Event]] | None:
        return await self._e.write(q.change_chat, chat_id, plan)

    async def events(self, chat_id: int, since: int, limit: int) -> list[Event]:
        return await self._e.read(q.chat_events, chat_id, since, limit)

    async def get(self, chat_id: int) -> Chat | None:
        return await self._e.read(q.get_chat, chat_id)

    async def is_participant(self, chat_id: int, user_id: int) -> bool:
        return await self._e.read(q.is_participant, chat_id, user_id)

    async def get_for(self, chat_id: int, user_id: int) -> Chat | None:
        return await self._e.read(q.chat_for, chat_id, user_id)

    async def for_user(self, user_id: int, limit: int, below: Activity | None = None) -> list[Chat]:
        return await self._e.read(q.chats_of_user, user_id, limit, below)

    async def list_all(self, after: int | None, limit: int) -> list[Chat]:
        return await self._e.read(q.all_chats, after, limit)

    async def delete(self, chat_id: int) -> ChatDeleted | None:
        return await self._e.write(q.delete_chat, chat_id)


class PostgresMessageStore:
    def __init__(self, engine: Engine) -> None:
        self._e = engine

    async def add(self, message: NewMessage) -> tuple[Message, MessagePosted | None]:
        return await self._e.write(q.add_message, message)

    async def edit(
        self, message_id: int, content: str, edited_at: datetime
    ) -> tuple[Message, MessageEdited] | None:
        return await self._e.write(q.edit_message, message_id, content, edited_at)

    async def get(self, message_id: int) -> Message | None:
        return await self._e.read(q.get_message, message_id)

    async def delete(self, message_id: int) -> MessageDeleted | None:
        return await self._e.write(q.delete_message, message_id)

    async def page(self, query: MessageQuery) -> list[Message]:
        return await self._e.read(q.page, query)


class PostgresTokenStore:
    def __init__(self, engine: Engine) -> None:
        self._e = engine

    async def add(self, token: TokenRecord) -> None:
        await self._e.write(q.add_token, token)

    async def get(self, digest: str) -> TokenRecord | None:
        return await self._e.read(q.get_token, digest)

    async def holder(self, digest: str) -> tuple[TokenRecord, User] | None:
        return await self._e.read(q.token_holder, digest)

    async def delete(self, digest: str) -> None:
        await self._e.write(q.delete_token, digest)

    async def delete_for_user(self, user_id: int) -> int:
        return await self._e.write(q.delete_user_tokens, user_id)

    async def delete_expired(self, now: datetime) -> int:
        return await self._e.write(q.delete_expired_tokens, now)


class PostgresAttemptStore:
    def __init__(self, engine: Engine) -> None:
        self._e = engine

    async def hit(
        self, keys: Sequence[str], at: datetime, window: timedelta, rule: Rule
    ) -> float | None:
        # A write, never a read: the tally and the count share one transaction.
        return await self._e.write(q.hit, keys, at, window, rule)

    async def release(self, keys: Sequence[str], at: datetime) -> None:
        await self._e.write(q.release_attempts, keys, at)

    async def clear(self, key: str) -> None:
        await self._e.write(q.clear_attempts, key)

    async def prune(self, now: datetime) -> int:
        return await self._e.write(q.prune_attempts, now)


class SchemaOutOfDate(RuntimeError):
    """The database lacks migrations and the storage was told not to apply them."""


class PostgresStorage:
    """Storage in one PostgreSQL database, shared by any number of processes and hosts.

    ``open()`` migrates the database (unless ``migrate=False``, when it only checks that
    the schema is current) and opens the connection pools; ``close()`` closes them. Both
    block: call them at start-up and shut-down, or use ``async with``, which runs them
    off the loop (``with`` works too). Coroutines of any event loop may use it.
    """

    def __init__(self, url: str, *, migrate: bool = True, pool_size: int = 8) -> None:
        self.url = url
        self._migrate = migrate
        self._engine = Engine(url, pool_size=pool_size)
        self.users = PostgresUserStore(self._engine)
        self.chats = PostgresChatStore(self._engine)
        self.messages = PostgresMessageStore(self._engine)
        self.tokens = PostgresTokenStore(self._engine)
        self.attempts = PostgresAttemptStore(self._engine)

    async def counts(self) -> Counts:
        return await self._engine.read(q.counts)

    async def ping(self) -> None:
        """``SELECT 1`` on the read lane's pool, through the engine's loop, as requests
        go: while the database is away the lane answers ``Unavailable`` at once."""
        await self._engine.read(q.ping)

    async def dump(self) -> Archive:
        return await self._engine.read(q.dump)

    async def load(self, archive: Archive) -> None:
        await self._engine.write(q.load, archive)

    def open(self) -> PostgresStorage:
        """Raises :class:`~.maintenance.Unreachable` when the database cannot be reached."""
        try:
            self._prepare()
            self._engine.start()
        except psycopg.Error as error:
            raise Unreachable(f"{redacted(self.url)}: {' '.join(str(error).split())}") from None
        return self

    def _prepare(self) -> None:
        if self._migrate:
            migrate(self.url)
        else:
            with psycopg.connect(self.url, autocommit=True) as conn:
                versions = recorded_versions(conn)
            if versions != list(range(1, LATEST + 1)):
                raise SchemaOutOfDate(
                    f"the database has schema versions {versions}, this code needs 1 to "
                    f"{LATEST}: run `chatcore migrate`"
                )

    def close(self) -> None:
        self._engine.stop()

    def __enter__(self) -> PostgresStorage:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> PostgresStorage:
        return await asyncio.to_thread(self.open)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.close)


if TYPE_CHECKING:
    from chatcore.ports import Storage

    def _implements_the_port(storage: PostgresStorage) -> Storage:
        return storage  # mypy checks PostgresStorage against the Storage protocol here
