"""A user changing their own account, and an administrator resetting a password, over
the in-memory adapters wired by the real bootstrap()."""

from __future__ import annotations

import pytest

from chatcore import (
    AccountChange,
    AccountEdit,
    AuthenticationFailed,
    NotFound,
    Registration,
    Services,
    User,
    ValidationFailed,
)
from chatcore.model import Revocation

PASSWORD = "correct horse battery"
NEW_PASSWORD = "another stable phrase"


async def register(app: Services, name: str, *, admin: bool = False) -> tuple[User, str]:
    session = await app.accounts.register(Registration(name, PASSWORD, PASSWORD), is_admin=admin)
    return session.user, session.token


def heard_revocations(app: Services) -> list[Revocation]:
    heard: list[Revocation] = []
    app.deps.notifier.on_revoke(heard.append)
    return heard


async def test_a_user_changes_their_email(app: Services) -> None:
    ann, token = await register(app, "ann")
    changed = await app.accounts.update_me(ann, token, AccountChange(email=" ann@example.org "))
    assert changed.email == "ann@example.org"
    assert (await app.accounts.authenticate(token)).email == "ann@example.org"
    cleared = await app.accounts.update_me(ann, token, AccountChange(email=""))
    assert cleared.email == ""


async def test_an_empty_change_changes_nothing(app: Services) -> None:
    ann, token = await register(app, "ann")
    assert await app.accounts.update_me(ann, token, AccountChange()) == ann


async def test_a_bad_email_is_refused_on_its_field(app: Services) -> None:
    ann, token = await register(app, "ann")
    with pytest.raises(ValidationFailed) as caught:
        await app.accounts.update_me(ann, token, AccountChange(email="not an email"))
    assert set(caught.value.fields) == {"email"}


async def test_a_password_change_keeps_this_token_and_revokes_every_other(app: Services) -> None:
    ann, token = await register(app, "ann")
    other = (await app.accounts.login("ann", PASSWORD)).token
    ben, ben_token = await register(app, "ben")
    heard = heard_revocations(app)

    change = AccountChange(password=NEW_PASSWORD, current_password=PASSWORD)
    await app.accounts.update_me(ann, token, change)

    assert await app.accounts.authenticate(token) == ann
    with pytest.raises(AuthenticationFailed):
        await app.accounts.authenticate(other)
    assert await app.accounts.authenticate(ben_token) == ben  # nobody else's
    with pytest.raises(AuthenticationFailed):
        await app.accounts.login("ann", PASSWORD)
    await app.accounts.login("ann", NEW_PASSWORD)
    (revocation,) = heard
    digest = app.deps.tokens.digest
    assert revocation.covers(ann.id, digest(other))
    assert not revocation.covers(ann.id, digest(token))
    assert not revocation.covers(ben.id, digest(ben_token))


async def test_a_wrong_current_password_changes_nothing(app: Services) -> None:
    ann, token = await register(app, "ann")
    other = (await app.accounts.login("ann", PASSWORD)).token
    change = AccountChange(password=NEW_PASSWORD, current_password="not my password")
    with pytest.raises(ValidationFailed) as caught:
        await app.accounts.update_me(ann, token, change)
    assert set(caught.value.fields) == {"current_password"}
    assert await app.accounts.authenticate(other) == ann
    await app.accounts.login("ann", PASSWORD)


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        (AccountChange(password=NEW_PASSWORD), {"current_password"}),
        (AccountChange(current_password=PASSWORD), {"password"}),
        (AccountChange(password="short", current_password=PASSWORD), {"password"}),
        (AccountChange(password="12345678901", current_password=PASSWORD), {"password"}),
        (AccountChange(password="password123", current_password=PASSWORD), {"password"}),
        (AccountChange(password="annabelle1", current_password=PASSWORD), {"password"}),
        (AccountChange(email="x@", password="short"), {"email", "password", "current_password"}),
    ],
)
async def test_a_password_change_follows_the_registration_rules(
    app: Services, change: AccountChange, fields: set[str]
) -> None:
    ann, token = await register(app, "annabelle")
    with pytest.raises(ValidationFailed) as caught:
        await app.accounts.update_me(ann, token, change)
    assert set(caught.value.fields) == fields
    await app.accounts.login("annabelle", PASSWORD)  # nothing changed


async def test_an_admin_sets_a_password_and_every_credential_of_the_user_stops(
    app: Services,
) -> None:
    root, _ = await register(app, "root", admin=True)
    ann, token = await register(app, "ann")
    heard = heard_revocations(app)
    edited = await app.admin.edit_user(root, ann.id, AccountEdit(password=NEW_PASSWORD))
    assert edited == ann
    with pytest.raises(AuthenticationFailed):
        await app.accounts.authenticate(token)
    await app.accounts.login("ann", NEW_PASSWORD)
    assert heard == [Revocation(ann.id)]


async def test_an_admin_password_follows_the_rules_and_changes_nothing_when_broken(
    app: Services,
) -> None:
    root, _ = await register(app, "root", admin=True)
    ann, token = await register(app, "annabelle")
    for bad in ("short", "123456789", "annabelle1"):
        with pytest.raises(ValidationFailed) as caught:
            await app.admin.edit_user(root, ann.id, AccountEdit(password=bad, is_admin=True))
        assert set(caught.value.fields) == {"password"}
    assert await app.accounts.authenticate(token) == ann  # not an admin, still logged in


async def test_an_admin_password_for_nobody_is_not_found(app: Services) -> None:
    root, _ = await register(app, "root", admin=True)
    with pytest.raises(NotFound):
        await app.admin.edit_user(root, 999, AccountEdit(password=NEW_PASSWORD))


async def test_set_password_is_what_the_command_line_calls(app: Services) -> None:
    ann, token = await register(app, "ann")
    await app.accounts.set_password(ann, NEW_PASSWORD)
    with pytest.raises(AuthenticationFailed):
        await app.accounts.authenticate(token)
    await app.accounts.login("ann", NEW_PASSWORD)
