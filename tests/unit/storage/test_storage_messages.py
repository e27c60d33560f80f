"""MessageStore contract: storing, idempotent retries, reading one, and every shape of
page window (checked by hand, then against a list model with hypothesis)."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta, timezone

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_support import START, Seed, everything_in, ids

from chatcore.errors import NotFound
from chatcore.model import Chat, Message, MessageQuery, NewMessage, User
from chatcore.ports import Storage
from chatcore.rules import MAX_ID


async def test_add_stores_and_returns_the_message(storage: Storage) -> None:
    seed = Seed(storage)
    ann = await seed.user("ann")
    chat = await seed.chat(ann)
    sent = (START + timedelta(microseconds=999_999)).astimezone(timezone(timedelta(hours=-7)))
    content = "héllo 👋\nwith 'quotes' and \"more\"; DROP TABLE messages; --"
    message, created = await storage.messages.add(NewMessage(chat.id, ann.id, content, sent, "k1"))
    assert created
    assert message.id >= 1
    assert (message.chat_id, message.sender, message.content) == (chat.id, ann, content)
    assert message.timestamp == sent
    assert message.client_id == "k1"
    assert await storage.messages.get(message.id) == message
    assert await storage.messages.get(message.id + 1) is None


async def test_only_participants_can_add_and_a_missing_chat_is_not_found(
    storage: Storage,
) -> None:
    seed = Seed(storage)
    ann, eve = await seed.user("ann"), await seed.user("eve")
    chat = await seed.chat(ann)
    for draft in (seed.draft(chat, eve, "let me in"), seed.draft(chat, eve, "x", "k")):
        with pytest.raises(NotFound):
            await storage.messages.add(draft)
    missing = attrs.evolve(seed.draft(chat, ann, "nowhere"), chat_id=chat.id + 1000)
    with pytest.raises(NotFound):
        await storage.messages.add(missing)
    assert await everything_in(storage, chat) == []


async def test_ids_grow_in_storage_order_across_chats(storage: Storage) -> None:
    seed = Seed(storage)
    ann = await seed.user("ann")
    one, two = await seed.chat(ann), await seed.chat(ann)
    sent = [await seed.send(chat, ann) for chat in (one, two, two, one, two)]
    assert ids(sent) == sorted(set(ids(sent)))


async def test_a_repeated_client_id_stores_nothing_and_returns_the_original(
    storage: Storage,
) -> None:
    seed = Seed(storage)
    ann, ben = await seed.user("ann"), await seed.user("ben")
    chat = await seed.chat(ann, ben)
    original = await seed.send(chat, ann, "first", client_id="retry-me")
    later = await seed.send(chat, ben, "later")
    again, created = await storage.messages.add(seed.draft(chat, ann, "changed", "retry-me"))
    assert not created
    assert again == original
    assert await everything_in(storage, chat) == [original, later]
    stored = await storage.chats.get(chat.id)
    assert stored is not None
    assert stored.last_message == later  # a retry is not activity


async def test_a_client_id_belongs_to_one_sender_in_one_chat(storage: Storage) -> None:
    seed = Seed(storage)
    ann, ben = await seed.user("ann"), await seed.user("ben")
    chat, other = await seed.chat(ann, ben), await seed.chat(ann)
    first = await seed.send(chat, ann, client_id="k")
    by_ben = await seed.send(chat, ben, client_id="k")
    elsewhere = await seed.send(other, ann, client_id="k")
    assert len({first.id, by_ben.id, elsewhere.id}) == 3
    plain = [await seed.send(chat, ann, "same") for _ in range(2)]  # no client_id: no dedup
    assert ids(await everything_in(storage, chat)) == [first.id, by_ben.id, *ids(plain)]


@attrs.frozen
class World:
    """A fixed history: who is in which chat, and every message in id order."""

    users: tuple[User, ...]
    chats: tuple[Chat, ...]
    messages: tuple[Message, ...]

    def window(self, query: MessageQuery) -> list[Message]:
        """The port's page, written as plainly as possible."""
        members = {chat.id: {user.id for user in chat.participants} for chat in self.chats}
        inside = [
            m
            for m in self.messages
            if (query.chat_id is None or m.chat_id == query.chat_id)
            and (query.member_id is None or query.member_id in members[m.chat_id])
            and (query.after is None or m.id > query.after)
            and (query.before is None or m.id < query.before)
        ]
        return inside[-query.limit :] if query.newest_first else inside[: query.limit]


