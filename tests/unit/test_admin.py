"""Administration, over the in-memory adapters (login throttling: test_throttle.py)."""

from __future__ import annotations

import pytest

from chatcore import (
    AccountEdit,
    AuthenticationFailed,
    ChatDraft,
    NotFound,
    Registration,
    Services,
    User,
    UserType,
    ValidationFailed,
    Window,
)

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
