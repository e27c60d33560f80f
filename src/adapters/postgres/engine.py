"""Runs storage work on pooled PostgreSQL connections (psycopg 3, ``psycopg_pool``).

Work is a coroutine function of one connection, run inside one transaction:

- writes on a pool of READ COMMITTED connections: a write takes its row locks (the chat
  row first, see :mod:`.queries`) and each statement after a lock wait sees what the
  holder committed;
- reads on a pool of REPEATABLE READ, READ ONLY connections: every statement of one
  piece of work sees one snapshot (a chat, its members and its last message agree).

The pools live on an event loop of the engine's own, in a thread: like the SQLite
adapter, the storage belongs to no caller's loop (coroutines of any loop may use it,
and it opens and closes without one). A caller's coroutine hands its work to that loop
and awaits the outcome; cancelling it cancels the work, which rolls back.

Failures are the domain's, never the driver's:

- a deadlock or serialization failure (two changes crossing each other's locks: a
  user's deletion touching many chats) rolls the work back; it is run again, a few times;
- a database that cannot be reached (refused, restarted, shut down; no connection free
  within the pool's timeout) is :class:`chatcore.errors.Unavailable`, with a hint of
  when to retry, never a driver exception.

Recovery without a restart: a lane (the writes' pool or the reads') that meets a broken
or refused connection marks itself down. While down, work fails at once (a 503 costs
no wait), and at most once a second a probe connection is tried; the first that
succeeds replaces the lane's pool with a fresh one (the old one, its connections dead,
is closed behind it), and work runs again. The pool's own reconnection backs off
exponentially and would take as long again as the outage lasted.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from chatcore.errors import Unavailable

log = logging.getLogger("chatcore.postgres")

T = TypeVar("T")
P = ParamSpec("P")
Conn = psycopg.AsyncConnection[TupleRow]
Work = Callable[[Conn], Awaitable[T]]
Pool = AsyncConnectionPool[Conn]

RETRIES = 5  # runs of one piece of work that crossed another's locks
WAIT_SECONDS = 10.0  # for a free connection (all busy, or the database away): then a 503
RETRY_AFTER_SECONDS = 2  # what a 503 tells the client
CONNECT_TIMEOUT_SECONDS = 3
PROBE_SECONDS = 1.0  # between attempts to reach a database that went away


class Closed(RuntimeError):
    """The storage is not open (not yet, or no longer)."""


_READ_OPTIONS = (
    "-c default_transaction_isolation=repeatable\\ read -c default_transaction_read_only=on"
)


def _pool(url: str, name: str, options: str, size: int) -> Pool:
    return AsyncConnectionPool(
        url,
        min_size=1,
        max_size=size,
        kwargs={
            "options": f"-c timezone=UTC {options}".strip(),
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        },
        timeout=WAIT_SECONDS,
        reconnect_timeout=24 * 3600,  # never give up on the database
        name=name,
        open=False,
    )


class _Lane:
    """One pool and whether its database is known to be away (lives on the engine's
    loop: no lock needed beyond the one that serializes renewals)."""

    def __init__(self, url: str, name: str, options: str, size: int) -> None:
        self._url, self._name, self._options, self._size = url, name, options, size
        self.pool = self._make()
        self.down = False
        self._probed_at = 0.0
        self._renewing = asyncio.Lock()

    def _make(self) -> Pool:
        return _pool(self._url, self._name, self._options, self._size)

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=WAIT_SECONDS + CONNECT_TIMEOUT_SECONDS)

    async def close(self) -> None:
        await self.pool.close()

    async def run(self, work: Work[T]) -> T:
        if self.down:
            await self._recover()
        for attempt in range(1, RETRIES + 1):
            try:
                async with self.pool.connection() as conn, conn.transaction():
                    return await work(conn)
            except pg_errors.TransactionRollback:  # deadlock, serialization failure
                if attempt == RETRIES:
                    raise
                await asyncio.sleep(0.001 * attempt)
            except PoolClosed:  # the pool was renewed under this caller: no verdict
                raise Unavailable(retry_after=RETRY_AFTER_SECONDS) from None
            except PoolTimeout as error:  # every connection busy, or none can be made
                log.warning("database unavailable: %s", _one_line(error))
                if not await self._reachable():  # away, not busy: fail fast from now on
                    self.down = True
                raise Unavailable(retry_after=RETRY_AFTER_SECONDS) from None
            except psycopg.OperationalError as error:
                # Refused, lost, shut down, starting up: the database is away, not the
                # request at fault.
                log.warning("database unavailable: %s", _one_line(error))
                self.down = True
                raise Unavailable(retry_after=RETRY_AFTER_SECONDS) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _reachable(self) -> bool:
        """Whether a new connection to the database can be made now."""
        try:
            probe = await psycopg.AsyncConnection.connect(
                self._url, connect_timeout=CONNECT_TIMEOUT_SECONDS
            )
        except psycopg.Error:
            return False
        await probe.close()
        return True

    async def _recover(self) -> None:
        """Renew the pool if the database answers again; else Unavailable, at once."""
        async with self._renewing:
            if not self.down:
                return  # another caller renewed it meanwhile
            loop = asyncio.get_running_loop()
            if loop.time() - self._probed_at < PROBE_SECONDS:
                raise Unavailable(retry_after=RETRY_AFTER_SECONDS)
            self._probed_at = loop.time()
            if not await self._reachable():
                raise Unavailable(retry_after=RETRY_AFTER_SECONDS)
            fresh = self._make()
            try:
                await fresh.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
            except psycopg.Error:
                await fresh.close()
                raise Unavailable(retry_after=RETRY_AFTER_SECONDS) from None
            old, self.pool, self.down = self.pool, fresh, False
            log.warning("database reachable again: connections renewed")
            task = asyncio.create_task(old.close())
            _CLOSING.add(task)
            task.add_done_callback(_CLOSING.discard)


_CLOSING: set[asyncio.Task[None]] = set()  # old pools being closed (kept referenced)


class Engine:
    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self._url = url
        self._pool_size = pool_size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lanes: tuple[_Lane, _Lane] | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the engine's loop and open both pools, waiting for their first
        connections (a database that cannot be reached fails the start, with the reason)."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("the engine was already started")
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="postgres", daemon=True)
            thread.start()
            self._loop, self._thread = loop, thread
        try:
            asyncio.run_coroutine_threadsafe(self._open(), loop).result()
        except BaseException:
            self.stop()
            raise

    async def _open(self) -> None:
        size = self._pool_size
        writes = _Lane(self._url, "chatcore-writes", "", size)
        reads = _Lane(self._url, "chatcore-reads", _READ_OPTIONS, size)
        try:
            for lane in (writes, reads):
                await lane.open()
        except BaseException:
            await writes.close()
            await reads.close()
            raise
        self._lanes = (writes, reads)

    def stop(self) -> None:
        """Let running work finish, close the pools and stop the loop. Idempotent."""
        with self._lock:
            loop, thread, lanes = self._loop, self._thread, self._lanes
            self._lanes = None
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if lanes is not None:
            asyncio.run_coroutine_threadsafe(_close(lanes), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    async def write(
        self, query: Callable[Concatenate[Conn, P], Awaitable[T]], *args: P.args, **kw: P.kwargs
    ) -> T:
        """Run ``query(conn, *args)`` in a write transaction."""
        return await self._submit(0, lambda conn: query(conn, *args, **kw))

    async def read(
        self, query: Callable[Concatenate[Conn, P], Awaitable[T]], *args: P.args, **kw: P.kwargs
    ) -> T:
        """Run ``query(conn, *args)`` in a read-only snapshot."""
        return await self._submit(1, lambda conn: query(conn, *args, **kw))

    async def _submit(self, which: int, work: Work[T]) -> T:
        with self._lock:
            loop, lanes = self._loop, self._lanes
            if loop is None or lanes is None:
                raise Closed("the PostgreSQL storage is not open")
            future = asyncio.run_coroutine_threadsafe(lanes[which].run(work), loop)
        return await asyncio.wrap_future(future)


async def _close(lanes: tuple[_Lane, _Lane]) -> None:
    for lane in lanes:
        await lane.close()
    await asyncio.gather(*_CLOSING, return_exceptions=True)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300]
