"""ChatStore contract: chats with their participants, membership, and the chat list
ordered by most recent activity."""

from __future__ import annotations

from datetime import timedelta, timezone

from storage_support import START, Seed, ids

from chatcore.ports import Storage


async def test_add_stores_the_participants_once_each_in_id_order(storage: Storage) -> None:
    seed = Seed(storage)
    ann, ben, cy = [await seed.user(name) for name in ("ann", "ben", "cy")]
    created = START + timedelta(days=3, microseconds=123456)
    chat = await storage.chats.add("Trip", [cy.id, ann.id, cy.id, ben.id], created)
    assert chat.id >= 1
    assert chat.name == "Trip"
    assert chat.created_at == created
    assert chat.participants == (ann, ben, cy)
    assert chat.last_message is None
    assert await storage.chats.get(chat.id) == chat


async def test_chat_ids_grow_and_an_unknown_chat_is_none(storage: Storage) -> None:
    seed = Seed(storage)
    ann = await seed.user("ann")
    first = await seed.chat(ann)
    second = await seed.chat(ann)
    assert second.id > first.id
    assert await storage.chats.get(second.id + 1) is None


async def test_is_participant(storage: Storage) -> None:
    seed = Seed(storage)
    ann, ben, cy = [await seed.user(name) for name in ("ann", "ben", "cy")]
    chat = await seed.chat(ann, ben)
    assert await storage.chats.is_participant(chat.id, ann.id)
    assert await storage.chats.is_participant(chat.id, ben.id)
    assert not await storage.chats.is_participant(chat.id, cy.id)
    assert not await storage.chats.is_participant(chat.id + 1, ann.id)
    assert not await storage.chats.is_participant(chat.id, 999)


async def test_the_last_message_follows_every_new_message(storage: Storage) -> None:
    seed = Seed(storage)
    ann, ben = await seed.user("ann"), await seed.user("ben")
    chat, other = await seed.chat(ann, ben), await seed.chat(ann)
    await seed.send(chat, ann, "one")
    second = await seed.send(chat, ben, "two")
    await seed.send(other, ann, "elsewhere")
    stored = await storage.chats.get(chat.id)
    assert stored is not None
    assert stored.last_message == second
    assert stored.participants == (ann, ben)


async def test_for_user_lists_only_the_users_chats(storage: Storage) -> None:
    seed = Seed(storage)
    ann, ben, cy = [await seed.user(name) for name in ("ann", "ben", "cy")]
    with_ben = await seed.chat(ann, ben)
    await seed.chat(ben, cy)
    alone = await seed.chat(ann)
    assert ids(await storage.chats.for_user(ann.id)) == [alone.id, with_ben.id]
    assert await storage.chats.for_user(999) == []
    dan = await seed.user("dan")
    assert await storage.chats.for_user(dan.id) == []


async def test_for_user_orders_by_latest_message_else_creation(storage: Storage) -> None:
    seed = Seed(storage)
    ann = await seed.user("ann")
    old, middle, new = [await seed.chat(ann, name=n) for n in ("old", "middle", "new")]
    assert ids(await storage.chats.for_user(ann.id)) == [new.id, middle.id, old.id]
    message = await seed.send(old, ann)
    listed = await storage.chats.for_user(ann.id)
    assert ids(listed) == [old.id, new.id, middle.id]
    assert listed[0].last_message == message
    await seed.send(middle, ann)
    assert ids(await storage.chats.for_user(ann.id)) == [middle.id, old.id, new.id]


async def test_for_user_breaks_ties_by_the_larger_chat_id(storage: Storage) -> None:
    seed = Seed(storage)
    ann = await seed.user("ann")
    moment = START + timedelta(hours=1)
    first, second = await seed.chat(ann, at=moment), await seed.chat(ann, at=moment)
    assert ids(await storage.chats.for_user(ann.id)) == [second.id, first.id]
    # a message at the very time another chat was created ties with that creation
    third = await seed.chat(ann, at=moment - timedelta(hours=1))
    await seed.send(third, ann, at=moment)
    assert ids(await storage.chats.for_user(ann.id)) == [third.id, second.id, first.id]
    await seed.send(first, ann, at=moment)
    assert ids(await storage.chats.for_user(ann.id)) == [third.id, second.id, first.id]


async def test_for_user_compares_instants_not_clock_faces(storage: Storage) -> None:
    seed = Seed(storage)
    ann = await seed.user("ann")
    utc = START + timedelta(hours=10)
    tokyo = timezone(timedelta(hours=9))  # its clock face reads later than UTC's
    earlier_elsewhere = (utc - timedelta(minutes=1)).astimezone(tokyo)
    later = await seed.chat(ann, at=utc)
    earlier = await seed.chat(ann, at=earlier_elsewhere)
    assert ids(await storage.chats.for_user(ann.id)) == [later.id, earlier.id]
