"""ChatStore contract: chats with their participants, membership, and the chat list
ordered by most recent activity, paged by position (keyset)."""

from __future__ import annotations

from datetime import timedelta, timezone

from storage_support import START, Seed, ids

from chatcore.model import Activity, Chat, User
from chatcore.ports import Storage
from chatcore.roster import departure
from chatcore.rules import MAX_ID


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
    assert ids(await storage.chats.for_user(ann.id, 100)) == [alone.id, with_ben.id]
    assert await storage.chats.for_user(999, 100) == []
    dan = await seed.user("dan")
    assert await storage.chats.for_user(dan.id, 100) == []


async def test_for_user_orders_by_latest_message_else_creation(storage: Storage) -> None:
    seed = Seed(storage)
    ann = await seed.user("ann")
    old, middle, new = [await seed.chat(ann, name=n) for n in ("old", "middle", "new")]
    assert ids(await storage.chats.for_user(ann.id, 100)) == [new.id, middle.id, old.id]
    message = await seed.send(old, ann)
    listed = await storage.chats.for_user(ann.id, 100)
    assert ids(listed) == [old.id, new.id, middle.id]
    assert listed[0].last_message == message
    await seed.send(middle, ann)
    assert ids(await storage.chats.for_user(ann.id, 100)) == [middle.id, old.id, new.id]


async def test_for_user_breaks_ties_by_the_larger_chat_id(storage: Storage) -> None:
    seed = Seed(storage)
    ann = await seed.user("ann")
    moment = START + timedelta(hours=1)
    first, second = await seed.chat(ann, at=moment), await seed.chat(ann, at=moment)
    assert ids(await storage.chats.for_user(ann.id, 100)) == [second.id, first.id]
    # a message at the very time another chat was created ties with that creation
    third = await seed.chat(ann, at=moment - timedelta(hours=1))
    await seed.send(third, ann, at=moment)
    assert ids(await storage.chats.for_user(ann.id, 100)) == [third.id, second.id, first.id]
    await seed.send(first, ann, at=moment)
    assert ids(await storage.chats.for_user(ann.id, 100)) == [third.id, second.id, first.id]


async def test_for_user_compares_instants_not_clock_faces(storage: Storage) -> None:
    seed = Seed(storage)
    ann = await seed.user("ann")
    utc = START + timedelta(hours=10)
    tokyo = timezone(timedelta(hours=9))  # its clock face reads later than UTC's
    earlier_elsewhere = (utc - timedelta(minutes=1)).astimezone(tokyo)
    later = await seed.chat(ann, at=utc)
    earlier = await seed.chat(ann, at=earlier_elsewhere)
    assert ids(await storage.chats.for_user(ann.id, 100)) == [later.id, earlier.id]


async def busy_list(storage: Storage) -> tuple[User, list[Chat]]:
    """A user in chats of every kind of activity: ties of creation, a message at another
    chat's creation time, times from another zone, a chat with no message, other users'
    chats between hers. Returns her and her chats, most recent activity first."""
    seed = Seed(storage)
    ann, ben = await seed.user("ann"), await seed.user("ben")
    moment = START + timedelta(hours=1)
    tokyo = timezone(timedelta(hours=9))
    made = [await seed.chat(ann, at=moment) for _ in range(3)]
    made += [await seed.chat(ann, ben, at=moment - timedelta(minutes=n)) for n in (5, 1, 3)]
    await seed.chat(ben, at=moment)
    made += [
        await seed.chat(ann, at=(moment + timedelta(seconds=n)).astimezone(tokyo)) for n in (2, 1)
    ]
    await seed.send(made[4], ben, at=moment)  # ties with the first three
    await seed.send(made[5], ann, at=moment + timedelta(days=1))
    await seed.send(made[1], ann, at=(moment + timedelta(seconds=1)).astimezone(tokyo))
    chats = [c for c in [await storage.chats.get(c.id) for c in made] if c is not None]
    return ann, sorted(chats, key=lambda chat: chat.activity, reverse=True)


