"""A second process hitting one throttle key of a shared database (a SQLite file or a
PostgreSQL URL): ``python attempt_hitter.py PATH_OR_URL HITS LIMIT``. It opens the database,
prints ``ready``, waits for a line on stdin, fires every hit at once, then prints how
many were admitted."""

from __future__ import annotations

import asyncio
import sys

from attempt_burst import burst
from storage_support import shared_storage


async def main(path: str, hits: int, limit: int) -> None:
    async with shared_storage(path) as storage:
        print("ready", flush=True)
        sys.stdin.readline()
        print(await burst(storage.attempts, hits, limit), flush=True)


if __name__ == "__main__":
    path, hits, limit = sys.argv[1:]
    asyncio.run(main(path, int(hits), int(limit)))
