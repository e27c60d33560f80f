"""psycopg 3 (psycopg_pool.AsyncConnectionPool) against asyncpg (asyncpg.create_pool) on
chatcore's two hot paths, with the same SQL, the same pool size, on one event loop:

- send: in one transaction, the membership check with the chat's row lock, the
  idempotency check by client_id, then one statement taking the message id lock and
  storing the message, the chat's last message and seq, and the event; then the stored
  message read back with its sender (what the adapter returns);
- history page: the newest 100 messages of a chat of 20,000, with their senders.

    .venv/bin/python bench/pg_drivers.py [--seconds 5] [--clients 1,4,16]

A throwaway database on 127.0.0.1:5432 (or $BENCH_POSTGRES's server) is made with a
random name and dropped after. asyncpg is a bench-only import (pip install asyncpg):
chatcore itself depends on psycopg only. Prints one line per driver, path and client
count: operations per second and latency percentiles. The machine is shared: compare
figures of one run, side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from adapters.postgres import migrate
from adapters.postgres.schema import MESSAGE_ID_LOCK
from scenarios import scratch_postgres

CHATS = 8
HISTORY = 20_000
POOL = 8

USER = "u.id, u.username, u.email, u.user_type, u.date_joined, u.is_admin, u.is_active"
MESSAGE = f"m.id, m.chat_id, m.content, m.timestamp, m.client_id, m.edited_at, {USER}"


def numbered(text: str) -> str:
    """psycopg's placeholders (%s, in order) as asyncpg's ($1, $2, ...)."""
    parts = text.split("%s")
    return "".join(f"{part}${n}" if n < len(parts) else part for n, part in enumerate(parts, 1))


MEMBER = (
    "SELECT 1 FROM chats c JOIN chat_members cm ON cm.chat_id = c.id"
    " WHERE c.id = %s AND cm.user_id = %s FOR NO KEY UPDATE OF c"
)
EXISTING = "SELECT id FROM messages WHERE chat_id = %s AND sender_id = %s AND client_id = %s"
INSERT = (
    "WITH lock AS (SELECT pg_advisory_xact_lock(%s)),"
    " m AS (INSERT INTO messages (chat_id, sender_id, content, timestamp, client_id)"
    "  SELECT %s, %s, %s, %s, %s FROM lock RETURNING id, chat_id),"
    " c AS (UPDATE chats SET last_message_id = m.id, last_activity = %s,"
    "  seq = seq + 1 FROM m WHERE chats.id = m.chat_id RETURNING chats.seq, m.id)"
    " INSERT INTO events (chat_id, seq, kind, message_id)"
    " SELECT %s, c.seq, 'message', c.id FROM c RETURNING seq, message_id"
)
# Column lists are constants of this file; every value is a parameter.
READ_BACK = f"SELECT {MESSAGE} FROM messages m JOIN users u ON u.id = m.sender_id WHERE m.id = %s"  # noqa: S608
PAGE = (
    f"SELECT {MESSAGE} FROM (SELECT %s::bigint AS chat_id) s CROSS JOIN LATERAL ("  # noqa: S608
    " SELECT * FROM messages WHERE chat_id = s.chat_id AND id > 0"
    " ORDER BY id DESC LIMIT 100) m JOIN users u ON u.id = m.sender_id"
    " ORDER BY m.id DESC LIMIT 100"
)


def send_params(chat: int, number: int) -> tuple[list[Any], list[Any], list[Any]]:
    now = datetime.now(UTC)
    client_id = f"c{number}-{secrets.token_hex(4)}"
    return (
        [chat, 1, client_id],
        [MESSAGE_ID_LOCK, chat, 1, f"message {number}", now, client_id, now, chat],
        [chat, 1],
    )


class Psycopg:
    name = "psycopg 3"

    def __init__(self, url: str) -> None:
        self.pool = AsyncConnectionPool(
            url, min_size=POOL, max_size=POOL, open=False, kwargs={"options": "-c timezone=UTC"}
        )

    async def open(self) -> None:
        await self.pool.open(wait=True)

    async def close(self) -> None:
        await self.pool.close()

    async def send(self, chat: int, number: int) -> None:
        existing, insert, member = send_params(chat, number)
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(MEMBER, member)
            assert await cur.fetchone() is not None
            cur = await conn.execute(EXISTING, existing)
            assert await cur.fetchone() is None
            cur = await conn.execute(INSERT, insert)
            row = await cur.fetchone()
            assert row is not None
            cur = await conn.execute(READ_BACK, [row[1]])
            assert await cur.fetchone() is not None

    async def page(self, chat: int, number: int) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(PAGE, [chat])
            assert len(await cur.fetchall()) == 100


class Asyncpg:
    name = "asyncpg"

    def __init__(self, url: str) -> None:
        import asyncpg  # bench-only: not a dependency of chatcore

        self._asyncpg = asyncpg
        self.url = url
        self.pool: Any = None

    async def open(self) -> None:
        self.pool = await self._asyncpg.create_pool(
            self.url, min_size=POOL, max_size=POOL, server_settings={"timezone": "UTC"}
        )

    async def close(self) -> None:
        await self.pool.close()

    async def send(self, chat: int, number: int) -> None:
        existing, insert, member = send_params(chat, number)
        async with self.pool.acquire() as conn, conn.transaction():
            assert await conn.fetchrow(numbered(MEMBER), *member) is not None
            assert await conn.fetchrow(numbered(EXISTING), *existing) is None
            row = await conn.fetchrow(numbered(INSERT), *insert)
            assert await conn.fetchrow(numbered(READ_BACK), row[1]) is not None

    async def page(self, chat: int, number: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            assert len(await conn.fetch(numbered(PAGE), chat)) == 100


def fill(url: str) -> None:
    migrate(url)
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO users (username, username_key, email, user_type, date_joined,"
            " password_hash) VALUES ('bench', 'bench', '', 'student', now(), 'x')"
        )
        for chat in range(1, CHATS + 1):
            conn.execute(
                "INSERT INTO chats (name, created_at, last_activity) VALUES (%s, now(), now())",
                (f"chat {chat}",),
            )
            conn.execute("INSERT INTO chat_members (chat_id, user_id) VALUES (%s, 1)", (chat,))
        conn.execute(
            "INSERT INTO messages (chat_id, sender_id, content, timestamp)"
            " SELECT 1 + i %% %s, 1, 'history ' || i, now() FROM generate_series(1, %s) i",
            (CHATS, HISTORY * CHATS),
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


async def measure(
    op: Callable[[int, int], Awaitable[None]], clients: int, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(number: int) -> None:
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            started = time.perf_counter()
            await op(1 + (number + n) % CHATS, number * 1_000_000 + n)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "ops_per_s": len(latencies) / elapsed,
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
    }


@contextlib.asynccontextmanager
async def opened(driver: Any) -> AsyncIterator[Any]:
    await driver.open()
    try:
        yield driver
    finally:
        await driver.close()


async def run(url: str, seconds: float, client_counts: list[int]) -> None:
    print(f"{'driver':10} {'path':5} {'clients':>7} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for path in ("send", "page"):
        for clients in client_counts:
            # Alternate the drivers per row so that neither always runs on a warmer cache.
            for cls in (Psycopg, Asyncpg) if clients % 2 else (Asyncpg, Psycopg):
                async with opened(cls(url)) as driver:
                    await measure(getattr(driver, path), clients, min(1.0, seconds))  # warm up
                    figures = await measure(getattr(driver, path), clients, seconds)
                print(
                    f"{driver.name:10} {path:5} {clients:>7} {figures['ops_per_s']:>8.0f}"
                    f" {figures['p50_ms']:>8.2f} {figures['p99_ms']:>8.2f}",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--clients", default="1,4,16", help="concurrent clients, a list")
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    with scratch_postgres("drivers") as url:
        fill(url)
        asyncio.run(run(url, args.seconds, counts))


if __name__ == "__main__":
    main()
