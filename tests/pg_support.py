"""PostgreSQL for tests: databases of their own on the machine's server (never another
test run's), created with a random suffix and dropped afterwards; and private servers,
for the tests that stop and start one."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

ADMIN_URL = os.environ.get(
    "CHATCORE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TABLES = ("events", "attempts", "tokens", "chat_members", "messages", "chats", "users")


def url_of(admin_url: str, name: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


@contextlib.contextmanager
def scratch_database(purpose: str, admin_url: str = ADMIN_URL) -> Iterator[str]:
    """A new, empty database for the block, dropped after it (its connections too)."""
    name = f"chatcore_test_{purpose}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url_of(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def tables_emptied(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute(
        sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
            sql.SQL(", ").join(sql.Identifier(t) for t in TABLES)
        )
    )


PG_BIN = Path("/usr/lib/postgresql/15/bin")
CLUSTER_DEADLINE = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateCluster:
    """A PostgreSQL server of one test's own (never the machine's shared one): a data
    folder made by initdb, owned by the postgres user, on a free port of 127.0.0.1. The
    test stops and starts it at will; :meth:`remove` stops it and deletes the folder."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="chatcore-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        shutil.chown(self.folder, "postgres", "postgres")
        self._as_postgres(
            PG_BIN / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync"
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._as_postgres(
            PG_BIN / "pg_ctl",
            "-D",
            self.data,
            "-o",
            options,
            "-l",
            self.folder / "log",
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self, mode: str = "immediate") -> None:
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _as_postgres(self, *command: object) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *map(str, command)],
            check=True,
            capture_output=True,
            timeout=CLUSTER_DEADLINE,
            stdin=subprocess.DEVNULL,
        )


@contextlib.contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    """A started :class:`PrivateCluster`, stopped and deleted after the block."""
    cluster = PrivateCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
