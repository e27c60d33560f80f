"""Database commands: migrate, showmigrations, check, clearsessions, backup."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import psycopg

from adapters import postgres, sqlite
from chatcore.services import Services

from ..bootstrap import CannotBackUp, adapters_from
from ..settings import Settings
from .common import OK, USAGE, Formatter, add_database_option, error, settings_for
from .common import with_services as run_with_services

UNREACHABLE, PENDING, TOO_NEW = 3, 4, 5
TOO_NEW_ERRORS = (sqlite.SchemaTooNew, postgres.SchemaTooNew)
UNREACHABLE_ERRORS = (sqlite.Unreachable, postgres.Unreachable)

CHECK_CODES = f"""\
exit codes:
  {OK}  settings usable, storage reachable, every migration applied
  {USAGE}  a setting (CHATCORE_*) or the command line is unusable
  {UNREACHABLE}  the storage cannot be reached (no such folder, not a database, unreadable)
  {PENDING}  migrations are pending: run `chatcore migrate`
  {TOO_NEW}  the database was migrated by a newer chatcore than this one"""


def add_commands(commands: Any) -> None:
    migrate = commands.add_parser(
        "migrate",
        help="create or upgrade the database schema",
        description="Create the database file if need be and apply every pending migration.",
        formatter_class=Formatter,
    )
    add_database_option(migrate)
    migrate.set_defaults(run=run_migrate)

    show = commands.add_parser(
        "showmigrations",
        help="list the migrations, [X] applied, [ ] pending",
        description="List every migration this chatcore knows: [X] applied, [ ] pending. "
        "Reads the database without creating or changing it.",
        formatter_class=Formatter,
    )
    add_database_option(show)
    show.set_defaults(run=showmigrations)

    check = commands.add_parser(
        "check",
        help="check the settings, the storage and the migrations",
        description="Check that the settings parse, the storage can be reached and every "
        "migration is applied, without changing anything. The exit code says which failed.",
        epilog=CHECK_CODES,
        formatter_class=Formatter,
    )
    add_database_option(check)
    check.set_defaults(run=run_check)

    clear = commands.add_parser(
        "clearsessions",
        help="delete expired tokens and sessions, and ended throttle records",
        description="Delete the tokens and browser sessions that have expired, and the "
        "records of login, sign-up and chat-creation attempts whose throttle window has "
        "ended. Neither counts for anything any more: they only take room. Safe while "
        "the server runs.",
        formatter_class=Formatter,
    )
    add_database_option(clear)
    clear.set_defaults(run=clearsessions)

    backup = commands.add_parser(
        "backup",
        help="write a consistent copy of the live database to FILE",
        description="Write a consistent copy of the SQLite database to FILE while the "
        "server goes on serving (SQLite's online backup): it holds every write committed "
        "before it began. The copy is checked (integrity_check) before it is put in place.",
        formatter_class=Formatter,
    )
    backup.add_argument("file", metavar="FILE", type=Path, help="where to write the copy")
    backup.add_argument("--force", action="store_true", help="replace FILE if it exists")
    add_database_option(backup)
    backup.set_defaults(run=run_backup)


def run_migrate(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings_for(args, settings)
    migrate = adapters_from(settings).migrate
    if migrate is None:
        print(f"{settings.storage} storage keeps nothing on disk: nothing to migrate")
        return OK
    try:
        applied = migrate()
    except TOO_NEW_ERRORS as exc:
        return error(str(exc))
    except psycopg.OperationalError as exc:
        return error(f"{settings.database_label}: {' '.join(str(exc).split())}")
    print(f"{settings.database_label}: applied {applied or 'nothing, up to date'}")
    return OK


def showmigrations(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings_for(args, settings)
    migrations = adapters_from(settings).migrations
    if migrations is None:
        print(f"{settings.storage} storage keeps nothing on disk: no migrations")
        return OK
    try:
        status = migrations()
    except (*UNREACHABLE_ERRORS, *TOO_NEW_ERRORS) as exc:
        return error(str(exc))
    print(settings.database_label)
    for version, description, applied in status:
        print(f" [{'X' if applied else ' '}] {version:04d} {description}")
    return OK


def run_check(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings_for(args, settings)
    print("settings: ok")
    migrations = adapters_from(settings).migrations
    if migrations is None:
        print(f"storage: {settings.storage}, in this process: nothing stored to check")
        return OK
    try:
        status = migrations()
    except UNREACHABLE_ERRORS as exc:
        error(f"storage: {exc}")
        return UNREACHABLE
    except TOO_NEW_ERRORS as exc:
        error(f"storage: {exc}")
        return TOO_NEW
    if settings.postgres_url is not None or Path(settings.sqlite_path).exists():
        print(f"storage: {settings.database_label} reachable")
    else:
        print(f"storage: {settings.database_label} does not exist yet; migrate (or serve) makes it")
    pending = [version for version, _, applied in status if not applied]
    if pending:
        error(f"migrations: {pending} pending: run `chatcore migrate`")
        return PENDING
    print(f"migrations: all {len(status)} applied")
    return OK


def clearsessions(args: argparse.Namespace, settings: Settings) -> int:
    async def clear(services: Services) -> int:
        cleared = await services.operator.clear_sessions()
        print(f"Deleted {cleared.tokens} expired tokens and sessions.")
        print(f"Deleted {cleared.attempts} ended throttle records.")
        return OK

    return run_with_services(settings_for(args, settings), clear, note_memory=False)


def run_backup(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings_for(args, settings)
    try:
        adapters_from(settings).backup(args.file, args.force)
    except (CannotBackUp, sqlite.BackupFailed, sqlite.Unreachable) as exc:
        return error(str(exc))
    size = args.file.stat().st_size
    print(f"Backed up {settings.database_label} to {args.file} ({size} bytes).")
    return OK
