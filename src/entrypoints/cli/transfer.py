"""export / import: users, chats and messages as JSON lines.

The first line is a header (the format, its version, and the last id each table handed
out, so that ids are never reused after an import); then one object per line, each with
a ``type``: every ``user`` (with the password hash, so everyone keeps their password),
every ``chat`` (with its participants' ids), every ``message``, each kind in id order.
Tokens, sessions and throttle records are not exported: everyone logs in again."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from chatcore.errors import Conflict
from chatcore.model import (
    Archive,
    LastIds,
    StoredChat,
    StoredMessage,
    StoredUser,
    User,
    UserType,
)
from chatcore.operator import ArchiveInvalid
from chatcore.services import Services

from ..settings import Settings
from .common import FAILED, OK, Formatter, add_database_option, error, settings_for, with_services

FORMAT = "chatcore-export"
VERSION = 1
SHOWN_PROBLEMS = 20


class Malformed(ValueError):
    """A line that is not a record of this format; the message names the line."""


def add_commands(commands: Any) -> None:
    export = commands.add_parser(
        "export",
        help="write users, chats and messages as JSON lines",
        description=(
            "Write every user (with their password hash), chat and message as JSON "
            "lines, ids kept, read in one consistent snapshot (safe while the server "
            "runs). Tokens and sessions are not exported."
        ),
        formatter_class=Formatter,
    )
    export.add_argument(
        "file", metavar="FILE", nargs="?", default="-", help="where to write; - is stdout"
    )
    export.add_argument("--force", action="store_true", help="replace FILE if it exists")
    add_database_option(export)
    export.set_defaults(run=run_export)

    load = commands.add_parser(
        "import",
        help="load an export into an empty database",
        description=(
            "Load what `chatcore export` wrote into a database that holds no user, chat "
            "or message (a fresh file is created and migrated), all of it in one "
            "transaction or nothing: the API then answers as it did on the exported one, "
            "and everyone logs in with their password."
        ),
        formatter_class=Formatter,
    )
    load.add_argument(
        "file", metavar="FILE", nargs="?", default="-", help="what to read; - is stdin"
    )
    add_database_option(load)
    load.set_defaults(run=run_import)


def run_export(args: argparse.Namespace, settings: Settings) -> int:
    if args.file != "-" and Path(args.file).exists() and not args.force:
        return error(f"{args.file} exists: choose another name, or --force to replace it")

    async def export(services: Services) -> int:
        archive = await services.operator.export()
        with _output(args.file) as out:
            for line in encode(archive):
                out.write(line + "\n")
        if args.file != "-":
            counts = f"{len(archive.users)} users, {len(archive.chats)} chats"
            print(f"Exported {counts}, {len(archive.messages)} messages to {args.file}.")
        return OK

    return with_services(settings_for(args, settings), export, note_memory=False)


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    try:
        with _input(args.file) as source:
            archive = decode(source)
    except (Malformed, OSError, UnicodeDecodeError) as exc:
        return error(str(exc))

    async def load(services: Services) -> int:
        try:
            counts = await services.operator.import_archive(archive)
        except ArchiveInvalid as exc:
            for problem in exc.problems[:SHOWN_PROBLEMS]:
                print(f"error: {problem}", file=sys.stderr)
            if len(exc.problems) > SHOWN_PROBLEMS:
                print(f"... and {len(exc.problems) - SHOWN_PROBLEMS} more", file=sys.stderr)
            return FAILED
        except Conflict as exc:
            return error(exc.message)
        print(f"Imported {counts.users} users, {counts.chats} chats, {counts.messages} messages.")
        return OK

    return with_services(settings_for(args, settings), load)


@contextlib.contextmanager
def _output(file: str) -> Iterator[IO[str]]:
    if file == "-":
        yield sys.stdout
        return
    with open(file, "w", encoding="utf-8") as out:
        yield out


@contextlib.contextmanager
def _input(file: str) -> Iterator[Iterable[str]]:
    if file == "-":
        yield sys.stdin
        return
    with open(file, encoding="utf-8") as source:
        yield source


# --- the format ---------------------------------------------------------------------------


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def encode(archive: Archive) -> Iterator[str]:
    last = archive.last_ids
    header = {"users": last.users, "chats": last.chats, "messages": last.messages}
    yield _dumps({"type": FORMAT, "version": VERSION, "last_ids": header})
    for stored in archive.users:
        user = stored.user
        yield _dumps(
            {
                "type": "user",
                "id": user.id,
                "username": user.username,
                "email": user.email,
                "user_type": user.user_type.value,
                "date_joined": _time(user.date_joined),
                "is_admin": user.is_admin,
                "is_active": user.is_active,
                "password_hash": stored.password_hash,
            }
        )
    for chat in archive.chats:
        yield _dumps(
            {
                "type": "chat",
                "id": chat.id,
                "name": chat.name,
                "created_at": _time(chat.created_at),
                "participant_ids": list(chat.participant_ids),
                "admin_ids": list(chat.admin_ids),
            }
        )
    for message in archive.messages:
        yield _dumps(
            {
                "type": "message",
                "id": message.id,
                "chat": message.chat_id,
                "sender": message.sender_id,
                "content": message.content,
                "timestamp": _time(message.timestamp),
                "client_id": message.client_id,
            }
        )


def _dumps(record: dict[str, object]) -> str:
    # ensure_ascii: any text, lone surrogates included, is one line of plain ASCII.
    return json.dumps(record, ensure_ascii=True, separators=(",", ":"))


# The fields of each record and their JSON types (None: null allowed).
_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "user": {
        "id": (int,),
        "username": (str,),
        "email": (str,),
        "user_type": (str,),
        "date_joined": (str,),
        "is_admin": (bool,),
        "is_active": (bool,),
        "password_hash": (str,),
    },
    "chat": {
        "id": (int,),
        "name": (str,),
        "created_at": (str,),
        "participant_ids": (list,),
        "admin_ids": (list,),
    },
    "message": {
        "id": (int,),
        "chat": (int,),
        "sender": (int,),
        "content": (str,),
        "timestamp": (str,),
        "client_id": (str, type(None)),
    },
}


def decode(lines: Iterable[str]) -> Archive:
    """The archive these lines hold; :class:`Malformed` names the first bad line."""
    last: LastIds | None = None
    users: list[StoredUser] = []
    chats: list[StoredChat] = []
    messages: list[StoredMessage] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise Malformed("not a JSON object")
            kind = record.get("type")
            if last is None:
                last = _header(record)
            elif kind == "user":
                users.append(_user(_checked(record, "user")))
            elif kind == "chat":
                chats.append(_chat(_checked(record, "chat")))
            elif kind == "message":
                messages.append(_message(_checked(record, "message")))
            else:
                raise Malformed(f"unknown type {kind!r}")
        except (Malformed, ValueError) as exc:  # json.JSONDecodeError is a ValueError
            raise Malformed(f"line {number}: {exc}") from None
    if last is None:
        raise Malformed(f"no {FORMAT} header: not a chatcore export")
    return Archive(last, tuple(users), tuple(chats), tuple(messages))


def _header(record: dict[str, Any]) -> LastIds:
    if record.get("type") != FORMAT:
        raise Malformed(f"the first line must be the {FORMAT} header")
    if record.get("version") != VERSION:
        raise Malformed(f"format version {record.get('version')!r}; this chatcore reads {VERSION}")
    last = record.get("last_ids")
    names = ("users", "chats", "messages")
    if not isinstance(last, dict) or set(last) != set(names):
        raise Malformed(f"last_ids must hold {', '.join(names)}")
    values = [last[name] for name in names]
    if not all(_is_int(value) and value >= 0 for value in values):
        raise Malformed("last_ids must be whole numbers, 0 or more")
    return LastIds(*values)


# Fields an older archive may lack: a chat's admins came with the event log.
_OPTIONAL: dict[str, set[str]] = {"chat": {"admin_ids"}}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checked(record: dict[str, Any], kind: str) -> dict[str, Any]:
    fields = _FIELDS[kind]
    keys = set(record) - {"type"}
    optional = _OPTIONAL.get(kind, set())
    if not set(fields) - optional <= keys <= set(fields):
        missing, extra = sorted(set(fields) - optional - keys), sorted(keys - set(fields))
        raise Malformed(f"{kind}: missing {missing}, unknown {extra}")
    for name, types in fields.items():
        if name not in record:
            continue
        value = record[name]
        if not isinstance(value, types) or (int in types and isinstance(value, bool)):
            raise Malformed(
                f"{kind} {name}: {value!r} is not {'/'.join(t.__name__ for t in types)}"
            )
    return record


def _moment(text: str, name: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise Malformed(f"{name}: {text!r} has no timezone")
    return moment.astimezone(UTC)


def _user(record: dict[str, Any]) -> StoredUser:
    user = User(
        record["id"],
        record["username"],
        record["email"],
        UserType(record["user_type"]),
        _moment(record["date_joined"], "date_joined"),
        is_admin=record["is_admin"],
        is_active=record["is_active"],
    )
    return StoredUser(user, record["password_hash"])


def _chat(record: dict[str, Any]) -> StoredChat:
    members = record["participant_ids"]
    if not all(_is_int(member) for member in members):
        raise Malformed("chat participant_ids: ids must be whole numbers")
    admins = record.get("admin_ids", [])  # absent from archives made before chat admins
    if not all(_is_int(admin) for admin in admins):
        raise Malformed("chat admin_ids: ids must be whole numbers")
    created = _moment(record["created_at"], "created_at")
    return StoredChat(record["id"], record["name"], created, tuple(members), tuple(admins))


def _message(record: dict[str, Any]) -> StoredMessage:
    return StoredMessage(
        record["id"],
        record["chat"],
        record["sender"],
        record["content"],
        _moment(record["timestamp"], "timestamp"),
        record["client_id"],
    )