async def build_world(storage: Storage, messages: int = 60) -> World:
    seed = Seed(storage)
    users = [await seed.user(n) for n in ("ann", "ben", "cy", "dan")]  # dan is in no chat
    ann, ben, cy = users[:3]
    chats = [
        await seed.chat(ann, ben),
        await seed.chat(ben, cy),
        await seed.chat(ann, ben, cy),
        await seed.chat(cy),
    ]
    pick = random.Random(20260101)
    sent = []
    for number in range(messages):
        chat = pick.choice(chats)
        sent.append(await seed.send(chat, pick.choice(chat.participants), f"m{number}"))
    return World(tuple(users), tuple(chats), tuple(sent))


async def test_page_windows_by_hand(storage: Storage) -> None:
    world = await build_world(storage, messages=30)
    ann, _, cy, dan = world.users
    ab, bc, abc, _ = world.chats
    chat_ab = [m for m in world.messages if m.chat_id == ab.id]
    ann_sees = [m for m in world.messages if m.chat_id in (ab.id, abc.id)]
    middle = chat_ab[len(chat_ab) // 2].id
    shapes = {
        "newest of a chat": MessageQuery(limit=3, chat_id=ab.id),
        "all of a chat": MessageQuery(limit=100, chat_id=ab.id),
        "before": MessageQuery(limit=2, chat_id=ab.id, before=middle),
        "after": MessageQuery(limit=2, chat_id=ab.id, after=middle, newest_first=False),
        "after, read from the top": MessageQuery(limit=2, chat_id=ab.id, after=middle),
        "between": MessageQuery(limit=5, chat_id=ab.id, after=chat_ab[0].id, before=middle),
        "between, from the bottom": MessageQuery(
            limit=1, chat_id=ab.id, after=chat_ab[0].id, before=middle, newest_first=False
        ),
        "member scope": MessageQuery(limit=7, member_id=ann.id),
        "member scope after": MessageQuery(
            limit=4, member_id=ann.id, after=ann_sees[2].id, newest_first=False
        ),
        "member scope before": MessageQuery(limit=4, member_id=ann.id, before=ann_sees[-3].id),
        "member and chat": MessageQuery(limit=50, member_id=ann.id, chat_id=abc.id),
        "member not in chat": MessageQuery(limit=50, member_id=ann.id, chat_id=bc.id),
        "member in no chat": MessageQuery(limit=50, member_id=dan.id),
        "unknown member": MessageQuery(limit=50, member_id=999),
        "unknown chat": MessageQuery(limit=50, chat_id=999),
        "empty window": MessageQuery(limit=5, chat_id=ab.id, after=middle, before=middle + 1),
        "no scope": MessageQuery(limit=6, before=world.messages[-2].id),
        "limit one": MessageQuery(limit=1, member_id=cy.id),
        "before the largest id": MessageQuery(limit=3, chat_id=ab.id, before=MAX_ID),
        "after the largest id": MessageQuery(limit=3, member_id=ann.id, after=MAX_ID),
    }
    for name, query in shapes.items():
        assert await storage.messages.page(query) == world.window(query), name
    assert world.window(shapes["newest of a chat"]) == chat_ab[-3:]  # the model is sane
    assert world.window(shapes["member not in chat"]) == []


def test_page_agrees_with_a_list_model(storage: Storage) -> None:
    world = asyncio.run(build_world(storage))
    top = world.messages[-1].id + 2
    bound = st.none() | st.integers(0, top)

    @given(
        query=st.builds(
            MessageQuery,
            limit=st.integers(1, 25),
            chat_id=st.none() | st.integers(1, len(world.chats) + 1),
            member_id=st.none() | st.integers(1, len(world.users) + 1),
            before=bound,
            after=bound,
            newest_first=st.booleans(),
        )
    )
    @settings(max_examples=300, deadline=None)
    def agrees(query: MessageQuery) -> None:
        assert asyncio.run(storage.messages.page(query)) == world.window(query)

    agrees()
