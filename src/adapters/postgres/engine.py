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
- a database that cannot be reached (refused, restarted, shut down, no connection free
  within the pool's timeout) is :class:`chatcore.errors.Unavailable`, with a hint of when
  to retry. The pool checks each connection as it hands it out (an empty query) and
  replaces broken ones in the background, so once the database is back the next
  requests are served again: no restart.
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
from psycopg_pool import AsyncConnectionPool, PoolTimeout

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
        check=AsyncConnectionPool.check_connection,
        timeout=WAIT_SECONDS,
        # Keep trying to reconnect however long the database is away.
        reconnect_timeout=24 * 3600,
        name=name,
        open=False,
    )


class Engine:
    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self._url = url
        self._pool_size = pool_size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pools: tuple[Pool, Pool] | None = None
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
        writes = _pool(self._url, "chatcore-writes", "", self._pool_size)
        reads = _pool(self._url, "chatcore-reads", _READ_OPTIONS, self._pool_size)
        try:
            for pool in (writes, reads):
                await pool.open(wait=True, timeout=WAIT_SECONDS + CONNECT_TIMEOUT_SECONDS)
        except BaseException:
            await writes.close()
            await reads.close()
            raise
        self._pools = (writes, reads)

    def stop(self) -> None:
        """Let running work finish, close the pools and stop the loop. Idempotent."""
        with self._lock:
            loop, thread, pools = self._loop, self._thread, self._pools
            self._pools = None
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if pools is not None:
            asyncio.run_coroutine_threadsafe(_close(pools), loop).result()
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
            loop, pools = self._loop, self._pools
            if loop is None or pools is None:
                raise Closed("the PostgreSQL storage is not open")
            future = asyncio.run_coroutine_threadsafe(_run(pools[which], work), loop)
        return await asyncio.wrap_future(future)


async def _close(pools: tuple[Pool, Pool]) -> None:
    for pool in pools:
        await pool.close()


async def _run(pool: Pool, work: Work[T]) -> T:
    for attempt in range(1, RETRIES + 1):
        try:
            async with pool.connection() as conn, conn.transaction():
                return await work(conn)
        except pg_errors.TransactionRollback:  # deadlock, serialization failure
            if attempt == RETRIES:
                raise
            await asyncio.sleep(0.001 * attempt)
        except (psycopg.OperationalError, PoolTimeout) as error:
            # Connection refused or lost, server shut down or starting up, no
            # connection free: the database is away, not the request at fault.
            log.warning("database unavailable: %s", _one_line(error))
            raise Unavailable(retry_after=RETRY_AFTER_SECONDS) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300]
