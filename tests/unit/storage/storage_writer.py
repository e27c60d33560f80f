"""A second process writing to a shared database, a SQLite file or a PostgreSQL URL:
``python storage_writer.py PATH_OR_URL CHAT_ID SENDER_ID TAG``. It opens the database, prints
``ready``, waits for a line on stdin, then sends its messages."""

from __future__ import annotations

import asyncio
import sys

from storage_support import send_rounds, shared_storage


async def main(path: str, chat_id: int, sender_id: int, tag: str) -> None:
    async with shared_storage(path) as storage:
        print("ready", flush=True)
        sys.stdin.readline()
        await send_rounds(storage, chat_id, sender_id, tag)


if __name__ == "__main__":
    path, chat_id, sender_id, tag = sys.argv[1:]
    asyncio.run(main(path, int(chat_id), int(sender_id), tag))
