"""The operator's use cases (admin flag, clearing sessions, import checks) and the command
line's prompt loops, on the in-memory adapters with scripted answers."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from adapters.clock import ManualClock
from chatcore import Services
from chatcore.accounts import USERNAME_TAKEN, Registration
from chatcore.errors import AuthenticationFailed, Conflict, NotFound
from chatcore.model import Archive, LastIds, StoredChat, StoredMessage, StoredUser, User, UserType
from chatcore.operator import ArchiveInvalid, check_archive
from chatcore.rules import PASSWORD_COMMON
from entrypoints.cli.accounts import ask_superuser
from entrypoints.cli.prompts import MISMATCH, Cancelled, ask_password, password_problems

PASSWORD = "Quartz-lantern-7781"


async def _user(app: Services, name: str, *, is_admin: bool = False) -> str:
    session = await app.accounts.register(Registration(name, PASSWORD, PASSWORD), is_admin=is_admin)
    return session.token


async def test_grant_and_revoke_the_admin_flag_by_username_any_case(app: Services) -> None:
    token = await _user(app, "Ann")
    granted = await app.operator.set_admin("ann", True)
    assert granted.is_admin
    assert (await app.accounts.authenticate(token)).is_admin  # at once, same token
    # The last admin may lose the flag: the command line can always grant it again.
    assert not (await app.operator.set_admin("ANN", False)).is_admin
    with pytest.raises(NotFound, match="no user named 'nobody'"):
        await app.operator.set_admin("nobody", True)


async def test_clear_sessions_removes_only_what_has_expired(
    app: Services, clock: ManualClock
) -> None:
    old = await _user(app, "old")
    clock.advance(app.deps.policy.token_ttl - timedelta(seconds=1))
    fresh = await _user(app, "fresh")
    with pytest.raises(AuthenticationFailed):  # one failed login: one attempt per key
        await app.accounts.login("fresh", "wrong password", address="10.0.0.1")
    assert (await app.operator.clear_sessions()).tokens == 0
    clock.advance(timedelta(seconds=1))  # old's token expires now; fresh's lives on
    cleared = await app.operator.clear_sessions()
    assert cleared.tokens == 1
    assert cleared.attempts == 0  # the failed login's window (an hour) has not ended
    with pytest.raises(AuthenticationFailed):
        await app.accounts.authenticate(old)
    assert (await app.accounts.authenticate(fresh)).username == "fresh"
    clock.advance(app.deps.policy.login_failure_window)
    assert (await app.operator.clear_sessions()).attempts == 3  # pair, account, address


async def test_import_refuses_a_store_with_anything_in_it(app: Services) -> None:
    await _user(app, "here")
    archive = await app.operator.export()
    with pytest.raises(Conflict, match="not empty"):
        await app.operator.import_archive(archive)


def _consistent() -> Archive:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    users = tuple(
        StoredUser(User(i, f"user{i}", "", UserType.STUDENT, at), "$hash") for i in (1, 2, 3)
    )
    chats = (StoredChat(1, "one", at, (1, 2)), StoredChat(2, "two", at, (3,)))
    messages = (
        StoredMessage(1, 1, 1, "hi", at, "c1"),
        StoredMessage(2, 1, 2, "hello", at, "c1"),
        StoredMessage(3, 2, 3, "alone", at),
    )
    return Archive(LastIds(3, 2, 3), users, chats, messages)


def _edit_user(index: int, **changes: object) -> Callable[[Archive], Archive]:
    def edit(archive: Archive) -> Archive:
        users = list(archive.users)
        users[index] = attrs.evolve(users[index], user=attrs.evolve(users[index].user, **changes))
        return attrs.evolve(archive, users=tuple(users))

    return edit


def _edit(kind: str, index: int, **changes: object) -> Callable[[Archive], Archive]:
    def edit(archive: Archive) -> Archive:
        items = list(getattr(archive, kind))
        items[index] = attrs.evolve(items[index], **changes)
        return attrs.evolve(archive, **{kind: tuple(items)})

    return edit


# Every way an archive can be inconsistent, one at a time, with what the check says.
BREAKS = {
    "repeated user id": (_edit_user(1, id=1), "user 1: id repeated"),
    "username taken by case": (_edit_user(1, username="USER1"), "username taken"),
    "id zero": (_edit_user(0, id=0), "ids are from 1"),
    "id too large": (_edit("chats", 0, id=2**63), "ids are from 1"),
    "lone surrogate": (_edit("messages", 0, content="\ud800"), "surrogate"),
    "naive time": (_edit("chats", 1, created_at=datetime(2026, 1, 1)), "timezone"),
    "missing participant": (_edit("chats", 1, participant_ids=(3, 9)), "chat 2: no user 9"),
    "missing chat": (_edit("messages", 2, chat_id=7), "message 3: no chat 7"),
    "sender outside the chat": (_edit("messages", 2, sender_id=1), "not in the chat"),
    "repeated client id": (_edit("messages", 1, sender_id=1), "client_id repeated"),
    "repeated message id": (_edit("messages", 2, id=1), "message 1: id repeated"),
}


@pytest.mark.parametrize("name", BREAKS)
async def test_an_inconsistent_archive_is_refused_with_the_reason_and_nothing_stored(
    app: Services, name: str
) -> None:
    assert check_archive(_consistent()) == []
    breaking, reason = BREAKS[name]
    broken = breaking(_consistent())
    with pytest.raises(ArchiveInvalid) as refused:
        await app.operator.import_archive(broken)
    assert any(reason in problem for problem in refused.value.problems), refused.value.problems
    assert (await app.deps.storage.counts()).users == 0
    counts = await app.operator.import_archive(_consistent())  # the store is still empty
    assert (counts.users, counts.chats, counts.messages) == (3, 2, 3)


# --- the prompt loops -------------------------------------------------------------------


class Script:
    """A Prompter that gives scripted answers and records what it was asked and told."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []
        self.said: list[str] = []

    def _next(self, label: str) -> str:
        self.asked.append(label)
        if not self.answers:
            raise Cancelled("Operation cancelled.")
        return self.answers.pop(0)

    def ask(self, label: str) -> str:
        return self._next(label)

    def secret(self, label: str) -> str:
        return self._next(label)

    def say(self, text: str) -> None:
        self.said.append(text)


