"""The SQLite storage adapter: the stores of :class:`chatcore.ports.Storage` over one
database file, their SQL run off the event loop by an :class:`Engine`."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING

from adapters.metrics import NO_METRICS, Metrics
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

from . import queries
from .connection import StrPath
from .engine import Engine
from .schema import LATEST, migrate_connection, recorded_versions


class SqliteUserStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def add(self, user: NewUser, password_hash: str) -> User:
        return await self._engine.write(lambda conn: queries.add_user(conn, user, password_hash))

    async def get(self, user_id: int) -> User | None:
        return await self._engine.read(lambda conn: queries.get_user(conn, user_id))

    async def get_many(self, user_ids: Sequence[int]) -> list[User]:
        return await self._engine.read(lambda conn: queries.get_users(conn, user_ids))

    async def by_usernames(self, usernames: Sequence[str]) -> list[User]:
        return await self._engine.read(lambda conn: queries.users_by_names(conn, usernames))

    async def password_hash(self, username: str) -> tuple[User, str] | None:
        return await self._engine.read(lambda conn: queries.password_hash(conn, username))

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        await self._engine.write(
            lambda conn: queries.set_password_hash(conn, user_id, password_hash)
        )

    async def change_password(
        self, user_id: int, password_hash: str, keep_digest: str | None = None
    ) -> bool:
        return await self._engine.write(
            lambda conn: queries.change_password(conn, user_id, password_hash, keep_digest)
        )

    async def search(self, text: str, after: int | None, limit: int) -> list[User]:
        return await self._engine.read(lambda conn: queries.search_users(conn, text, after, limit))

    async def update(self, user_id: int, changes: UserChanges) -> User | None:
        return await self._engine.write(lambda conn: queries.update_user(conn, user_id, changes))

    async def delete(self, user_id: int, leave: Plan) -> list[Event] | None:
        return await self._engine.write(lambda conn: queries.delete_user(conn, user_id, leave))


class SqliteChatStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def add(
        self,
        name: str,
        participant_ids: Sequence[int],
        created_at: datetime,
        admin_id: int | None = None,
    ) -> Chat:
        return await self._engine.write(
            lambda conn: queries.add_chat(conn, name, participant_ids, created_at, admin_id)
        )

    async def change(self, chat_id: int, plan: Plan) -> tuple[Chat | None, list[Event]] | None:
        return await self._engine.write(lambda conn: queries.change_chat(conn, chat_id, plan))

    async def events(self, chat_id: int, since: int, limit: int) -> list[Event]:
        return await self._engine.read(
            lambda conn: queries.chat_events(conn, chat_id, since, limit)
        )

    async def get(self, chat_id: int) -> Chat | None:
        return await self._engine.read(lambda conn: queries.get_chat(conn, chat_id))

    async def is_participant(self, chat_id: int, user_id: int) -> bool:
        return await self._engine.read(lambda conn: queries.is_participant(conn, chat_id, user_id))

    async def get_for(self, chat_id: int, user_id: int) -> Chat | None:
        return await self._engine.read(lambda conn: queries.chat_for(conn, chat_id, user_id))

    async def for_user(self, user_id: int, limit: int, below: Activity | None = None) -> list[Chat]:
        return await self._engine.read(
            lambda conn: queries.chats_of_user(conn, user_id, limit, below)
        )

    async def list_all(self, after: int | None, limit: int) -> list[Chat]:
        return await self._engine.read(lambda conn: queries.all_chats(conn, after, limit))

    async def delete(self, chat_id: int) -> ChatDeleted | None:
        return await self._engine.write(lambda conn: queries.delete_chat(conn, chat_id))


class SqliteMessageStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def add(self, message: NewMessage) -> tuple[Message, MessagePosted | None]:
        return await self._engine.write(lambda conn: queries.add_message(conn, message))

    async def edit(
        self, message_id: int, content: str, edited_at: datetime
    ) -> tuple[Message, MessageEdited] | None:
        return await self._engine.write(
            lambda conn: queries.edit_message(conn, message_id, content, edited_at)
        )

    async def get(self, message_id: int) -> Message | None:
        return await self._engine.read(lambda conn: queries.get_message(conn, message_id))

    async def delete(self, message_id: int) -> MessageDeleted | None:
        return await self._engine.write(lambda conn: queries.delete_message(conn, message_id))

    async def page(self, query: MessageQuery) -> list[Message]:
        return await self._engine.read(lambda conn: queries.page(conn, query))


class SqliteTokenStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def add(self, token: TokenRecord) -> None:
        await self._engine.write(lambda conn: queries.add_token(conn, token))

    async def get(self, digest: str) -> TokenRecord | None:
        return await self._engine.read(lambda conn: queries.get_token(conn, digest))

    async def holder(self, digest: str) -> tuple[TokenRecord, User] | None:
        # Every request's lookup: two primary-key probes, cheaper here than a thread hop.
        return self._engine.read_here(lambda conn: queries.token_holder(conn, digest))

    async def delete(self, digest: str) -> None:
        await self._engine.write(lambda conn: queries.delete_token(conn, digest))

    async def delete_for_user(self, user_id: int) -> int:
        return await self._engine.write(lambda conn: queries.delete_user_tokens(conn, user_id))

    async def delete_expired(self, now: datetime) -> int:
        return await self._engine.write(lambda conn: queries.delete_expired_tokens(conn, now))


class SqliteAttemptStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def hit(
        self, keys: Sequence[str], at: datetime, window: timedelta, rule: Rule
    ) -> float | None:
        # A write, never a read: the tally and the count share the writer's transaction.
        return await self._engine.write(lambda conn: queries.hit(conn, keys, at, window, rule))

    async def release(self, keys: Sequence[str], at: datetime) -> None:
        await self._engine.write(lambda conn: queries.release_attempts(conn, keys, at))

    async def clear(self, key: str) -> None:
        await self._engine.write(lambda conn: queries.clear_attempts(conn, key))

    async def prune(self, now: datetime) -> int:
        return await self._engine.write(lambda conn: queries.prune_attempts(conn, now))


class SchemaOutOfDate(RuntimeError):
    """The file lacks migrations and the storage was told not to apply them."""


class SqliteStorage:
    """Storage in one SQLite file, shareable by several processes.

    ``open()`` creates or migrates the file (unless ``migrate=False``, when it only checks
    that the schema is current) and starts the threads; ``close()`` finishes every queued
    write and stops them. Both block, so call them at start-up and shut-down, or use
    ``async with``, which runs them off the loop (``with`` works too). The storage belongs
    to no event loop: coroutines of any loop may use it.
    """

    def __init__(
        self,
        path: StrPath,
        *,
        readers: int = 4,
        migrate: bool = True,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.path = path
        self._migrate = migrate
        self._engine = Engine(path, readers=readers, metrics=metrics)
        self._identity: tuple[int, int] | None = None  # the file opened: (device, inode)
        self.users = SqliteUserStore(self._engine)
        self.chats = SqliteChatStore(self._engine)
        self.messages = SqliteMessageStore(self._engine)
        self.tokens = SqliteTokenStore(self._engine)
        self.attempts = SqliteAttemptStore(self._engine)

    async def counts(self) -> Counts:
        return await self._engine.read(queries.counts)

    async def dump(self) -> Archive:
        return await self._engine.read(queries.dump)

    async def load(self, archive: Archive) -> None:
        await self._engine.write(lambda conn: queries.load(conn, archive))

    async def ping(self) -> None:
        """A read transaction on a reader connection (the header's schema version: a
        real read of the file, through the threads requests use), then a check that
        the path still names the file those connections hold open: one deleted, moved
        away or replaced under a running server would otherwise go on being served,
        and written, where nobody will find it again."""
        await self._engine.read(self._probe)

    def _probe(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA schema_version").fetchone()
        try:
            now = _identity(self.path)
        except OSError as error:
            raise Unreachable(f"{self.path}: {error.strerror or error}") from None
        if now != self._identity:
            raise Unreachable(f"{self.path} is no longer the database file this server opened")

    def open(self) -> SqliteStorage:
        self._engine.start(self._prepare)
        self._identity = _identity(self.path)
        return self

    def close(self) -> None:
        self._engine.stop()

    def __enter__(self) -> SqliteStorage:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> SqliteStorage:
        return await asyncio.to_thread(self.open)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.close)

    def _prepare(self, conn: sqlite3.Connection) -> None:
        if self._migrate:
            migrate_connection(conn)
        elif (versions := recorded_versions(conn)) != list(range(1, LATEST + 1)):
            raise SchemaOutOfDate(
                f"{self.path} has schema versions {versions}, this code needs 1 to {LATEST}: "
                "run `chatcore migrate`"
            )


class Unreachable(RuntimeError):
    """The database file is not where this storage opened it (``ping``)."""


def _identity(path: StrPath) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


if TYPE_CHECKING:
    from chatcore.ports import Storage

    def _implements_the_port(storage: SqliteStorage) -> Storage:
        return storage  # mypy checks SqliteStorage against the Storage protocol here
