"""Administration and login throttling, over the in-memory adapters."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.clock import ManualClock
from adapters.hashing import Argon2Hasher
from chatcore import (
    AccountEdit,
    AuthenticationFailed,
    ChatDraft,
    NotFound,
    Registration,
    Services,
    Throttled,
    User,
    UserType,
    ValidationFailed,
    Window,
)
from chatcore.deps import Policy
from entrypoints.bootstrap import bootstrap

PASSWORD = "correct horse battery"


async def register(app: Services, name: str, *, admin: bool = False) -> User:
    form = Registration(name, PASSWORD, PASSWORD, user_type="owner")
    return (await app.accounts.register(form, is_admin=admin)).user


async def test_owners_are_not_admins_and_non_admins_find_nothing(app: Services) -> None:
    owner = await register(app, "olga")
    assert owner.user_type is UserType.OWNER
    assert not owner.is_admin
    calls = [
        app.admin.list_users(owner),
        app.admin.edit_user(owner, owner.id, AccountEdit(user_type="staff")),
        app.admin.delete_user(owner, owner.id),
        app.admin.list_chats(owner),
        app.admin.delete_chat(owner, 1),
        app.admin.list_messages(owner, Window()),
        app.admin.delete_message(owner, 1),
    ]
    for call in calls:
        with pytest.raises(NotFound):
            await call


async def test_admins_edit_accounts_and_deactivation_revokes_tokens(app: Services) -> None:
    root = await register(app, "root", admin=True)
    bob = await register(app, "bob")
    token = (await app.accounts.login("bob", PASSWORD)).token
    staff = await app.admin.edit_user(root, bob.id, AccountEdit(user_type="staff"))
    assert staff.user_type is UserType.STAFF
    await app.admin.edit_user(root, bob.id, AccountEdit(is_active=False))
    with pytest.raises(AuthenticationFailed):
        await app.accounts.authenticate(token)
    with pytest.raises(AuthenticationFailed):
        await app.accounts.login("bob", PASSWORD)
    listed = await app.admin.list_users(root, search="bob")
    assert [(u.username, u.is_active) for u in listed.items] == [("bob", False)]
    with pytest.raises(ValidationFailed):
        await app.admin.edit_user(root, bob.id, AccountEdit(user_type="wizard"))
    with pytest.raises(NotFound):
        await app.admin.edit_user(root, 999, AccountEdit(is_admin=True))


async def test_admins_cannot_lock_themselves_out(app: Services) -> None:
    root = await register(app, "root", admin=True)
    for edit in (AccountEdit(is_active=False), AccountEdit(is_admin=False)):
        with pytest.raises(ValidationFailed):
            await app.admin.edit_user(root, root.id, edit)
    with pytest.raises(ValidationFailed):
        await app.admin.delete_user(root, root.id)


async def test_deleting_a_user_removes_their_messages_and_memberships(app: Services) -> None:
    root = await register(app, "root", admin=True)
    alice, bob = await register(app, "alice"), await register(app, "bob")
    chat = await app.chats.create_chat(alice, ChatDraft("c", [bob.id]))
    kept, _ = await app.chats.send_message(alice, chat.id, "stays")
    await app.chats.send_message(bob, chat.id, "goes", "k")
    await app.admin.delete_user(root, bob.id)
    after = await app.chats.get_chat(alice, chat.id)
    assert [u.username for u in after.participants] == ["alice"]
    assert after.last_message == kept
    assert list((await app.chats.chat_messages(alice, chat.id, Window())).items) == [kept]
    with pytest.raises(NotFound):
        await app.admin.delete_user(root, bob.id)


async def test_admins_list_and_delete_chats_and_messages(app: Services) -> None:
    root = await register(app, "root", admin=True)
    alice = await register(app, "alice")
    one = await app.chats.create_chat(alice, ChatDraft("one"))
    two = await app.chats.create_chat(alice, ChatDraft("two"))
    first, _ = await app.chats.send_message(alice, one.id, "first")
    second, _ = await app.chats.send_message(alice, one.id, "second")
    other, _ = await app.chats.send_message(alice, two.id, "other")
    page = await app.admin.list_chats(root, limit=1)
    assert [c.name for c in page.items] == ["one"]
    assert page.has_newer
    assert list((await app.admin.list_messages(root, Window())).items) == [first, second, other]
    only = await app.admin.list_messages(root, Window(), chat_id=two.id)
    assert list(only.items) == [other]
    await app.admin.delete_message(root, second.id)
    assert (await app.chats.get_chat(alice, one.id)).last_message == first
    await app.admin.delete_chat(root, two.id)
    with pytest.raises(NotFound):
        await app.chats.get_chat(alice, two.id)
    with pytest.raises(NotFound):
        await app.chats.get_message(alice, other.id)


@pytest.fixture
def strict(hasher: Argon2Hasher, clock: ManualClock) -> Services:
    policy = Policy(login_failures_per_account=3, login_failures_per_address=5)
    return bootstrap(hasher=hasher, clock=clock, policy=policy)


async def test_failed_logins_per_account_are_throttled(
    strict: Services, clock: ManualClock
) -> None:
    await register(strict, "alice")
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            await strict.accounts.login("ALICE", "wrong password")
    with pytest.raises(Throttled) as caught:
        await strict.accounts.login("alice", PASSWORD)  # even the right password waits
    assert caught.value.retry_after == pytest.approx(3600)
    clock.advance(timedelta(minutes=30))
    with pytest.raises(Throttled) as later:
        await strict.accounts.login("alice", PASSWORD)
    assert later.value.retry_after == pytest.approx(1800)
    clock.advance(timedelta(minutes=30))
    assert (await strict.accounts.login("alice", PASSWORD)).user.username == "alice"


async def test_a_success_resets_the_account_count(strict: Services) -> None:
    await register(strict, "alice")
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            await strict.accounts.login("alice", "wrong password")
    await strict.accounts.login("alice", PASSWORD)
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            await strict.accounts.login("alice", "wrong password")
    await strict.accounts.login("alice", PASSWORD)


async def test_failed_logins_per_address_are_throttled_across_names(strict: Services) -> None:
    await register(strict, "alice")
    for name in ["a", "b", "c", "d", "e"]:
        with pytest.raises(AuthenticationFailed):
            await strict.accounts.login(name, "wrong password", address="10.0.0.9")
    with pytest.raises(Throttled):
        await strict.accounts.login("alice", PASSWORD, address="10.0.0.9")
    assert (await strict.accounts.login("alice", PASSWORD, address="10.0.0.10")).user