def test_a_password_is_asked_again_on_a_mismatch_or_a_rule_until_right() -> None:
    script = Script(
        "Quartz-lantern-1", "Quartz-lantern-2", "password", "password", PASSWORD, PASSWORD
    )
    assert ask_password(script, "ann") == PASSWORD
    assert script.said == [MISMATCH, f"Error: {PASSWORD_COMMON}"]
    assert script.asked == ["Password: ", "Password (again): "] * 3


def test_password_tries_run_out() -> None:
    script = Script(*["short", "short"] * 3, PASSWORD, PASSWORD)
    with pytest.raises(Cancelled, match="after 3 attempts"):
        ask_password(script, "ann", tries=3)
    assert len(script.answers) == 2  # the fourth try was never asked


@pytest.mark.parametrize(
    "password", ["", "short", "12345678901", "password", "ann-the-user", "x" * 1025, "\ud800" * 9]
)
def test_every_password_the_rules_refuse_is_asked_again(password: str) -> None:
    assert password_problems(password, "ann-the-user")
    script = Script(password, password, PASSWORD, PASSWORD)
    assert ask_password(script, "ann-the-user") == PASSWORD
    assert script.said == [f"Error: {p}" for p in password_problems(password, "ann-the-user")]


async def test_createsuperuser_asks_each_field_again_until_it_is_valid(app: Services) -> None:
    await _user(app, "taken")
    args = argparse.Namespace(username=None, email=None, user_type="staff")
    script = Script(
        "", "bad name!", "TAKEN", "root",  # blank, invalid, taken (any case), then fine
        "not-an-email", "root@example.com",
        PASSWORD, "typo", "123456789", "123456789", PASSWORD, PASSWORD,
    )  # fmt: skip
    form = await ask_superuser(script, app, args)
    assert form == Registration("root", PASSWORD, PASSWORD, "root@example.com", "staff")
    assert script.asked.count("Username: ") == 4
    assert script.asked.count("Email address: ") == 2
    assert f"Error: {USERNAME_TAKEN}" in script.said
    assert MISMATCH in script.said
    assert len(script.said) == 3 + 1 + 2  # three usernames, one email, two passwords
    assert not script.answers


async def test_createsuperuser_takes_valid_flags_without_asking(app: Services) -> None:
    args = argparse.Namespace(username="root", email="", user_type="student")
    script = Script(PASSWORD, PASSWORD)
    form = await ask_superuser(script, app, args)
    assert (form.username, form.email) == ("root", "")
    assert script.asked == ["Password: ", "Password (again): "]
