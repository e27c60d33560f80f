"""Runs SQLite work off the event loop: one writer thread with group commit, and a
small pool of reader threads, each thread with a connection of its own.

Work is a plain function of a connection. A caller's coroutine queues it and awaits an
asyncio future, which the worker thread settles through ``call_soon_threadsafe`` on the
caller's loop (the engine belongs to no loop: any loop may call it).

The writer takes every write queued at that moment and runs them in one ``BEGIN
IMMEDIATE`` transaction, each inside a SAVEPOINT of its own: a write that fails (a taken
username) is rolled back alone and fails only its caller. Futures are settled after
COMMIT, so a resolved write is durable (``synchronous=FULL``) and visible to every
reader; one fsync serves the whole batch, and one wake-up of each caller's loop settles
all of the batch's futures on it (each batch's size and time go to the engine's
:class:`adapters.metrics.Metrics`). Readers run each piece of work in one read
transaction, a consistent snapshot; with WAL they never wait for the writer.

A point lookup (an index probe into pages the cache holds, as the per-request token
check is) costs less than the hop to a reader thread and back: :meth:`Engine.read_here`
runs it on the calling thread, on a read connection of that thread's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from adapters.metrics import NO_METRICS, Metrics

from .connection import StrPath, connect

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]

MAX_BATCH = 512  # bounds how long one transaction holds the file's write lock


class Closed(RuntimeError):
    """The storage is not open (not yet, or no longer)."""


class _Job(Generic[T]):
    __slots__ = ("future", "loop", "work")

    def __init__(self, work: Work[T], loop: asyncio.AbstractEventLoop) -> None:
        self.work = work
        self.loop = loop
        self.future: asyncio.Future[T] = loop.create_future()

    def settle(self, result: T | None, error: BaseException | None) -> None:
        """Hand the outcome to the caller's loop (from a worker thread)."""
        _settle_all(self.loop, [(self.future, result, error)])


Outcome = tuple[asyncio.Future[Any], object, BaseException | None]


def _settle_all(loop: asyncio.AbstractEventLoop, outcomes: list[Outcome]) -> None:
    # A closed loop means the caller is gone: nobody is left to tell.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_resolve, outcomes)


def _resolve(outcomes: list[Outcome]) -> None:
    for future, result, error in outcomes:
        if future.done():  # the caller was cancelled; the work ran anyway
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


Jobs = queue.SimpleQueue[_Job[Any] | None]  # None tells a worker to stop


class Engine:
    def __init__(self, path: StrPath, readers: int = 4, metrics: Metrics = NO_METRICS) -> None:
        if readers < 1:
            raise ValueError("at least one reader thread is needed")
        self._path = path
        self._metrics = metrics
        self._reader_count = readers
        self._writes: Jobs = queue.SimpleQueue()
        self._reads: Jobs = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._open = False
        self._here = threading.local()  # each calling thread's own read connection
        self._here_connections: list[sqlite3.Connection] = []

    def start(self, prepare: Callable[[sqlite3.Connection], object] | None = None) -> None:
        """Open the connections (in the calling thread, so that errors surface here),
        run ``prepare`` on the writer's (migrations, checks), then start the threads."""
        with self._lock:
            if self._open or self._threads:
                raise RuntimeError("the engine was already started")
            connections: list[sqlite3.Connection] = []
            try:
                writer = connect(self._path)
                connections.append(writer)
                if prepare is not None:
                    prepare(writer)
                for _ in range(self._reader_count):
                    connections.append(connect(self._path, read_only=True))
            except BaseException:
                for conn in connections:
                    conn.close()
                raise
            turns = _WriterTurns.beside(self._path)
            serve_writes = functools.partial(_serve_writes, metrics=self._metrics, turns=turns)
            self._threads.append(_thread("sqlite-writer", serve_writes, writer, self._writes))
            for number, conn in enumerate(connections[1:]):
                self._threads.append(
                    _thread(f"sqlite-reader-{number}", _serve_reads, conn, self._reads)
                )
            for thread in self._threads:
                thread.start()
            self._open = True

    def stop(self) -> None:
        """Finish every queued operation, then stop the threads and close their
        connections. Idempotent; blocks until done."""
        with self._lock:
            if self._open:
                self._open = False
                self._writes.put(None)
                for _ in range(self._reader_count):
                    self._reads.put(None)
        for thread in self._threads:
            thread.join()
        with self._lock:
            for conn in self._here_connections:
                conn.close()
            self._here_connections.clear()

    def read_here(self, work: Work[T]) -> T:
        """Run ``work`` at once, on the calling thread, in one read transaction of that
        thread's own connection: for point lookups only (it holds the caller's thread,
        and so the event loop, while it runs)."""
        conn: sqlite3.Connection | None = getattr(self._here, "conn", None)
        with self._lock:
            if not self._open:
                raise Closed("the SQLite storage is not open")
            if conn is None:
                conn = connect(self._path, read_only=True)
                self._here_connections.append(conn)
                self._here.conn = conn
        conn.execute("BEGIN")
        try:
            return work(conn)
        finally:
            conn.execute("COMMIT")  # a read transaction: this only ends the snapshot

    async def write(self, work: Work[T]) -> T:
        return await self._submit(self._writes, work)

    async def read(self, work: Work[T]) -> T:
        return await self._submit(self._reads, work)

    def _submit(self, jobs: Jobs, work: Work[T]) -> asyncio.Future[T]:
        job = _Job(work, asyncio.get_running_loop())
        with self._lock:  # so that nothing is queued behind the stop signal
            if not self._open:
                raise Closed("the SQLite storage is not open")
            jobs.put(job)
        return job.future


