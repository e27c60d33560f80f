"""The administrative side of the stores: editing users, listing every chat, counts, and
deleting users, chats and messages without leaving a trace or a stale last message."""

from __future__ import annotations

from storage_support import Seed, everything_in, ids

from chatcore.model import Counts, MessageQuery, TokenRecord, UserChanges, UserType
from chatcore.ports import Storage
from chatcore.roster import departure


async def test_update_changes_only_the_given_fields(storage: Storage) -> None:
    seed = Seed(storage)
    ann = await seed.user("ann")
    promoted = await storage.users.update(ann.id, UserChanges(is_admin=True))
    assert promoted is not None
    assert (promoted.is_admin, promoted.is_active, promoted.user_type) == (
        True,
        True,
        UserType.STUDENT,
    )
    changed = await storage.users.update(
        ann.id, UserChanges(user_type=UserType.STAFF, is_active=False, is_admin=False)
    )
    assert changed is not None
    assert (changed.is_admin, changed.is_active, changed.user_type) == (
        False,
        False,
        UserType.STAFF,
    )
    assert (changed.id, changed.username, changed.date_joined) == (
        ann.id,
        ann.username,
        ann.date_joined,
    )
    assert await storage.users.get(ann.id) == changed
    assert await storage.users.update(ann.id, UserChanges()) == changed
    assert await storage.users.update(999, UserChanges(is_admin=True)) is None


async def test_read_models_carry_the_current_user(storage: Storage) -> None:
    seed = Seed(storage)
    ann = await seed.user("ann")
    chat = await seed.chat(ann)
    message = await seed.send(chat, ann)
    staff = await storage.users.update(ann.id, UserChanges(user_type=UserType.STAFF))
    assert staff is not None
    stored = await storage.messages.get(message.id)
    assert stored is not None
    assert stored.sender == staff
    listed = await storage.chats.get(chat.id)
    assert listed is not None
    assert listed.participants == (staff,)
    assert listed.last_message is not None
    assert listed.last_message.sender == staff


async def test_list_all_pages_every_chat_in_id_order(storage: Storage) -> None:
    seed = Seed(storage)
    ann, ben = await seed.user("ann"), await seed.user("ben")
    chats = [await seed.chat(ann), await seed.chat(ben), await seed.chat(ann, ben)]
    await seed.send(chats[0], ann)
    everything = await storage.chats.list_all(None, 10)
    assert everything == [await storage.chats.get(chat.id) for chat in chats]
    assert ids(await storage.chats.list_all(None, 2)) == ids(chats[:2])
    assert ids(await storage.chats.list_all(chats[0].id, 10)) == ids(chats[1:])
    assert await storage.chats.list_all(chats[-1].id, 10) == []


async def test_counts(storage: Storage) -> None:
    assert await storage.counts() == Counts(0, 0, 0)
    seed = Seed(storage)
    ann, ben = await seed.user("ann"), await seed.user("ben")
    chat = await seed.chat(ann, ben)
    for _ in range(3):
        await seed.send(chat, ben)
    assert await storage.counts() == Counts(2, 1, 3)


async def test_deleting_a_message_moves_the_last_message_back(storage: Storage) -> None:
    seed = Seed(storage)
    ann, ben = await seed.user("ann"), await seed.user("ben")
    chat, other = await seed.chat(ann, ben), await seed.chat(ann)
    first = await seed.send(chat, ann, client_id="k")
    second = await seed.send(chat, ben)
    await seed.send(other, ann)
    assert ids(await storage.chats.for_user(ann.id, 100)) == [other.id, chat.id]

    assert await storage.messages.delete(second.id)
    assert not await storage.messages.delete(second.id)
    assert await storage.messages.get(second.id) is None
    assert await everything_in(storage, chat) == [first]
    stored = await storage.chats.get(chat.id)
    assert stored is not None
    assert stored.last_message == first

    assert await storage.messages.delete(first.id)
    stored = await storage.chats.get(chat.id)
    assert stored is not None
    assert stored.last_message is None
    # with no message left, the chat's creation is its activity again
    assert ids(await storage.chats.for_user(ann.id, 100)) == [other.id, chat.id]
    # ids are never reused, and the client_id is free again
    again = await seed.send(chat, ann, client_id="k")
    assert again.id > second.id


async def test_deleting_a_chat_removes_its_messages_and_memberships(storage: Storage) -> None:
    seed = Seed(storage)
    ann, ben = await seed.user("ann"), await seed.user("ben")
    chat, kept = await seed.chat(ann, ben), await seed.chat(ann, ben)
    sent = [await seed.send(chat, ann), await seed.send(chat, ben)]
    survivor = await seed.send(kept, ben)
    assert await storage.chats.delete(chat.id)
    assert not await storage.chats.delete(chat.id)
    assert await storage.chats.get(chat.id) is None
    assert not await storage.chats.is_participant(chat.id, ann.id)
    assert ids(await storage.chats.for_user(ann.id, 100)) == [kept.id]
    assert [await storage.messages.get(m.id) for m in sent] == [None, None]
    assert await storage.messages.page(MessageQuery(limit=10, member_id=ben.id)) == [survivor]
    assert await storage.counts() == Counts(2, 1, 1)
    newer = await seed.chat(ann)
    assert newer.id > chat.id


async def test_deleting_a_user_removes_everything_of_theirs(storage: Storage) -> None:
    seed = Seed(storage)
    ann, ben, cy = [await seed.user(name) for name in ("ann", "ben", "cy")]
    chat, theirs = await seed.chat(ann, ben, cy), await seed.chat(ben, cy)
    by_ann = await seed.send(chat, ann)
    by_cy = await seed.send(chat, cy)
    await seed.send(chat, ben)
    await seed.send(theirs, cy)
    await seed.send(theirs, ben)
    await storage.tokens.add(TokenRecord("ben-token", ben.id, seed.tick(), seed.tick()))
    await storage.tokens.add(TokenRecord("cy-token", cy.id, seed.tick(), seed.tick()))

    assert await storage.users.delete(ben.id, departure(ben.id))
    assert not await storage.users.delete(ben.id, departure(ben.id))
    assert await storage.users.get(ben.id) is None
    assert await storage.users.password_hash("ben") is None
    assert await storage.tokens.get("ben-token") is None
    assert await storage.tokens.get("cy-token") is not None
    stored = await storage.chats.get(chat.id)
    assert stored is not None
    assert stored.participants == (ann, cy)
    assert stored.last_message == by_cy
    assert await everything_in(storage, chat) == [by_ann, by_cy]
    assert not await storage.chats.is_participant(theirs.id, ben.id)
    assert ids(await storage.chats.for_user(cy.id, 100)) == [theirs.id, chat.id]
    assert await storage.counts() == Counts(2, 2, 3)
    # the username is free again, under a new id
    again = await seed.user("BEN")
    assert again.id > cy.id
