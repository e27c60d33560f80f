"""A process that changes one chat of a shared database (a SQLite file or a PostgreSQL
URL), for the event-log tests:
``python storage_event_writer.py PATH_OR_URL CHAT_ID ACTOR_ID GUEST_ID TAG ROUNDS``
(ROUNDS 0: until killed). It opens the database, prints ``ready``, waits for a line on
stdin, then runs rounds of changes (a send, an edit, a guest added, a guest removed, a
delete), printing ``round N`` after each."""

from __future__ import annotations

import asyncio
import itertools
import sys
from datetime import UTC, datetime

from storage_support import shared_storage

from chatcore.model import NewMessage
from chatcore.ports import Storage
from chatcore.roster import departure, membership


async def one_round(storage: Storage, chat_id: int, actor_id: int, guest_id: int, tag: str) -> None:
    actor, guest = await storage.users.get(actor_id), await storage.users.get(guest_id)
    assert actor is not None
    assert guest is not None
    message, _ = await storage.messages.add(NewMessage(chat_id, actor_id, tag, datetime.now(UTC)))
    await storage.messages.edit(message.id, f"{tag}, edited", datetime.now(UTC))
    await asyncio.gather(  # in one batch of the writer, most often
        storage.chats.change(
            chat_id, lambda r: membership(r, actor, [*r.chat.participants, guest], 1000)
        ),
        storage.messages.add(NewMessage(chat_id, actor_id, f"{tag} kept", datetime.now(UTC))),
    )
    await storage.chats.change(chat_id, departure(guest_id, actor))
    await storage.messages.delete(message.id)


async def main(
    path: str, chat_id: int, actor_id: int, guest_id: int, tag: str, rounds: int
) -> None:
    async with shared_storage(path) as storage:
        print("ready", flush=True)
        sys.stdin.readline()
        numbers = itertools.count() if rounds == 0 else range(rounds)
        for number in numbers:
            await one_round(storage, chat_id, actor_id, guest_id, f"{tag}:{number}")
            print(f"round {number}", flush=True)


if __name__ == "__main__":
    path, chat_id, actor_id, guest_id, tag, rounds = sys.argv[1:]
    asyncio.run(main(path, int(chat_id), int(actor_id), int(guest_id), tag, int(rounds)))
