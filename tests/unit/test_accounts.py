"""Account use cases over the in-memory adapters, wired by the real bootstrap()."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from adapters.clock import ManualClock
from adapters.hashing import FAST_INSECURE, Argon2Hasher
from chatcore import AuthenticationFailed, Registration, Services, UserType, ValidationFailed
from chatcore.deps import Policy
from entrypoints.bootstrap import bootstrap

PASSWORD = "correct horse battery"


def signup(username: str, password: str = PASSWORD, **extra: str) -> Registration:
    return Registration(username, password, extra.pop("password_confirm", password), **extra)


async def test_register_returns_the_user_and_a_working_token(app: Services) -> None:
    session = await app.accounts.register(signup("alice", email="alice@example.com"))
    assert session.user.username == "alice"
    assert session.user.email == "alice@example.com"
    assert session.user.user_type is UserType.STUDENT
    assert not session.user.is_admin
    assert await app.accounts.authenticate(session.token) == session.user


async def test_register_keeps_the_chosen_user_type(app: Services) -> None:
    session = await app.accounts.register(signup("olga", user_type="owner"))
    assert session.user.user_type is UserType.OWNER


async def test_register_reports_every_broken_field_at_once(app: Services) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await app.accounts.register(
            Registration("bad name", "1234", "4321", email="nope", user_type="admin")
        )
    assert set(caught.value.fields) == {
        "username",
        "email",
        "password",
        "password_confirm",
        "user_type",
    }


async def test_usernames_are_unique_ignoring_case(app: Services) -> None:
    await app.accounts.register(signup("Bob"))
    with pytest.raises(ValidationFailed) as caught:
        await app.accounts.register(signup("bOB"))
    assert caught.value.fields == {"username": ["A user with that username already exists."]}


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("zq8#k", "This password is too short. It must contain at least 8 characters."),
        ("12345678901", "This password is entirely numeric."),
        ("password123", "This password is too common."),
        ("alice-smith", "The password is too similar to the username."),
        ("x" * 1025, "This password is too long. It must contain at most 1024 characters."),
    ],
)
async def test_password_policy(app: Services, password: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await app.accounts.register(signup("alice-smith", password))
    assert caught.value.fields == {"password": [message]}


async def test_passwords_are_stored_only_as_argon2id_hashes(app: Services) -> None:
    await app.accounts.register(signup("alice"))
    found = await app.deps.storage.users.password_hash("alice")
    assert found is not None
    assert found[1].startswith("$argon2id$")
    assert PASSWORD not in found[1]


async def test_login_ignores_username_case_and_issues_a_new_token_each_time(
    app: Services,
) -> None:
    registered = await app.accounts.register(signup("alice"))
    first = await app.accounts.login("ALICE", PASSWORD)
    second = await app.accounts.login("alice", PASSWORD)
    assert len({registered.token, first.token, second.token}) == 3
    assert first.user == registered.user


@pytest.mark.parametrize(
    ("username", "password"), [("alice", "wrong password"), ("nobody", PASSWORD)]
)
async def test_bad_credentials_fail_alike(app: Services, username: str, password: str) -> None:
    await app.accounts.register(signup("alice"))
    with pytest.raises(AuthenticationFailed) as caught:
        await app.accounts.login(username, password)
    assert caught.value.message == "Invalid credentials."


async def test_logout_revokes_only_that_token(app: Services) -> None:
    await app.accounts.register(signup("alice"))
    phone = await app.accounts.login("alice", PASSWORD)
    laptop = await app.accounts.login("alice", PASSWORD)
    await app.accounts.logout(phone.token)
    with pytest.raises(AuthenticationFailed):
        await app.accounts.authenticate(phone.token)
    assert (await app.accounts.authenticate(laptop.token)).username == "alice"


async def test_tokens_are_stored_as_digests_only(app: Services) -> None:
    session = await app.accounts.register(signup("alice"))
    assert await app.deps.storage.tokens.get(session.token) is None
    digest = app.deps.tokens.digest(session.token)
    record = await app.deps.storage.tokens.get(digest)
    assert record is not None
    assert record.user_id == session.user.id


async def test_tokens_expire_after_the_policy_ttl(hasher: Argon2Hasher) -> None:
    clock = ManualClock()
    app = bootstrap(hasher=hasher, clock=clock, policy=Policy(token_ttl=timedelta(hours=1)))
    session = await app.accounts.register(signup("alice"))
    clock.advance(timedelta(minutes=59))
    await app.accounts.authenticate(session.token)
    clock.advance(timedelta(minutes=1))
    with pytest.raises(AuthenticationFailed, match="expired"):
        await app.accounts.authenticate(session.token)


async def test_unknown_token_fails(app: Services) -> None:
    with pytest.raises(AuthenticationFailed):
        await app.accounts.authenticate("not-a-token")


async def test_login_rehashes_when_the_parameters_changed(clock: ManualClock) -> None:
    old = Argon2Hasher(FAST_INSECURE)
    new = Argon2Hasher(dataclasses.replace(FAST_INSECURE, time_cost=2))
    try:
        before = bootstrap(hasher=old, clock=clock)
        await before.accounts.register(signup("alice"))
        after = bootstrap(storage=before.deps.storage, hasher=new, clock=clock)
        stored = await after.deps.storage.users.password_hash("alice")
        assert stored is not None
        assert new.needs_rehash(stored[1])
        await after.accounts.login("alice", PASSWORD)
        rehashed = await after.deps.storage.users.password_hash("alice")
        assert rehashed is not None
        assert not new.needs_rehash(rehashed[1])
        assert (await after.accounts.login("alice", PASSWORD)).user.username == "alice"
    finally:
        old.close()
        new.close()


async def test_list_users_searches_ignoring_case_and_pages_by_id(app: Services) -> None:
    for name in ["ann", "Joanna", "bob", "hannah", "zed"]:
        await app.accounts.register(signup(name))
    page = await app.accounts.list_users(search="AN", limit=2)
    assert [u.username for u in page.items] == ["ann", "Joanna"]
    assert (page.has_older, page.has_newer) == (False, True)
    rest = await app.accounts.list_users(search="an", after=page.items[-1].id, limit=2)
    assert [u.username for u in rest.items] == ["hannah"]
    assert (rest.has_older, rest.has_newer) == (True, False)


async def test_list_users_validates_its_window(app: Services) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await app.accounts.list_users(search="x" * 151, after=0, limit=0)
    assert set(caught.value.fields) == {"search", "after", "limit"}
