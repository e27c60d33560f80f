"""Account commands: createsuperuser, changepassword, admin grant / revoke."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from chatcore.accounts import USERNAME_TAKEN, Registration
from chatcore.errors import NotFound, ValidationFailed
from chatcore.model import UserType
from chatcore.rules import Errors, check_email, check_username
from chatcore.services import Services

from ..settings import Settings
from .common import (
    FAILED,
    OK,
    USAGE,
    Formatter,
    add_database_option,
    error,
    print_fields,
    settings_for,
    with_services,
)
from .prompts import Cancelled, Prompter, Terminal, ask_password, ask_until_valid, is_interactive

SUPERUSER_PASSWORD_ENV = "CHATCORE_SUPERUSER_PASSWORD"  # noqa: S105 - a variable name
NEW_PASSWORD_ENV = "CHATCORE_NEW_PASSWORD"  # noqa: S105 - a variable name
PASSWORD_TRIES = 3  # as Django's changepassword
NOT_A_TERMINAL = "stdin is not a terminal: give --no-input and the flags (see --help)"

REVOKES = (
    "Every stored token and browser session of the user is revoked: they log in again "
    "with the new password. A running server closes their open WebSockets at its next "
    "credential check (within $CHATCORE_WS_RECHECK_SECONDS, 30 s by default)."
)


def add_commands(commands: Any) -> None:
    admin = commands.add_parser(
        "createsuperuser",
        help="create an account with the admin flag",
        description=(
            "Create an account with the admin flag. Asks for each field not given, and "
            "again on a bad answer (a taken or invalid username, an invalid email, a "
            "password the rules refuse or mistyped the second time). With --no-input "
            f"the password comes from ${SUPERUSER_PASSWORD_ENV}."
        ),
        formatter_class=Formatter,
    )
    admin.add_argument("--username", help="the new account's username (asked if not given)")
    admin.add_argument("--email", help="its email (asked if not given; may be blank)")
    admin.add_argument(
        "--user-type",
        choices=[t.value for t in UserType],
        default=UserType.STUDENT.value,
        help="its user type, as registration's (the admin flag does not depend on it)",
    )
    admin.add_argument(
        "--no-input",
        action="store_true",
        help=f"ask nothing: --username is needed, the password is ${SUPERUSER_PASSWORD_ENV}",
    )
    add_database_option(admin)
    admin.set_defaults(run=createsuperuser)

    change = commands.add_parser(
        "changepassword",
        help="set a user's password",
        description=(
            "Set a user's password: asked twice, again when the two differ or the "
            f"password rules refuse it, {PASSWORD_TRIES} tries. {REVOKES}"
        ),
        formatter_class=Formatter,
    )
    change.add_argument("username", metavar="USER", help="whose password to set")
    change.add_argument(
        "--no-input",
        action="store_true",
        help=f"ask nothing: the new password is ${NEW_PASSWORD_ENV}",
    )
    add_database_option(change)
    change.set_defaults(run=changepassword)

    flag = commands.add_parser(
        "admin",
        help="grant or revoke the admin flag of an existing user",
        description=(
            "Grant or revoke the admin flag of an existing user; it applies to their "
            "next request. Revoking the last admin's flag is allowed: this command can "
            "grant it again."
        ),
        formatter_class=Formatter,
    )
    flag.add_argument("action", choices=["grant", "revoke"], help="what to do with the flag")
    flag.add_argument("username", metavar="USER", help="whose flag")
    add_database_option(flag)
    flag.set_defaults(run=set_admin)


# --- createsuperuser ------------------------------------------------------------------


def createsuperuser(args: argparse.Namespace, settings: Settings) -> int:
    if args.no_input:
        password = os.environ.get(SUPERUSER_PASSWORD_ENV, "")
        if not args.username or not password:
            print(f"--no-input needs --username and ${SUPERUSER_PASSWORD_ENV}", file=sys.stderr)
            return USAGE
        form = Registration(args.username, password, password, args.email, args.user_type)

        async def made(services: Services) -> int:
            return await _register(services, form)

        return with_services(settings_for(args, settings), made)
    if not is_interactive():
        return error(NOT_A_TERMINAL)

    async def asked(services: Services) -> int:
        try:
            form = await ask_superuser(Terminal(), services, args)
        except Cancelled as exc:
            return error(str(exc))
        return await _register(services, form)

    return with_services(settings_for(args, settings), asked)


async def ask_superuser(
    prompter: Prompter, services: Services, args: argparse.Namespace
) -> Registration:
    """Each field asked (unless given as a flag) until it passes its rules; the ones
    registration applies, so that registering them then succeeds."""

    async def username_problems(name: str) -> list[str]:
        errors = Errors()
        check_username(name, errors)
        problems = errors.fields.get("username", [])
        if not problems:
            try:
                await services.operator.user_named(name)
            except NotFound:
                return []
            return [USERNAME_TAKEN]
        return problems

    async def email_problems(email: str) -> list[str]:
        errors = Errors()
        check_email(email, errors)
        return errors.fields.get("email", [])

    username = await ask_until_valid(prompter, "Username: ", username_problems, args.username)
    email = await ask_until_valid(prompter, "Email address: ", email_problems, args.email)
    password = ask_password(prompter, username)
    return Registration(username, password, password, email, args.user_type)


async def _register(services: Services, form: Registration) -> int:
    try:
        session = await services.accounts.register(form, is_admin=True)
    except ValidationFailed as exc:
        print_fields(exc.fields)
        return FAILED
    await services.accounts.logout(session.token)  # the command line needs no token
    print(f"Superuser {session.user.username!r} created (id {session.user.id}).")
    return OK


# --- changepassword -------------------------------------------------------------------


def changepassword(args: argparse.Namespace, settings: Settings) -> int:
    if args.no_input:
        given = os.environ.get(NEW_PASSWORD_ENV, "")
        if not given:
            print(f"--no-input needs ${NEW_PASSWORD_ENV}", file=sys.stderr)
            return USAGE
    elif not is_interactive():
        return error(NOT_A_TERMINAL)

    async def change(services: Services) -> int:
        try:
            user = await services.operator.user_named(args.username)
        except NotFound as exc:
            return error(exc.message)
        try:
            if args.no_input:
                password = given
            else:
                print(f"Changing password for user {user.username!r}", file=sys.stderr)
                password = ask_password(Terminal(), user.username, PASSWORD_TRIES)
            await services.accounts.set_password(user, password)
        except Cancelled as exc:
            return error(str(exc))
        except ValidationFailed as exc:
            print_fields(exc.fields)
            return FAILED
        except NotFound:  # deleted while we asked
            return error(f"There is no user named {args.username!r}.")
        print(f"Password changed for user {user.username!r}; their sessions are revoked.")
        return OK

    return with_services(settings_for(args, settings), change)


# --- admin grant / revoke -------------------------------------------------------------


def set_admin(args: argparse.Namespace, settings: Settings) -> int:
    granting = args.action == "grant"

    async def apply(services: Services) -> int:
        try:
            user = await services.operator.set_admin(args.username, granting)
        except NotFound as exc:
            return error(exc.message)
        state = "now has" if granting else "no longer has"
        print(f"User {user.username!r} (id {user.id}) {state} the admin flag.")
        return OK

    return with_services(settings_for(args, settings), apply)
