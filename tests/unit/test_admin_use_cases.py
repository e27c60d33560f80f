"""The use cases behind the admin console, over the in-memory wiring: its login, the
finders (filters, sort, pages), and an administrator's changes to chats they are not in,
with the events each publishes (the same a chat's own admin's change would)."""

from __future__ import annotations

import pytest

from chatcore import (
    AccountEdit,
    AuthenticationFailed,
    ChatDraft,
    ChatMembers,
    NotFound,
    Registration,
    Services,
    Throttled,
    User,
    ValidationFailed,
)
from chatcore.admin import MESSAGE_SCAN, MessageFilter, Scanned, UserFilter
from chatcore.events import ChatDeleted, ChatUpdated, Event, MemberAdded, MemberRemoved, as_seen
from chatcore.model import Chat, NewUser, UserType
from chatcore.rules import PAGE_MAX

PASSWORD = "correct horse battery"


async def register(app: Services, name: str, *, admin: bool = False, kind: str = "student") -> User:
    form = Registration(name, PASSWORD, PASSWORD, user_type=kind)
    return (await app.accounts.register(form, is_admin=admin)).user


async def heard(app: Services, chat: Chat) -> list[Event]:
    events: list[Event] = []
    await app.deps.notifier.subscribe(chat.id, events.append)
    return events


async def test_the_console_login_is_for_admins_only_and_throttled(app: Services) -> None:
    root = await register(app, "root", admin=True)
    await register(app, "bob")
    session = await app.admin.login("root", PASSWORD, "10.0.0.1")
    assert session.user == root
    assert await app.accounts.authenticate(session.token) == root
    with pytest.raises(NotFound):  # a right password without the flag: no credential
        await app.admin.login("bob", PASSWORD, "10.0.0.1")
    with pytest.raises(AuthenticationFailed):
        await app.admin.login("root", "wrong password", "10.0.0.1")
    free = app.deps.policy.login_free_failures
    for _ in range(free - 1):
        with pytest.raises(AuthenticationFailed):
            await app.admin.login("root", "wrong password", "10.0.0.1")
    with pytest.raises(Throttled):  # the API login's throttle: the same keys, the same count
        await app.accounts.login("root", PASSWORD, "10.0.0.1")
    await app.accounts.logout(session.token)
    with pytest.raises(AuthenticationFailed):
        await app.accounts.authenticate(session.token)


async def test_no_console_use_case_answers_a_non_admin(app: Services) -> None:
    owner = await register(app, "olga", kind="owner")
    calls = [
        app.admin.counts(owner),
        app.admin.get_user(owner, owner.id),
        app.admin.get_chat(owner, 1),
        app.admin.get_message(owner, 1),
        app.admin.find_users(owner, UserFilter()),
        app.admin.find_chats(owner),
        app.admin.find_messages(owner, MessageFilter()),
        app.admin.rename_chat(owner, 1, "x"),
        app.admin.add_participants(owner, 1, ChatMembers([owner.id])),
        app.admin.remove_participant(owner, 1, owner.id),
    ]
    for call in calls:
        with pytest.raises(NotFound):
            await call


async def test_find_users_filters_sorts_and_numbers_pages(app: Services) -> None:
    root = await register(app, "root", admin=True)
    names = ["delta", "Alpha", "charlie", "bravo", "echo"]
    made = {
        n: await register(app, n, kind="staff" if n in ("delta", "bravo") else "owner")
        for n in names
    }
    await app.admin.edit_user(root, made["echo"].id, AccountEdit(is_active=False))

    everyone = await app.admin.find_users(root, UserFilter(sort="username"))
    assert [u.username for u in everyone.items] == [
        "Alpha",
        "bravo",
        "charlie",
        "delta",
        "echo",
        "root",
    ]
    assert (everyone.total, everyone.page, everyone.pages) == (6, 1, 1)
    staff = await app.admin.find_users(root, UserFilter(user_type="staff", sort="-username"))
    assert [u.username for u in staff.items] == ["delta", "bravo"]
    inactive = await app.admin.find_users(root, UserFilter(is_active=False))
    assert [u.username for u in inactive.items] == ["echo"]
    admins = await app.admin.find_users(root, UserFilter(is_admin=True))
    assert [u.username for u in admins.items] == ["root"]
    searched = await app.admin.find_users(root, UserFilter(search="HA", sort="-id"))
    assert [u.username for u in searched.items] == ["charlie", "Alpha"]

    second = await app.admin.find_users(root, UserFilter(sort="id", page=2, per_page=4))
    assert [u.username for u in second.items] == ["bravo", "echo"]
    assert (second.total, second.page, second.pages) == (6, 2, 2)
    for bad in (
        UserFilter(page=3, per_page=4),
        UserFilter(page=0),
        UserFilter(sort="password"),
        UserFilter(user_type="wizard"),
        UserFilter(search="x" * 151),
        UserFilter(per_page=0),
    ):
        with pytest.raises(ValidationFailed):
            await app.admin.find_users(root, bad)


async def test_find_users_reads_past_one_batch(app: Services) -> None:
    root = await register(app, "root", admin=True)
    now = app.deps.clock.now()
    for i in range(PAGE_MAX + 5):  # straight into storage: hashing a thousand is slow
        await app.deps.storage.users.add(NewUser(f"u{i:04d}", "", UserType.STUDENT, now), "x")
    found = await app.admin.find_users(root, UserFilter(sort="-id", per_page=3))
    assert found.total == PAGE_MAX + 6
    assert [u.username for u in found.items] == ["u1004", "u1003", "u1002"]


