"""The event log, on every storage adapter: each change stored with its event at the
chat's next seq, gapless and in commit order under concurrent writers, read back after
a seq with a limit, rendered as things are now."""

from __future__ import annotations

import asyncio

import pytest
from storage_support import Seed

from chatcore.errors import NotFound
from chatcore.events import (
    ChatDeleted,
    ChatUpdated,
    Event,
    MemberAdded,
    MemberRemoved,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    as_seen,
)
from chatcore.model import Chat
from chatcore.ports import Storage
from chatcore.roster import ChatChange, Roster, departure, membership, promotion


async def all_events(storage: Storage, chat: Chat) -> list[Event]:
    return await storage.chats.events(chat.id, 0, 1_000_000)


def seqs(events: list[Event]) -> list[int]:
    return [e.seq for e in events]


async def test_each_change_returns_its_event_at_the_next_seq(storage: Storage) -> None:
    seed = Seed(storage)
    ann, ben, cy = await seed.user("ann"), await seed.user("ben"), await seed.user("cy")
    chat = await storage.chats.add("c", [ann.id, ben.id], seed.tick(), ann.id)
    assert (chat.seq, chat.admins) == (0, (ann.id,))
    message, posted = await storage.messages.add(seed.draft(chat, ben, "hi"))
    assert posted == MessagePosted(chat.id, 1, message)
    edited_at = seed.tick()
    changed = await storage.messages.edit(message.id, "hi!", edited_at)
    assert changed is not None
    edited, event = changed
    assert (edited.content, edited.edited_at) == ("hi!", edited_at)
    assert event == MessageEdited(chat.id, 2, edited)
    result = await storage.chats.change(
        chat.id, lambda r: membership(r, ann, [*r.chat.participants, cy], 10, "new name")
    )
    assert result is not None
    after, events = result
    assert after is not None
    assert (after.name, after.seq, [u.id for u in after.participants]) == (
        "new name",
        4,
        [ann.id, ben.id, cy.id],
    )
    assert events == [
        MemberAdded(chat.id, 3, as_seen(cy), as_seen(ann)),
        ChatUpdated(chat.id, 4, after),
    ]
    assert await storage.messages.delete(message.id) == MessageDeleted(chat.id, 5, message.id)
    current = await storage.chats.get(chat.id)
    assert current is not None
    assert current.seq == 5


async def test_replay_renders_edits_latest_and_deleted_messages_as_deleted(
    storage: Storage,
) -> None:
    seed = Seed(storage)
    ann, ben = await seed.user("ann"), await seed.user("ben")
    chat = await seed.chat(ann, ben)
    kept = await seed.send(chat, ann, "one")
    gone = await seed.send(chat, ben, "two")
    await storage.messages.edit(kept.id, "one, edited", seed.tick())
    await storage.messages.edit(gone.id, "two, edited", seed.tick())
    await storage.messages.delete(gone.id)
    await storage.chats.change(chat.id, lambda r: promotion(r, ben.id))
    now_kept = await storage.messages.get(kept.id)
    now_chat = await storage.chats.get(chat.id)
    assert now_kept is not None
    assert now_chat is not None
    assert await all_events(storage, chat) == [
        MessagePosted(chat.id, 1, now_kept),
        MessageDeleted(chat.id, 2, gone.id),
        MessageEdited(chat.id, 3, now_kept),
        MessageDeleted(chat.id, 4, gone.id),
        MessageDeleted(chat.id, 5, gone.id),
        ChatUpdated(chat.id, 6, now_chat),
    ]
    assert now_chat.admins == (ann.id, ben.id)


async def test_events_after_a_seq_with_a_limit(storage: Storage) -> None:
    seed = Seed(storage)
    ann = await seed.user("ann")
    chat = await seed.chat(ann)
    for n in range(10):
        await seed.send(chat, ann, f"m{n}")
    full = await all_events(storage, chat)
    assert seqs(full) == list(range(1, 11))
    for since in (0, 3, 9, 10, 12):
        for limit in (1, 4, 100):
            page = await storage.chats.events(chat.id, since, limit)
            assert page == full[since : since + limit]
    assert await storage.chats.events(chat.id + 1, 0, 10) == []


async def test_member_events_show_the_user_as_they_were_even_once_deleted(
    storage: Storage,
) -> None:
    seed = Seed(storage)
    ann, ben, cy = await seed.user("ann"), await seed.user("ben"), await seed.user("cy")
    chat = await seed.chat(ann, ben)
    await storage.chats.change(
        chat.id, lambda r: membership(r, ann, [*r.chat.participants, cy], 10)
    )
    said = await seed.send(chat, cy, "bye")
    events = await storage.users.delete(cy.id, departure(cy.id, ann))
    assert events == [
        MessageDeleted(chat.id, 3, said.id),
        MemberRemoved(chat.id, 4, as_seen(cy), as_seen(ann)),
    ]
    assert await all_events(storage, chat) == [
        MemberAdded(chat.id, 1, as_seen(cy), as_seen(ann)),
        MessageDeleted(chat.id, 2, said.id),
        *events,
    ]


