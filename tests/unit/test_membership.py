"""Chats that change, over the in-memory wiring: roles, membership, renames, deletion,
message edits and deletes; who may do what (403 for a participant without the right,
404 for an outsider); and the events each publishes, heard by a recording listener."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from adapters.clock import ManualClock
from adapters.hashing import Argon2Hasher
from adapters.memory import InMemoryStorage, InMemoryUserStore
from chatcore import (
    ChatDraft,
    ChatEdit,
    ChatMembers,
    Forbidden,
    NotFound,
    Registration,
    Services,
    User,
    ValidationFailed,
)
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
from chatcore.roster import LAST_ADMIN, departure
from entrypoints.bootstrap import bootstrap


async def users(app: Services, *names: str) -> list[User]:
    password = "correct horse battery"
    return [
        (await app.accounts.register(Registration(name, password, password))).user for name in names
    ]


async def heard(app: Services, chat: Chat) -> list[Event]:
    events: list[Event] = []
    await app.deps.notifier.subscribe(chat.id, events.append)
    return events


def ids(chat: Chat) -> list[int]:
    return [u.id for u in chat.participants]


async def test_the_creator_is_the_first_admin(app: Services) -> None:
    alice, bob = await users(app, "alice", "bob")
    chat = await app.chats.create_chat(bob, ChatDraft("c", [alice.id]))
    assert (chat.admins, chat.seq) == ((bob.id,), 0)


async def test_update_chat_renames_and_replaces_the_membership(app: Services) -> None:
    alice, bob, carol, dan = await users(app, "alice", "bob", "carol", "dan")
    chat = await app.chats.create_chat(alice, ChatDraft("c", [bob.id, carol.id]))
    events = await heard(app, chat)
    after = await app.membership.update_chat(
        alice, chat.id, ChatEdit(name=" new ", participant_ids=[dan.id])
    )
    assert (after.name, ids(after), after.seq) == ("new", [alice.id, dan.id], 4)
    assert events == [
        MemberRemoved(chat.id, 1, as_seen(bob), as_seen(alice)),
        MemberRemoved(chat.id, 2, as_seen(carol), as_seen(alice)),
        MemberAdded(chat.id, 3, as_seen(dan), as_seen(alice)),
        ChatUpdated(chat.id, 4, after),
    ]
    # lists left out leave the membership; the same name again changes nothing
    again = await app.membership.update_chat(alice, chat.id, ChatEdit(name="new"))
    assert again == after
    assert len(events) == 4
    with pytest.raises(NotFound):
        await app.chats.get_chat(bob, chat.id)


async def test_update_chat_checks_its_fields_as_create_does(app: Services) -> None:
    alice, bob = await users(app, "alice", "bob")
    chat = await app.chats.create_chat(alice, ChatDraft("c", [bob.id]))
    with pytest.raises(ValidationFailed) as caught:
        await app.membership.update_chat(
            alice, chat.id, ChatEdit(name=" ", participant_ids=[99], participant_usernames=["x"])
        )
    assert caught.value.fields == {
        "name": ["This field may not be blank."],
        "participant_ids": ['Invalid pk "99" - object does not exist.'],
        "participant_usernames": ['User "x" does not exist.'],
    }


async def test_members_get_403_and_outsiders_404_on_every_admin_change(app: Services) -> None:
    alice, bob, eve = await users(app, "alice", "bob", "eve")
    chat = await app.chats.create_chat(alice, ChatDraft("c", [bob.id]))
    changes = [
        lambda u: app.membership.update_chat(u, chat.id, ChatEdit(name="x")),
        lambda u: app.membership.add_participants(u, chat.id, ChatMembers([eve.id])),
        lambda u: app.membership.remove_participant(u, chat.id, alice.id),
        lambda u: app.membership.promote(u, chat.id, bob.id),
        lambda u: app.membership.demote(u, chat.id, alice.id),
        lambda u: app.membership.delete_chat(u, chat.id),
    ]
    for change in changes:
        with pytest.raises(Forbidden):
            await change(bob)
        with pytest.raises(NotFound):
            await change(eve)
    assert await app.chats.get_chat(alice, chat.id) == chat  # nothing changed


async def test_adding_is_idempotent_and_unknown_people_are_named(app: Services) -> None:
    alice, bob, carol = await users(app, "alice", "bob", "carol")
    chat = await app.chats.create_chat(alice, ChatDraft("c", [bob.id]))
    events = await heard(app, chat)
    after = await app.membership.add_participants(alice, chat.id, ChatMembers([bob.id], ["CAROL"]))
    assert ids(after) == [alice.id, bob.id, carol.id]
    assert events == [MemberAdded(chat.id, 1, as_seen(carol), as_seen(alice))]
    assert await app.membership.add_participants(alice, chat.id, ChatMembers([carol.id])) == after
    with pytest.raises(ValidationFailed) as caught:
        await app.membership.add_participants(alice, chat.id, ChatMembers([98], ["nobody"]))
    assert set(caught.value.fields) == {"participant_ids", "participant_usernames"}


async def test_anyone_may_leave_and_an_admin_removes_anyone(app: Services) -> None:
    alice, bob, carol = await users(app, "alice", "bob", "carol")
    chat = await app.chats.create_chat(alice, ChatDraft("c", [bob.id, carol.id]))
    events = await heard(app, chat)
    await app.membership.leave(bob, chat.id)
    await app.membership.remove_participant(alice, chat.id, carol.id)
    assert events == [
        MemberRemoved(chat.id, 1, as_seen(bob), as_seen(bob)),
        MemberRemoved(chat.id, 2, as_seen(carol), as_seen(alice)),
    ]
    with pytest.raises(NotFound):
        await app.membership.leave(bob, chat.id)
    with pytest.raises(NotFound):  # no such participant
        await app.membership.remove_participant(alice, chat.id, bob.id)


async def test_the_last_admin_leaving_hands_over_to_the_longest_standing(app: Services) -> None:
    alice, bob, carol, dan = await users(app, "alice", "bob", "carol", "dan")
    chat = await app.chats.create_chat(alice, ChatDraft("c", [dan.id]))
    await app.membership.add_participants(alice, chat.id, ChatMembers([bob.id]))
    await app.membership.add_participants(alice, chat.id, ChatMembers([carol.id]))
    events = await heard(app, chat)
    await app.membership.leave(alice, chat.id)
    after = await app.chats.get_chat(dan, chat.id)
    assert after.admins == (dan.id,)  # in from the start, though bob's id is lower
    assert events == [
        MemberRemoved(chat.id, 3, as_seen(alice), as_seen(alice)),
        ChatUpdated(chat.id, 4, after),
    ]
    await app.membership.leave(dan, chat.id)
    assert (await app.chats.get_chat(bob, chat.id)).admins == (bob.id,)


async def test_the_last_participant_leaving_deletes_the_chat(app: Services) -> None:
    alice, bob = await users(app, "alice", "bob")
    chat = await app.chats.create_chat(alice, ChatDraft("c", [bob.id]))
    await app.chats.send_message(bob, chat.id, "hi")
    events = await heard(app, chat)
    await app.membership.leave(alice, chat.id)
    await app.membership.leave(bob, chat.id)
    assert events[-1] == ChatDeleted(chat.id, 4)  # after the hand-over to bob, 3
    assert await app.deps.storage.chats.get(chat.id) is None


async def test_promote_and_demote_but_never_the_last_admin(app: Services) -> None:
    alice, bob, eve = await users(app, "alice", "bob", "eve")
    chat = await app.chats.create_chat(alice, ChatDraft("c", [bob.id]))
    events = await heard(app, chat)
    promoted = await app.membership.promote(alice, chat.id, bob.id)
    assert promoted.admins == (alice.id, bob.id)
    assert await app.membership.promote(bob, chat.id, alice.id) == promoted  # no change
    demoted = await app.membership.demote(bob, chat.id, alice.id)
    assert demoted.admins == (bob.id,)
    assert events == [ChatUpdated(chat.id, 1, promoted), ChatUpdated(chat.id, 2, demoted)]
    with pytest.raises(ValidationFailed) as caught:
        await app.membership.demote(bob, chat.id, bob.id)
    assert caught.value.fields == {"non_field_errors": [LAST_ADMIN]}
    with pytest.raises(ValidationFailed) as caught:
        await app.membership.promote(bob, chat.id, eve.id)
    assert set(caught.value.fields) == {"user_id"}
    with pytest.raises(NotFound):  # not an admin
        await app.membership.demote(bob, chat.id, alice.id)


async def test_admins_delete_the_chat_with_its_history(app: Services) -> None:
    alice, bob = await users(app, "alice", "bob")
    chat = await app.chats.create_chat(alice, ChatDraft("c", [bob.id]))
    message, _ = await app.chats.send_message(bob, chat.id, "hi")
    events = await heard(app, chat)
    await app.membership.delete_chat(alice, chat.id)
    assert events == [ChatDeleted(chat.id, 2)]
    for user in (alice, bob):
        with pytest.raises(NotFound):
            await app.chats.get_chat(user, chat.id)
        with pytest.raises(NotFound):
            await app.chats.get_message(user, message.id)


async def test_the_sender_edits_with_the_rules_of_a_send(app: Services) -> None:
    alice, bob, eve = await users(app, "alice", "bob", "eve")
    chat = await app.chats.create_chat(alice, ChatDraft("c", [bob.id]))
    message, _ = await app.chats.send_message(bob, chat.id, "hi")
    events = await heard(app, chat)
    edited = await app.chats.edit_message(bob, message.id, "  hello  ")
    assert (edited.content, edited.edited_at) == ("hello", app.deps.clock.now())
    assert events == [MessageEdited(chat.id, 2, edited)]
    assert await app.chats.get_message(alice, message.id) == edited
    with pytest.raises(ValidationFailed) as caught:
        await app.chats.edit_message(bob, message.id, " ")
    assert set(caught.value.fields) == {"content"}
    with pytest.raises(Forbidden):  # an admin, but not the sender
        await app.chats.edit_message(alice, message.id, "mine now")
    with pytest.raises(NotFound):
        await app.chats.edit_message(eve, message.id, " ")  # an outsider: 404 before 400


async def test_the_sender_or_an_admin_deletes_a_message(app: Services) -> None:
    alice, bob, carol, eve = await users(app, "alice", "bob", "carol", "eve")
    chat = await app.chats.create_chat(alice, ChatDraft("c", [bob.id, carol.id]))
    first, _ = await app.chats.send_message(bob, chat.id, "one")
    second, _ = await app.chats.send_message(bob, chat.id, "two")
    events = await heard(app, chat)
    with pytest.raises(Forbidden):
        await app.chats.delete_message(carol, first.id)
    with pytest.raises(NotFound):
        await app.chats.delete_message(eve, first.id)
    await app.chats.delete_message(bob, second.id)
    await app.chats.delete_message(alice, first.id)
    assert events == [MessageDeleted(chat.id, 3, second.id), MessageDeleted(chat.id, 4, first.id)]
    assert (await app.chats.get_chat(carol, chat.id)).last_message is None
    with pytest.raises(NotFound):
        await app.chats.get_message(bob, first.id)


async def test_chat_events_replay_what_was_published(app: Services) -> None:
    alice, bob = await users(app, "alice", "bob")
    chat = await app.chats.create_chat(alice, ChatDraft("c", [bob.id]))
    events = await heard(app, chat)
    _message, _ = await app.chats.send_message(bob, chat.id, "hi")
    await app.membership.promote(alice, chat.id, bob.id)
    replay, seq = await app.chats.chat_events(bob, chat.id)
    assert (replay, seq) == (events, 2)
    assert isinstance(replay[0], MessagePosted)
    assert await app.chats.chat_events(bob, chat.id, since=1, limit=1) == (events[1:], 2)
    with pytest.raises(ValidationFailed) as caught:
        await app.chats.chat_events(bob, chat.id, since=-1, limit=0)
    assert set(caught.value.fields) == {"since", "limit"}
    eve = (await users(app, "eve"))[0]
    with pytest.raises(NotFound):
        await app.chats.chat_events(eve, chat.id)


async def test_admin_deletions_tell_the_other_participants(app: Services) -> None:
    root, alice, bob = await users(app, "root", "alice", "bob")
    await app.deps.storage.users.update(
        root.id, __import__("chatcore").model.UserChanges(is_admin=True)
    )
    root = await app.deps.storage.users.get(root.id)
    assert root is not None
    chat = await app.chats.create_chat(bob, ChatDraft("c", [alice.id]))
    said, _ = await app.chats.send_message(bob, chat.id, "bob's")
    kept, _ = await app.chats.send_message(alice, chat.id, "alice's")
    events = await heard(app, chat)
    await app.admin.delete_user(root, bob.id)
    after = await app.chats.get_chat(alice, chat.id)
    assert after.admins == (alice.id,)
    assert events == [
        MessageDeleted(chat.id, 3, said.id),
        MemberRemoved(chat.id, 4, as_seen(bob), as_seen(root)),
        ChatUpdated(chat.id, 5, after),
    ]
    await app.admin.delete_message(root, kept.id)
    assert events[-1] == MessageDeleted(chat.id, 6, kept.id)
    await app.admin.delete_chat(root, chat.id)
    assert events[-1] == ChatDeleted(chat.id, 7)


class LosesUsersAfterLookup(InMemoryUserStore):
    """A user store whose id lookups answer, and then the user found is deleted (an
    admin deleting the account between a request's lookup and its change)."""

    victim: int | None = None

    async def get_many(self, user_ids: Sequence[int]) -> list[User]:
        found = await super().get_many(user_ids)
        if self.victim in user_ids:
            assert await self.delete(self.victim, departure(self.victim)) is not None
            self.victim = None  # deleted once; later lookups see it gone
        return found


@pytest.fixture
def racing(hasher: Argon2Hasher, clock: ManualClock) -> tuple[Services, LosesUsersAfterLookup]:
    storage = InMemoryStorage()
    storage.users = LosesUsersAfterLookup(storage._state)
    return bootstrap(storage=storage, hasher=hasher, clock=clock), storage.users


@pytest.mark.parametrize("change", ["create", "add", "replace"])
async def test_a_user_deleted_after_the_lookup_is_a_400_on_their_field(
    racing: tuple[Services, LosesUsersAfterLookup], change: str
) -> None:
    app, store = racing
    alice, bob, gone = await users(app, "alice", "bob", "gone")
    chat = await app.chats.create_chat(alice, ChatDraft("c", [bob.id]))
    store.victim = gone.id
    attempts = {
        "create": lambda: app.chats.create_chat(alice, ChatDraft("d", [bob.id, gone.id])),
        "add": lambda: app.membership.add_participants(alice, chat.id, ChatMembers([gone.id])),
        "replace": lambda: app.membership.update_chat(
            alice, chat.id, ChatEdit(participant_ids=[gone.id])
        ),
    }
    with pytest.raises(ValidationFailed) as refused:
        await attempts[change]()
    assert refused.value.fields == {
        "participant_ids": [f'Invalid pk "{gone.id}" - object does not exist.']
    }
    assert (await app.chats.list_chats(alice)).items == (await app.chats.get_chat(alice, chat.id),)
    assert ids(await app.chats.get_chat(alice, chat.id)) == [alice.id, bob.id]
