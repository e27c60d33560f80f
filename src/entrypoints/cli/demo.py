"""demo: users of every type, a chat and messages, with credentials to log in as them.
The counterpart of the original service's ``manage.py test_chat``."""

from __future__ import annotations

import argparse
import secrets
from typing import Any

from chatcore.accounts import Registration
from chatcore.chats import ChatDraft
from chatcore.model import User, UserType
from chatcore.paging import Window
from chatcore.services import Services

from ..settings import Settings
from .common import OK, Formatter, add_database_option, error, settings_for, with_services

PER_TYPE = 3
LINES = (
    "Welcome to the demo chat!",
    "Hello! Glad to be here.",
    "Hi all, ask me anything.",
    "Messages are stored, paged and delivered in one order.",
)


def add_commands(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="create demo users, a chat and messages, and print how to log in",
        description=(
            f"Create {PER_TYPE} users of each type (owner, student, staff) sharing one new "
            "password, a chat of them all and a few messages; print the usernames, the "
            "password and the chat's history. Meant for a database of its own: it refuses "
            "one that already has users, unless --force."
        ),
        formatter_class=Formatter,
    )
    demo.add_argument(
        "--force", action="store_true", help="write into a database that already has users"
    )
    add_database_option(demo)
    demo.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings_for(args, settings)

    async def demo(services: Services) -> int:
        counts = await services.deps.storage.counts()
        if counts.users and not args.force:
            return error(
                f"{settings.database_label} already has {counts.users} users: give another "
                "--database, or --force to add the demo to it"
            )
        await make_demo(services)
        return OK

    return with_services(settings, demo)


async def make_demo(services: Services) -> list[User]:
    suffix = secrets.token_hex(3)  # so that --force (or a second run) never clashes
    password = f"demo-{secrets.token_urlsafe(9)}"
    users = []
    for user_type in UserType:
        for number in range(1, PER_TYPE + 1):
            name = f"demo_{user_type.value}{number}_{suffix}"
            form = Registration(name, password, password, user_type=user_type.value)
            session = await services.accounts.register(form)
            await services.accounts.logout(session.token)  # nobody holds this one
            users.append(session.user)
    owner = users[0]
    others = [user.id for user in users[1:]]
    chat = await services.chats.create_chat(owner, ChatDraft(f"Demo chat {suffix}", others))
    senders = [users[0], users[PER_TYPE], users[2 * PER_TYPE], users[0]]
    for sender, text in zip(senders, LINES, strict=True):
        await services.chats.send_message(sender, chat.id, text)

    print(f"Demo users (password for each: {password}):")
    for user in users:
        print(f"  {user.username} ({user.user_type.value})")
    print(f"Chat {chat.id} {chat.name!r}, with all of them:")
    page = await services.chats.chat_messages(owner, chat.id, Window())
    for message in page.items:
        stamp = message.timestamp.strftime("%Y-%m-%d %H:%M:%S")
        sender = message.sender
        print(f"  [{stamp}] {sender.username} ({sender.user_type.value}): {message.content}")
    counts = await services.deps.storage.counts()
    print(f"Users: {counts.users}  Chats: {counts.chats}  Messages: {counts.messages}")
    return users
