"""Concurrent callers on one storage: nothing lost, ids unique and in storage order,
retries with one client_id stored once."""

from __future__ import annotations

import asyncio

from storage_support import Seed, everything_in, ids

from chatcore.model import Chat, Message, User
from chatcore.ports import Storage

SENDS = 200
SENDERS = 5


async def send_many(seed: Seed, chat: Chat, sender: User, contents: list[str]) -> list[Message]:
    """Send every content at once, as concurrent callers would."""
    return list(await asyncio.gather(*(seed.send(chat, sender, text) for text in contents)))


async def test_concurrent_sends_lose_nothing_and_get_increasing_ids(storage: Storage) -> None:
    seed = Seed(storage)
    senders = [await seed.user(f"sender{n}") for n in range(SENDERS)]
    chat = await seed.chat(*senders)
    share = SENDS // SENDERS
    tasks = [
        asyncio.create_task(
            send_many(seed, chat, sender, [f"{sender.username}:{i}" for i in range(share)])
        )
        for sender in senders
    ]
    replies = [message for batch in await asyncio.gather(*tasks) for message in batch]

    stored = await everything_in(storage, chat)
    assert len(stored) == SENDS
    assert sorted(ids(replies)) == ids(stored)  # every reply was stored, once
    assert all(a < b for a, b in zip(ids(stored), ids(stored)[1:], strict=False))
    assert sorted(m.content for m in stored) == sorted(m.content for m in replies)
    assert len({m.content for m in stored}) == SENDS
    listed = await storage.chats.get(chat.id)
    assert listed is not None
    assert listed.last_message == stored[-1]


async def test_concurrent_retries_of_one_client_id_store_one_message(storage: Storage) -> None:
    seed = Seed(storage)
    ann = await seed.user("ann")
    chat = await seed.chat(ann)
    drafts = [seed.draft(chat, ann, f"attempt {n}", client_id="once") for n in range(20)]
    outcomes = await asyncio.gather(*(storage.messages.add(d) for d in drafts))
    assert sum(created is not None for _, created in outcomes) == 1
    (original,) = {message for message, _ in outcomes}
    assert await everything_in(storage, chat) == [original]
