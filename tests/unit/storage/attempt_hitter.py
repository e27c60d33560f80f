"""A second process hitting one throttle key of a shared database file (run by the
SQLite attempt tests): ``python attempt_hitter.py PATH HITS LIMIT``. It opens the file,
prints ``ready``, waits for a line on stdin, fires every hit at once, then prints how
many were admitted."""

from __future__ import annotations

import asyncio
import sys

from attempt_burst import burst

from adapters.sqlite import SqliteStorage


async def main(path: str, hits: int, limit: int) -> None:
    async with SqliteStorage(path) as storage:
        print("ready", flush=True)
        sys.stdin.readline()
        print(await burst(storage.attempts, hits, limit), flush=True)


if __name__ == "__main__":
    path, hits, limit = sys.argv[1:]
    asyncio.run(main(path, int(hits), int(limit)))
