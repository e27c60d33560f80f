"""The ``chatcore`` command: serve, migrate, createsuperuser, demo."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import secrets
import sys
from collections.abc import Awaitable, Callable, Sequence

from adapters.sqlite import SchemaOutOfDate, SchemaTooNew
from chatcore.accounts import Registration
from chatcore.chats import ChatDraft
from chatcore.errors import ValidationFailed
from chatcore.paging import Window
from chatcore.services import Services

from .bootstrap import adapters_from
from .settings import Settings, SettingsError

PASSWORD_ENV = "CHATCORE_SUPERUSER_PASSWORD"  # noqa: S105 - a variable name


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chatcore", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--reload", action="store_true", help="restart on code changes")
    serve.add_argument("--log-level", default="info")

    commands.add_parser("migrate", help="create or upgrade the database schema")

    admin = commands.add_parser("createsuperuser", help="create an administrator account")
    admin.add_argument("--username")
    admin.add_argument("--email", default="")
    admin.add_argument(
        "--no-input", action="store_true", help=f"take everything from flags and ${PASSWORD_ENV}"
    )

    commands.add_parser("demo", help="create three users, a chat and messages; print them")

    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        parser.error(str(exc))
    if args.command == "serve":
        return _serve(args)
    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "createsuperuser":
        form = _superuser_form(args)
        if form is None:
            return 2
        return asyncio.run(_with_services(settings, lambda s: _createsuperuser(s, form)))
    return asyncio.run(_with_services(settings, _demo))


def _serve(args: argparse.Namespace) -> int:
    from .server import serve

    if args.workers > 1:
        print(
            "warning: the notifier is in-process: with several workers, a WebSocket hears "
            "only the messages stored through its own worker (REST and storage are shared).",
            file=sys.stderr,
        )

    serve(args.host, args.port, workers=args.workers, reload=args.reload, log_level=args.log_level)
    return 0


def _migrate(settings: Settings) -> int:
    migrate = adapters_from(settings).migrate
    if migrate is None:
        print(f"{settings.storage} storage keeps nothing on disk: nothing to migrate")
        return 0
    try:
        applied = migrate()
    except SchemaTooNew as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{settings.database}: applied {applied or 'nothing, up to date'}")
    return 0


async def _with_services(settings: Settings, job: Callable[[Services], Awaitable[int]]) -> int:
    if settings.storage == "memory":
        print("note: memory storage: what this command makes is gone when it ends", file=sys.stderr)
    try:
        async with adapters_from(settings) as adapters:
            return await job(adapters.services(settings.policy()))
    except (SchemaOutOfDate, SchemaTooNew) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _superuser_form(args: argparse.Namespace) -> Registration | None:
    """The new administrator's details, from flags and the environment or asked for."""
    username, email = args.username, args.email
    if args.no_input:
        password = os.environ.get(PASSWORD_ENV, "")
        if not username or not password:
            print(f"--no-input needs --username and ${PASSWORD_ENV}", file=sys.stderr)
            return None
        confirm = password
    else:
        username = username or input("Username: ")
        email = email or input("Email (optional): ")
        password = getpass.getpass("Password: ")
        confirm = getpass.getpass("Password (again): ")
    return Registration(username, password, confirm, email=email or None)


async def _createsuperuser(services: Services, form: Registration) -> int:
    try:
        session = await services.accounts.register(form, is_admin=True)
    except ValidationFailed as exc:
        for field, messages in exc.fields.items():
            print(f"{field}: {' '.join(messages)}", file=sys.stderr)
        return 1
    await services.accounts.logout(session.token)  # the CLI needs no token
    print(f"Superuser {session.user.username!r} created (id {session.user.id}).")
    return 0


async def _demo(services: Services) -> int:
    """The counterpart of the original service's ``manage.py test_chat``."""
    suffix = secrets.token_hex(3)
    password = secrets.token_urlsafe(12)
    users = []
    for user_type in ("owner", "student", "staff"):
        form = Registration(f"demo_{user_type}_{suffix}", password, password, user_type=user_type)
        users.append((await services.accounts.register(form)).user)
    owner, student, staff = users
    chat = await services.chats.create_chat(
        owner, ChatDraft(f"Demo chat {suffix}", [student.id, staff.id])
    )
    lines = [
        (owner, "Welcome to the demo chat!"),
        (student, "Hello! Glad to be here."),
        (staff, "Hi all, ask me anything."),
        (owner, "Messages are stored, paged and delivered in one order."),
    ]
    for sender, text in lines:
        await services.chats.send_message(sender, chat.id, text)
    print(f"Chat {chat.id} {chat.name!r}: {', '.join(u.username for u in chat.participants)}")
    page = await services.chats.chat_messages(owner, chat.id, Window())
    for message in page.items:
        stamp = message.timestamp.strftime("%Y-%m-%d %H:%M:%S")
        sender = message.sender
        print(f"  [{stamp}] {sender.username} ({sender.user_type.value}): {message.content}")
    counts = await services.deps.storage.counts()
    print(f"Users: {counts.users}  Chats: {counts.chats}  Messages: {counts.messages}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
