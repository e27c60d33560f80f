"""The operator's view of a database file, from outside a running server: which
migrations it has (read only: looking never creates or changes the file), and an online
backup, taken while the server goes on writing."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from .connection import BUSY_TIMEOUT_MS, StrPath
from .schema import MIGRATIONS, Migration, recorded_versions


class Unreachable(RuntimeError):
    """The file cannot be opened, or is not a database."""


class BackupFailed(RuntimeError):
    """No backup was written; the message says why."""


@contextlib.contextmanager
def _read_only(path: StrPath) -> Iterator[sqlite3.Connection]:
    """A connection that can neither create nor change the file."""
    if not Path(path).exists():
        raise Unreachable(f"{path}: no such database file")
    try:
        conn = sqlite3.connect(
            f"file:{quote(os.fspath(path))}?mode=ro",
            uri=True,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
        )
    except sqlite3.Error as error:
        raise Unreachable(f"{path}: {error}") from None
    try:
        yield conn
    finally:
        conn.close()


def migration_status(path: StrPath) -> list[tuple[Migration, bool]]:
    """Every migration this code knows, with whether the file has it. A file not made
    yet has none, if it could be made (its folder exists). Raises :class:`Unreachable`,
    or ``SchemaTooNew`` for a file migrated by a newer chatcore."""
    if not Path(path).exists():
        if not Path(path).parent.is_dir():
            raise Unreachable(f"{path}: the folder {Path(path).parent} does not exist")
        return [(migration, False) for migration in MIGRATIONS]
    with _read_only(path) as conn:
        try:
            applied = set(recorded_versions(conn))
        except sqlite3.Error as error:  # not a database, locked beyond the busy timeout
            raise Unreachable(f"{path}: {error}") from None
    return [(migration, migration.version in applied) for migration in MIGRATIONS]


def backup(path: StrPath, target: StrPath, *, force: bool = False) -> None:
    """Copy the database at ``path`` to ``target`` as it is at one moment, while other
    connections (a running server) keep reading and writing it.

    SQLite's online backup copies every page in one step, inside one read transaction:
    with WAL the writers never wait for it, and the copy holds exactly the transactions
    committed before it began. It is written to a temporary file beside ``target``,
    checked (``PRAGMA integrity_check``) and only then moved into place, so ``target``
    is never a partial copy. An existing ``target`` is kept unless ``force``."""
    target = Path(target)
    if not force and target.exists():
        raise BackupFailed(f"{target} exists: choose another name, or --force to replace it")
    if target.exists() and Path(path).exists() and os.path.samefile(path, target):
        raise BackupFailed(f"{target} is the database itself")
    if not target.parent.is_dir():
        raise BackupFailed(f"the folder {target.parent} does not exist")
    with _read_only(path) as source:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(handle)
        try:
            copy = sqlite3.connect(temporary, isolation_level=None)
            try:
                try:
                    source.backup(copy)
                except sqlite3.Error as error:  # not a database, say
                    raise Unreachable(f"{path}: {error}") from None
                (verdict,) = copy.execute("PRAGMA integrity_check").fetchone()
                # The copy keeps the source's WAL mode; one self-contained file is easier
                # to move about, and nothing writes to it while it is a backup.
                copy.execute("PRAGMA journal_mode = DELETE")
            finally:
                copy.close()
            if verdict != "ok":
                raise BackupFailed(f"the copy failed its integrity check: {verdict}")
            if force:
                os.replace(temporary, target)
            else:
                try:
                    os.link(temporary, target)  # fails if target appeared meanwhile
                except FileExistsError:
                    raise BackupFailed(f"{target} exists: --force to replace it") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
