"""Chat and message use cases over the in-memory adapters, wired by the real bootstrap()."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.clock import ManualClock
from adapters.hashing import Argon2Hasher
from chatcore import (
    ChatDraft,
    Message,
    NotFound,
    Registration,
    Services,
    User,
    ValidationFailed,
    Window,
)
from chatcore.deps import Policy
from chatcore.events import Event, MessagePosted
from entrypoints.bootstrap import bootstrap


async def users(app: Services, *names: str) -> list[User]:
    password = "correct horse battery"
    return [
        (await app.accounts.register(Registration(name, password, password))).user for name in names
    ]


async def test_creator_is_always_a_participant_and_duplicates_are_ignored(app: Services) -> None:
    alice, bob, _ = await users(app, "alice", "bob", "carol")
    draft = ChatDraft("  team  ", [bob.id, bob.id, alice.id], ["CAROL", "carol", "bob"])
    chat = await app.chats.create_chat(alice, draft)
    assert chat.name == "team"
    assert [u.username for u in chat.participants] == ["alice", "bob", "carol"]
    assert chat.last_message is None


async def test_a_chat_with_only_its_creator_is_allowed(app: Services) -> None:
    (alice,) = await users(app, "alice")
    chat = await app.chats.create_chat(alice, ChatDraft("notes"))
    assert chat.participants == (alice,)


async def test_unknown_participants_are_named_on_their_field(app: Services) -> None:
    (alice,) = await users(app, "alice")
    with pytest.raises(ValidationFailed) as caught:
        await app.chats.create_chat(alice, ChatDraft("x", [99], ["ghost"]))
    assert caught.value.fields == {
        "participant_ids": ['Invalid pk "99" - object does not exist.'],
        "participant_usernames": ['User "ghost" does not exist.'],
    }


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("   ", "This field may not be blank."),
        ("n" * 256, "Ensure this field has no more than 255 characters."),
    ],
)
async def test_chat_name_limits(app: Services, name: str, message: str) -> None:
    (alice,) = await users(app, "alice")
    with pytest.raises(ValidationFailed) as caught:
        await app.chats.create_chat(alice, ChatDraft(name))
    assert caught.value.fields == {"name": [message]}


async def test_participant_count_is_limited(hasher: Argon2Hasher, clock: ManualClock) -> None:
    app = bootstrap(hasher=hasher, clock=clock, policy=Policy(max_participants=2))
    alice, bob, carol = await users(app, "alice", "bob", "carol")
    with pytest.raises(ValidationFailed) as caught:
        await app.chats.create_chat(alice, ChatDraft("x", [bob.id, carol.id]))
    assert "non_field_errors" in caught.value.fields


async def test_outsiders_see_nothing_of_a_chat(app: Services) -> None:
    alice, bob, eve = await users(app, "alice", "bob", "eve")
    chat = await app.chats.create_chat(alice, ChatDraft("private", [bob.id]))
    message, _ = await app.chats.send_message(bob, chat.id, "secret")
    assert (await app.chats.list_chats(eve)).items == ()
    for attempt in (
        app.chats.get_chat(eve, chat.id),
        app.chats.get_message(eve, message.id),
        app.chats.chat_messages(eve, chat.id, Window()),
        app.chats.send_message(eve, chat.id, "let me in"),
    ):
        with pytest.raises(NotFound):
            await attempt
    mine = await app.chats.my_messages(eve, Window(), chat_id=chat.id)
    assert mine.items == ()


async def test_a_missing_chat_looks_like_a_hidden_one(app: Services) -> None:
    (alice,) = await users(app, "alice")
    with pytest.raises(NotFound) as hidden:
        await app.chats.get_chat(alice, 12345)
    assert hidden.value.message == "Not found."


async def test_send_trims_and_stores_and_becomes_the_last_message(app: Services) -> None:
    alice, bob = await users(app, "alice", "bob")
    chat = await app.chats.create_chat(alice, ChatDraft("c", [bob.id]))
    message, created = await app.chats.send_message(bob, chat.id, "  hello  ")
    assert created
    assert (message.content, message.sender, message.chat_id) == ("hello", bob, chat.id)
    assert (await app.chats.get_chat(alice, chat.id)).last_message == message
    assert await app.chats.get_message(alice, message.id) == message


@pytest.mark.parametrize(
    ("content", "client_id", "field"),
    [
        (" \n\t ", None, "content"),
        ("x" * 10_001, None, "content"),
        ("ok", "", "client_id"),
        ("ok", "k" * 65, "client_id"),
    ],
)
async def test_send_limits(app: Services, content: str, client_id: str | None, field: str) -> None:
    (alice,) = await users(app, "alice")
    chat = await app.chats.create_chat(alice, ChatDraft("c"))
    with pytest.raises(ValidationFailed) as caught:
        await app.chats.send_message(alice, chat.id, content, client_id)
    assert list(caught.value.fields) == [field]


async def test_content_of_exactly_the_limit_after_trimming_is_accepted(app: Services) -> None:
    (alice,) = await users(app, "alice")
    chat = await app.chats.create_chat(alice, ChatDraft("c"))
    message, _ = await app.chats.send_message(alice, chat.id, " " + "x" * 10_000 + " ")
    assert len(message.content) == 10_000


async def test_a_repeated_client_id_stores_and_publishes_nothing(app: Services) -> None:
    alice, bob = await users(app, "alice", "bob")
    chat = await app.chats.create_chat(alice, ChatDraft("c", [bob.id]))
    heard: list[Event] = []
    await app.deps.notifier.subscribe(chat.id, heard.append)
    first, created = await app.chats.send_message(alice, chat.id, "once", "k1")
    again, created_again = await app.chats.send_message(alice, chat.id, "twice?", "k1")
    other, other_created = await app.chats.send_message(bob, chat.id, "bob's own", "k1")
    assert (created, created_again, other_created) == (True, False, True)
    assert again == first
    assert other != first
    assert heard == [MessagePosted(chat.id, 1, first), MessagePosted(chat.id, 2, other)]


async def test_sends_are_published_to_the_chats_listeners_only(app: Services) -> None:
    (alice,) = await users(app, "alice")
    one = await app.chats.create_chat(alice, ChatDraft("one"))
    two = await app.chats.create_chat(alice, ChatDraft("two"))
    heard: list[str] = []
    stop = await app.deps.notifier.subscribe(
        one.id, lambda e: heard.append(e.message.content if isinstance(e, MessagePosted) else "")
    )
    await app.chats.send_message(alice, one.id, "a")
    await app.chats.send_message(alice, two.id, "b")
    stop()
    await app.chats.send_message(alice, one.id, "c")
    assert heard == ["a"]


async def test_chats_are_listed_by_most_recent_activity(app: Services, clock: ManualClock) -> None:
    (alice,) = await users(app, "alice")
    old = await app.chats.create_chat(alice, ChatDraft("old"))
    clock.advance(timedelta(seconds=1))
    new = await app.chats.create_chat(alice, ChatDraft("new"))
    assert [c.name for c in (await app.chats.list_chats(alice)).items] == ["new", "old"]
    clock.advance(timedelta(seconds=1))
    await app.chats.send_message(alice, old.id, "bump")
    listed = (await app.chats.list_chats(alice)).items
    assert [c.id for c in listed] == [old.id, new.id]
    assert listed[0].last_message is not None
    assert listed[0].last_message.content == "bump"


async def sent(app: Services, actor: User, chat_id: int, count: int) -> list[Message]:
    return [(await app.chats.send_message(actor, chat_id, f"m{i}"))[0] for i in range(count)]


async def test_pages_default_to_the_newest_oldest_first(app: Services) -> None:
    (alice,) = await users(app, "alice")
    chat = await app.chats.create_chat(alice, ChatDraft("c"))
    history = await sent(app, alice, chat.id, 150)
    page = await app.chats.chat_messages(alice, chat.id, Window())
    assert list(page.items) == history[-100:]
    assert (page.has_older, page.has_newer) == (True, False)


async def test_before_and_after_page_back_and_forth(app: Services) -> None:
    (alice,) = await users(app, "alice")
    chat = await app.chats.create_chat(alice, ChatDraft("c"))
    history = await sent(app, alice, chat.id, 10)
    back = await app.chats.chat_messages(alice, chat.id, Window(limit=4, before=history[5].id))
    assert list(back.items) == history[1:5]
    assert (back.has_older, back.has_newer) == (True, True)
    forward = await app.chats.chat_messages(alice, chat.id, Window(limit=4, after=history[5].id))
    assert list(forward.items) == history[6:10]
    assert (forward.has_older, forward.has_newer) == (True, False)
    between = await app.chats.chat_messages(
        alice, chat.id, Window(limit=10, after=history[2].id, before=history[5].id)
    )
    assert list(between.items) == history[3:5]
    assert (between.has_older, between.has_newer) == (True, True)


async def test_limit_is_clamped_and_window_values_are_checked(app: Services) -> None:
    (alice,) = await users(app, "alice")
    chat = await app.chats.create_chat(alice, ChatDraft("c"))
    history = await sent(app, alice, chat.id, 3)
    page = await app.chats.chat_messages(alice, chat.id, Window(limit=5000))
    assert list(page.items) == history
    with pytest.raises(ValidationFailed) as caught:
        await app.chats.chat_messages(alice, chat.id, Window(limit=0, before=-1, after=0))
    assert set(caught.value.fields) == {"limit", "before", "after"}


async def test_my_messages_span_my_chats_only(app: Services) -> None:
    alice, bob = await users(app, "alice", "bob")
    shared = await app.chats.create_chat(alice, ChatDraft("shared", [bob.id]))
    private = await app.chats.create_chat(alice, ChatDraft("private"))
    a1, _ = await app.chats.send_message(alice, shared.id, "a1")
    p1, _ = await app.chats.send_message(alice, private.id, "p1")
    b1, _ = await app.chats.send_message(bob, shared.id, "b1")
    assert list((await app.chats.my_messages(alice, Window())).items) == [a1, p1, b1]
    assert list((await app.chats.my_messages(bob, Window())).items) == [a1, b1]
    only = await app.chats.my_messages(alice, Window(), chat_id=private.id)
    assert list(only.items) == [p1]
    with pytest.raises(ValidationFailed):
        await app.chats.my_messages(alice, Window(), chat_id=0)