async def test_for_user_is_ordered_by_activity_and_bounded_by_limit(storage: Storage) -> None:
    ann, expected = await busy_list(storage)
    assert await storage.chats.for_user(ann.id, len(expected) + 5) == expected
    for limit in range(1, len(expected) + 1):
        assert await storage.chats.for_user(ann.id, limit) == expected[:limit]


async def test_below_starts_after_any_position(storage: Storage) -> None:
    """Every chat's activity, and positions between and beyond them, as ``below``: the
    chats strictly below it, in order, as many as the limit allows."""
    ann, expected = await busy_list(storage)
    positions = [chat.activity for chat in expected]
    positions += [Activity(p.at, p.chat_id + 1) for p in positions]  # just above a chat
    positions += [Activity(p.at - timedelta(microseconds=1), MAX_ID) for p in positions]
    positions += [Activity(START, 1), Activity(START + timedelta(days=999), 1)]
    for below in positions:
        wanted = [chat for chat in expected if chat.activity < below]
        assert await storage.chats.for_user(ann.id, 100, below) == wanted
        assert await storage.chats.for_user(ann.id, 2, below) == wanted[:2]


async def test_paging_by_the_last_chat_gives_every_chat_once_in_order(storage: Storage) -> None:
    ann, expected = await busy_list(storage)
    for limit in range(1, len(expected) + 2):
        seen: list[Chat] = []
        below = None
        while page := await storage.chats.for_user(ann.id, limit, below):
            assert len(page) <= limit
            seen += page
            below = page[-1].activity
        assert seen == expected


async def test_the_order_follows_sends_and_deletions(storage: Storage) -> None:
    """Activity moves with a new message, with the deletion of the last one, and with a
    user's removal (their messages go): the list is always in activity order."""
    seed = Seed(storage)
    ann, ben = await seed.user("ann"), await seed.user("ben")
    chats = [await seed.chat(ann, ben) for _ in range(4)]

    async def in_order() -> list[int]:
        listed = await storage.chats.for_user(ann.id, 100)
        assert listed == sorted(listed, key=lambda chat: chat.activity, reverse=True)
        assert [c.id for c in await storage.chats.for_user(ann.id, 2, listed[1].activity)] == [
            c.id for c in listed[2:4]
        ]
        return ids(listed)

    assert await in_order() == ids(chats[::-1])
    kept = await seed.send(chats[0], ann)
    last = await seed.send(chats[1], ann)
    assert await in_order() == [chats[1].id, chats[0].id, chats[3].id, chats[2].id]
    await storage.messages.delete(last.id)
    assert await in_order() == [chats[0].id, chats[3].id, chats[2].id, chats[1].id]
    await seed.send(chats[2], ben)
    assert await in_order() == [chats[2].id, chats[0].id, chats[3].id, chats[1].id]
    await storage.users.delete(ben.id, departure(ben.id))
    assert await in_order() == [chats[0].id, chats[3].id, chats[2].id, chats[1].id]
    assert (await storage.chats.for_user(ann.id, 1))[0].last_message == kept
    await storage.chats.delete(chats[0].id)
    assert await in_order() == [chats[3].id, chats[2].id, chats[1].id]


async def test_get_for_gives_the_chat_to_its_participants_only(storage: Storage) -> None:
    seed = Seed(storage)
    ann, ben, eve = [await seed.user(name) for name in ("ann", "ben", "eve")]
    chat = await seed.chat(ann, ben)
    await seed.send(chat, ben)
    stored = await storage.chats.get(chat.id)
    assert stored is not None
    assert await storage.chats.get_for(chat.id, ann.id) == stored
    assert await storage.chats.get_for(chat.id, ben.id) == stored
    for chat_id, user_id in [(chat.id, eve.id), (chat.id + 1, ann.id), (chat.id, 999), (0, 0)]:
        assert await storage.chats.get_for(chat_id, user_id) is None
    await storage.users.delete(ben.id, departure(ben.id))
    assert await storage.chats.get_for(chat.id, ben.id) is None
    await storage.chats.delete(chat.id)
    assert await storage.chats.get_for(chat.id, ann.id) is None