def _thread(
    name: str,
    serve: Callable[[sqlite3.Connection, Jobs], None],
    conn: sqlite3.Connection,
    jobs: Jobs,
) -> threading.Thread:
    def run() -> None:
        try:
            serve(conn, jobs)
        finally:
            conn.close()

    return threading.Thread(target=run, name=name)


def _serve_reads(conn: sqlite3.Connection, jobs: Jobs) -> None:
    while (job := jobs.get()) is not None:
        try:
            conn.execute("BEGIN")
            try:
                result = job.work(conn)
            finally:
                conn.execute("COMMIT")  # a read transaction: this only ends the snapshot
        except Exception as error:
            job.settle(None, error)
        else:
            job.settle(result, None)


class _WriterTurns:
    """Whose turn it is to write the file, among the servers sharing it (``--workers``).

    SQLite's own wait for another process's write lock is a poll (its busy handler sleeps
    1, 2, 5, 10 ... ms between tries), so two writers taking turns lose milliseconds each
    time. Writers of chatcore servers first take an exclusive ``flock`` on a file beside
    the database, which wakes the next one the moment the lock is let go; SQLite's lock
    still decides, and anything else writing the file (a command) waits as before."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    @classmethod
    def beside(cls, path: StrPath) -> _WriterTurns:
        try:
            fd = os.open(f"{os.fspath(path)}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:  # a read-only directory: SQLite's lock alone
            return cls(None)
        return cls(fd)

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        if self._fd is None:
            yield
            return
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # waits without holding the GIL
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _serve_writes(
    conn: sqlite3.Connection, jobs: Jobs, metrics: Metrics, turns: _WriterTurns
) -> None:
    try:
        _write_batches(conn, jobs, metrics, turns)
    finally:
        turns.close()


def _write_batches(
    conn: sqlite3.Connection, jobs: Jobs, metrics: Metrics, turns: _WriterTurns
) -> None:
    stopping = False
    while not stopping:
        first = jobs.get()
        if first is None:
            return
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                job = jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:
                stopping = True
                break
            batch.append(job)
        started = time.perf_counter()
        with turns.turn():
            _commit(conn, batch)
        metrics.storage_batch(len(batch), time.perf_counter() - started)


def _commit(conn: sqlite3.Connection, batch: list[_Job[Any]]) -> None:
    outcomes: list[tuple[object, Exception | None]] = []
    try:
        conn.execute("BEGIN IMMEDIATE")
        outcomes = [_attempt(conn, job.work) for job in batch]
        conn.execute("COMMIT")
    except Exception as error:  # the transaction as a whole failed: none of it is stored
        with contextlib.suppress(sqlite3.Error):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        for job in batch:
            job.settle(None, error)
        return
    by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for job, (result, failure) in zip(batch, outcomes, strict=True):
        by_loop.setdefault(job.loop, []).append((job.future, result, failure))
    for loop, settled in by_loop.items():
        _settle_all(loop, settled)


def _attempt(conn: sqlite3.Connection, work: Work[object]) -> tuple[object, Exception | None]:
    """Run one write in a savepoint: on failure only its own changes are undone."""
    conn.execute("SAVEPOINT job")
    try:
        result = work(conn)
    except Exception as error:
        # If SQLite already rolled the whole transaction back (disk full, I/O error),
        # this raises and _commit fails the batch, which is then the truth.
        conn.execute("ROLLBACK TO job")
        conn.execute("RELEASE job")
        return None, error
    conn.execute("RELEASE job")
    return result, None
