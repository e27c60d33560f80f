"""The one place the use cases are wired to adapters. The app factory, the command line,
tests and library users all call :func:`bootstrap`, passing the adapters they want in
place of the defaults; :func:`adapters_from` builds the adapters that the settings name,
with their lifecycle."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import attrs

from adapters.clock import SystemClock
from adapters.hashing import Argon2Hasher
from adapters.memory import InMemoryStorage, LocalNotifier
from adapters.metrics import NO_METRICS, CountingNotifier, Metrics
from adapters.postgres import PostgresStorage
from adapters.postgres import migrate as postgres_migrate
from adapters.postgres import migration_status as postgres_migration_status
from adapters.prometheus import PrometheusMetrics
from adapters.sqlite import SqliteStorage, migration_status
from adapters.sqlite import backup as sqlite_backup
from adapters.sqlite import migrate as sqlite_migrate
from adapters.tokens import SecretTokens
from chatcore.deps import Deps, Policy
from chatcore.ports import Clock, Notifier, PasswordHasher, Storage, Telemetry, TokenGenerator
from chatcore.services import Services

from .settings import Settings


def bootstrap(
    storage: Storage | None = None,
    notifier: Notifier | None = None,
    hasher: PasswordHasher | None = None,
    clock: Clock | None = None,
    tokens: TokenGenerator | None = None,
    policy: Policy | None = None,
    telemetry: Telemetry = NO_METRICS,
) -> Services:
    deps = Deps(
        storage=storage or InMemoryStorage(),
        notifier=notifier or LocalNotifier(),
        hasher=hasher or Argon2Hasher(),
        clock=clock or SystemClock(),
        tokens=tokens or SecretTokens(),
        policy=policy or Policy(),
        telemetry=telemetry,
    )
    return Services.build(deps)


class CannotBackUp(RuntimeError):
    """This storage makes no backup file; the message says why and what to do instead."""


MEMORY_BACKUP = "memory storage keeps nothing on disk: there is nothing to back up"
POSTGRES_BACKUP = (
    "chatcore backup copies SQLite files; back up a PostgreSQL database with PostgreSQL's "
    "own tools: pg_dump (or continuous archiving). `chatcore export` also writes a "
    "portable copy of the users, chats and messages"
)


def _refuse_postgres(target: Path, force: bool) -> None:
    raise CannotBackUp(POSTGRES_BACKUP)


def _or_refusal(backup: Callable[[Path, bool], None] | None) -> Callable[[Path, bool], None]:
    def refuse(target: Path, force: bool) -> None:
        raise CannotBackUp(MEMORY_BACKUP)

    return refuse if backup is None else backup


@attrs.frozen
class Adapters:
    """The adapters named by the settings, with their lifecycle: building them opens
    nothing; ``async with adapters:`` opens what holds resources (the database's threads,
    the notifier's connection to Redis), in order, and closes them, and the hashing pool,
    on the way out."""

    storage: Storage
    notifier: Notifier
    hasher: Argon2Hasher
    # What needs opening and closing around use: the storage (nothing, in memory), then
    # the notifier (nothing, in-process).
    resources: tuple[contextlib.AbstractAsyncContextManager[object], ...] = ()
    # Creates or upgrades the stored schema and returns the versions applied; None when
    # nothing outlives the process, so there is nothing to migrate.
    migrate: Callable[[], list[int]] | None = None
    # Every migration known, as (version, description, applied?), read without changing
    # anything; None, as for ``migrate``. Raises if the storage cannot be reached.
    migrations: Callable[[], list[tuple[int, str, bool]]] | None = None
    # Writes a consistent copy of the stored data to a file (target, force); raises
    # CannotBackUp with what to do instead when this storage has no such thing.
    backup: Callable[[Path, bool], None] = attrs.field(default=None, converter=_or_refusal)
    # What every adapter reports to (the notifier above already counts through it); and
    # the Prometheus text of it all, None when CHATCORE_METRICS is off (then nothing is
    # counted: ``metrics`` is NO_METRICS).
    metrics: Metrics = NO_METRICS
    exposition: Callable[[], bytes] | None = None
    _stack: contextlib.AsyncExitStack = attrs.field(factory=contextlib.AsyncExitStack)

    def services(self, policy: Policy | None = None) -> Services:
        return bootstrap(
            storage=self.storage,
            notifier=self.notifier,
            hasher=self.hasher,
            policy=policy,
            telemetry=self.metrics,
        )

    async def __aenter__(self) -> Adapters:
        self._stack.callback(self.hasher.close)
        try:
            for resource in self.resources:
                await self._stack.enter_async_context(resource)
        except BaseException:
            await self._stack.aclose()  # close what did open
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()


def adapters_from(settings: Settings) -> Adapters:
    """The one factory of adapters: every entrypoint (the app, each command) and the
    tests take theirs from here, so CHATCORE_STORAGE, _DATABASE_URL (or _DATABASE) and
    _MIGRATE mean the same everywhere; and CHATCORE_REDIS_URL: the notifier of several
    processes, opened with the storage (without it, the in-process one). With
    CHATCORE_METRICS on, one :class:`PrometheusMetrics` per call (its own registry) is
    handed to every adapter that counts something."""
    prometheus = PrometheusMetrics() if settings.metrics else None
    metrics: Metrics = NO_METRICS if prometheus is None else prometheus
    exposition = None if prometheus is None else prometheus.exposition
    notifier, notifier_resources = _notifier_from(settings)
    if prometheus is not None:
        notifier.on_connection(lambda connected: _reconnected(metrics, connected))
        notifier = CountingNotifier(notifier, metrics)
    hasher = Argon2Hasher()
    if settings.storage == "memory":
        return Adapters(
            InMemoryStorage(),
            notifier,
            hasher,
            metrics=metrics,
            exposition=exposition,
            resources=notifier_resources,
        )
    where = settings.postgres_url
    storage: SqliteStorage | PostgresStorage
    migrate: Callable[[str], list[int]]
    status: Callable[[str], Sequence[tuple[_Described, bool]]]
    if where is not None:
        storage = PostgresStorage(where, migrate=settings.migrate)
        migrate, status, backup = postgres_migrate, postgres_migration_status, _refuse_postgres
    else:
        where = path = settings.sqlite_path
        storage = SqliteStorage(path, migrate=settings.migrate, metrics=metrics)
        migrate, status = sqlite_migrate, migration_status

        def backup(target: Path, force: bool) -> None:
            sqlite_backup(path, target, force=force)

    return Adapters(
        storage,
        notifier,
        hasher,
        metrics=metrics,
        exposition=exposition,
        resources=(storage, *notifier_resources),
        migrate=functools.partial(migrate, where),
        migrations=functools.partial(_listed, status, where),
        backup=backup,
    )


def _reconnected(metrics: Metrics, connected: bool) -> None:
    if connected:  # back, every subscription live again
        metrics.notifier_reconnected()


def _notifier_from(
    settings: Settings,
) -> tuple[Notifier, tuple[contextlib.AbstractAsyncContextManager[object], ...]]:
    if not settings.redis_url:
        return LocalNotifier(), ()
    # Imported only when chosen: redis-py takes a while to import, and most commands
    # (and single-process servers) never need it.
    from adapters.redis import RedisNotifier

    notifier = RedisNotifier(settings.redis_url, settings.redis_prefix)
    return notifier, (notifier,)


class _Described(Protocol):
    @property
    def version(self) -> int: ...

    @property
    def description(self) -> str: ...


def _listed(
    status: Callable[[str], Sequence[tuple[_Described, bool]]], where: str
) -> list[tuple[int, str, bool]]:
    return [(m.version, m.description, applied) for m, applied in status(where)]
