"""Opening a connection to the database file, with the pragmas every connection needs.

- WAL: readers never block the writer nor it them, and several processes share the file.
- synchronous=FULL: the WAL is fsynced at every COMMIT, so a committed message survives
  a power cut, not only a crash of the process. The writer commits many operations at
  once (group commit), which spreads that fsync over them.
- busy_timeout: a writer waiting for another process's write lock retries for this long
  instead of failing at once with "database is locked".
- foreign_keys: SQLite leaves them off unless asked, per connection.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

BUSY_TIMEOUT_MS = 5000

StrPath = str | Path


def connect(path: StrPath, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode: every transaction is begun and ended explicitly.

    It may be handed to one other thread (a worker owns it from then on)."""
    conn = sqlite3.connect(
        path,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=False,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _use_wal(conn, path)
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        if read_only:
            conn.execute("PRAGMA query_only = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _use_wal(conn: sqlite3.Connection, path: StrPath) -> None:
    """Switch the file to WAL (once: the mode is kept in the file). The switch needs the
    file to itself and SQLite does not wait for that on its own, so while other
    connections are busy with a new file's first moments, retry for the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.005)
            continue
        if mode != "wal":
            raise sqlite3.OperationalError(f"{path}: cannot use a WAL journal (got {mode!r})")
        return
