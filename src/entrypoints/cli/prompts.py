"""Asking a person at a terminal, again on a bad answer, as Django's ``manage.py`` does.

The loops take a :class:`Prompter`, so that tests can script the answers; the real
one reads the terminal (``getpass`` does not echo, and reads /dev/tty)."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Protocol

from chatcore.rules import Errors, check_password

Check = Callable[[str], Awaitable[list[str]]]
"""The problems with an answer; none when it will do."""

MISMATCH = "Error: Your passwords didn't match."


class Cancelled(Exception):
    """The person ended the input (Ctrl-D, Ctrl-C) or ran out of tries."""


class Prompter(Protocol):
    def ask(self, label: str) -> str: ...

    def secret(self, label: str) -> str:
        """An answer that is not echoed."""
        ...

    def say(self, text: str) -> None: ...


class Terminal:
    def ask(self, label: str) -> str:
        return _read(lambda: input(label))

    def secret(self, label: str) -> str:
        return _read(lambda: getpass.getpass(label))

    def say(self, text: str) -> None:
        print(text, file=sys.stderr)


def _read(read: Callable[[], str]) -> str:
    try:
        return read()
    except (EOFError, KeyboardInterrupt):
        raise Cancelled("Operation cancelled.") from None


def is_interactive() -> bool:
    return sys.stdin.isatty()


async def ask_until_valid(prompter: Prompter, label: str, check: Check, first: str | None) -> str:
    """Ask until ``check`` finds nothing wrong; ``first``, when given (a flag), is taken
    as the first answer."""
    answer = first
    while True:
        if answer is None:
            answer = prompter.ask(label)
        problems = await check(answer)
        if not problems:
            return answer
        for problem in problems:
            prompter.say(f"Error: {problem}")
        answer = None


def password_problems(password: str, username: str) -> list[str]:
    """What the password rules (the ones registration applies) say of it."""
    errors = Errors()
    check_password(password, password, username, errors)
    return errors.fields.get("password", [])


def ask_password(prompter: Prompter, username: str, tries: int | None = None) -> str:
    """A new password, typed twice, that passes the password rules; asked again on a
    mismatch or a broken rule, ``tries`` times at most (None: until it is right)."""
    attempt = 0
    while tries is None or attempt < tries:
        attempt += 1
        password = prompter.secret("Password: ")
        if prompter.secret("Password (again): ") != password:
            prompter.say(MISMATCH)
            continue
        problems = password_problems(password, username)
        if not problems:
            return password
        for problem in problems:
            prompter.say(f"Error: {problem}")
    raise Cancelled(f"Aborting password change for user {username!r} after {tries} attempts.")