async def test_the_last_admin_leaving_hands_over_and_the_last_member_deletes(
    storage: Storage,
) -> None:
    seed = Seed(storage)
    ann, ben, cy = await seed.user("ann"), await seed.user("ben"), await seed.user("cy")
    chat = await storage.chats.add("c", [cy.id], seed.tick(), cy.id)
    for user in (ben, ann):  # ben joins first, though ann's id is lower
        await storage.chats.change(
            chat.id, lambda r, u=user: membership(r, cy, [*r.chat.participants, u], 10)
        )
    result = await storage.chats.change(chat.id, departure(cy.id))
    assert result is not None
    after, events = result
    assert after is not None
    assert after.admins == (ben.id,)
    assert events == [
        MemberRemoved(chat.id, 3, as_seen(cy), as_seen(cy)),
        ChatUpdated(chat.id, 4, after),
    ]
    await storage.chats.change(chat.id, departure(ben.id))
    again = await storage.chats.get(chat.id)
    assert again is not None
    assert again.admins == (ann.id,)  # the only one left
    result = await storage.chats.change(chat.id, departure(ann.id))
    assert result == (None, [ChatDeleted(chat.id, 7)])
    assert await storage.chats.get(chat.id) is None
    assert await storage.chats.for_user(ann.id, 10) == []


async def test_a_plan_that_raises_changes_nothing(storage: Storage) -> None:
    seed = Seed(storage)
    ann, ben = await seed.user("ann"), await seed.user("ben")
    chat = await seed.chat(ann, ben)

    def refuse(roster: Roster) -> ChatChange:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await storage.chats.change(chat.id, refuse)
    assert await storage.chats.get(chat.id) == chat
    assert await all_events(storage, chat) == []
    assert await storage.chats.change(chat.id + 1, refuse) is None


async def test_adding_a_user_deleted_since_the_plan_was_made_changes_nothing(
    storage: Storage,
) -> None:
    """The use case looked the user up, then an admin deleted the account: the change
    that would add them is refused whole (NotFound), removals in it included."""
    seed = Seed(storage)
    ann, ben, cat, gone = [await seed.user(n) for n in ("ann", "ben", "cat", "gone")]
    chat = await seed.chat(ann, ben)
    assert await storage.users.delete(gone.id, departure(gone.id)) == []

    def swap(roster: Roster) -> ChatChange:
        return membership(roster, ann, [ann, cat, gone], 100)

    with pytest.raises(NotFound):
        await storage.chats.change(chat.id, swap)
    assert await storage.chats.get(chat.id) == chat
    assert await all_events(storage, chat) == []
    with pytest.raises(NotFound):
        await storage.chats.add("new", [ann.id, gone.id], seed.tick(), ann.id)
    assert await storage.chats.for_user(ann.id, 10) == [chat]


async def test_concurrent_writers_get_gapless_seqs_in_commit_order(storage: Storage) -> None:
    """Sends, edits and membership changes at once: seqs 1..n with no gap, each event
    where its change committed (a message's id grows with its seq)."""
    seed = Seed(storage)
    people = [await seed.user(f"u{n}") for n in range(6)]
    chat = await seed.chat(*people[:3])
    first = await seed.send(chat, people[0], "first")

    async def sends(n: int) -> list[Event]:
        out: list[Event] = []
        for i in range(15):
            _, event = await storage.messages.add(seed.draft(chat, people[n], f"{n}:{i}"))
            assert event is not None
            out.append(event)
        return out

    async def edits() -> list[Event]:
        out: list[Event] = []
        for i in range(15):
            changed = await storage.messages.edit(first.id, f"edit {i}", seed.tick())
            assert changed is not None
            out.append(changed[1])
        return out

    async def churn() -> list[Event]:
        out: list[Event] = []
        for user in people[3:]:
            for plan in (
                lambda r, u=user: membership(r, people[0], [*r.chat.participants, u], 10),
                departure(user.id),
            ):
                result = await storage.chats.change(chat.id, plan)
                assert result is not None
                out += result[1]
        return out

    batches = await asyncio.gather(sends(0), sends(1), sends(2), edits(), churn())
    returned = sorted((e for batch in batches for e in batch), key=lambda e: e.seq)
    stored = await all_events(storage, chat)
    assert seqs(stored) == list(range(1, len(stored) + 1))
    assert seqs(returned) == list(range(2, len(stored) + 1))
    assert [type(e) for e in stored[1:]] == [type(e) for e in returned]
    posted = [e.message.id for e in stored if isinstance(e, MessagePosted)]
    assert posted == sorted(posted)