async def test_find_chats_searches_names_newest_first(app: Services) -> None:
    root = await register(app, "root", admin=True)
    alice = await register(app, "alice")
    for name in ("Team One", "random", "team two"):
        await app.chats.create_chat(alice, ChatDraft(name))
    found = await app.admin.find_chats(root, "TEAM")
    assert [c.name for c in found.items] == ["team two", "Team One"]
    assert (await app.admin.find_chats(root, "", page=2, per_page=2)).items[0].name == "Team One"
    with pytest.raises(ValidationFailed):
        await app.admin.find_chats(root, "", page=3, per_page=2)


async def test_find_messages_filters_by_chat_sender_and_content(app: Services) -> None:
    root = await register(app, "root", admin=True)
    alice, bob = await register(app, "alice"), await register(app, "bob")
    one = await app.chats.create_chat(alice, ChatDraft("one", [bob.id]))
    two = await app.chats.create_chat(bob, ChatDraft("two"))
    sent = []
    for who, chat, text in [
        (alice, one, "Hello there"),
        (bob, one, "hello back"),
        (bob, two, "notes to self"),
        (alice, one, "bye"),
    ]:
        sent.append((await app.chats.send_message(who, chat.id, text))[0])

    def texts(scan: Scanned) -> list[str]:
        return [m.content for m in scan.items]

    newest = await app.admin.find_messages(root, MessageFilter())
    assert texts(newest) == ["bye", "notes to self", "hello back", "Hello there"]
    assert newest.older is None
    assert texts(await app.admin.find_messages(root, MessageFilter(search="HELLO"))) == [
        "hello back",
        "Hello there",
    ]
    assert texts(
        await app.admin.find_messages(root, MessageFilter(chat_id=one.id, sender_id=bob.id))
    ) == ["hello back"]
    first = await app.admin.find_messages(root, MessageFilter(per_page=2))
    assert texts(first) == ["bye", "notes to self"]
    assert first.older == sent[2].id
    rest = await app.admin.find_messages(root, MessageFilter(per_page=2, before=first.older))
    assert texts(rest) == ["hello back", "Hello there"]
    for bad in (MessageFilter(chat_id=0), MessageFilter(sender_id=-1), MessageFilter(before=0)):
        with pytest.raises(ValidationFailed):
            await app.admin.find_messages(root, bad)


async def test_a_message_scan_stops_after_its_budget_and_says_where(app: Services) -> None:
    root = await register(app, "root", admin=True)
    alice = await register(app, "alice")
    chat = await app.chats.create_chat(alice, ChatDraft("c"))
    for i in range(MESSAGE_SCAN + 10):
        await app.chats.send_message(alice, chat.id, f"m{i}")
    scan = await app.admin.find_messages(root, MessageFilter(search="nowhere"))
    assert scan.items == ()
    assert scan.older is not None  # more below: the console offers to look further
    rest = await app.admin.find_messages(root, MessageFilter(search="nowhere", before=scan.older))
    assert (rest.items, rest.older) == ((), None)


async def test_an_administrator_renames_any_chat_without_joining_it(app: Services) -> None:
    root = await register(app, "root", admin=True)
    alice = await register(app, "alice")
    chat = await app.chats.create_chat(alice, ChatDraft("old"))
    events = await heard(app, chat)
    renamed = await app.admin.rename_chat(root, chat.id, "  new  ")
    assert (renamed.name, renamed.seq) == ("new", 1)
    assert not renamed.has_participant(root.id)
    assert events == [ChatUpdated(chat.id, 1, renamed)]
    await app.admin.rename_chat(root, chat.id, "new")  # no change, no event
    assert len(events) == 1
    with pytest.raises(ValidationFailed):
        await app.admin.rename_chat(root, chat.id, "   ")
    with pytest.raises(NotFound):
        await app.admin.rename_chat(root, 999, "x")


async def test_an_administrator_adds_and_removes_participants(app: Services) -> None:
    root = await register(app, "root", admin=True)
    alice, bob, carol = [await register(app, n) for n in ("alice", "bob", "carol")]
    chat = await app.chats.create_chat(alice, ChatDraft("c", [bob.id]))
    events = await heard(app, chat)
    grown = await app.admin.add_participants(root, chat.id, ChatMembers([carol.id], ["BOB"]))
    assert [u.id for u in grown.participants] == [alice.id, bob.id, carol.id]
    assert grown.admins == (alice.id,)
    assert events == [MemberAdded(chat.id, 1, as_seen(carol), as_seen(root))]
    with pytest.raises(ValidationFailed) as unknown:
        await app.admin.add_participants(root, chat.id, ChatMembers([999], ["nobody"]))
    assert set(unknown.value.fields) == {"participant_ids", "participant_usernames"}
    with pytest.raises(NotFound):
        await app.admin.add_participants(root, 999, ChatMembers([carol.id]))

    # The admin goes: the longest-standing participant left runs the chat.
    left = await app.admin.remove_participant(root, chat.id, alice.id)
    assert left is not None
    assert (left.admins, [u.id for u in left.participants]) == ((bob.id,), [bob.id, carol.id])
    assert events[1:] == [
        MemberRemoved(chat.id, 2, as_seen(alice), as_seen(root)),
        ChatUpdated(chat.id, 3, left),
    ]
    with pytest.raises(NotFound):  # not in it (any more)
        await app.admin.remove_participant(root, chat.id, alice.id)
    assert await app.admin.remove_participant(root, chat.id, bob.id) is not None
    assert await app.admin.remove_participant(root, chat.id, carol.id) is None  # the last
    assert events[-1] == ChatDeleted(chat.id, 6)  # after bob went and carol took over
    with pytest.raises(NotFound):
        await app.admin.get_chat(root, chat.id)
