"""What every command shares: its settings, its adapters, and how it reports."""

from __future__ import annotations

import argparse
import asyncio
import sys
import textwrap
from collections.abc import Awaitable, Callable, Mapping, Sequence

import attrs

from adapters import postgres, sqlite
from chatcore.errors import Unavailable
from chatcore.services import Services

from ..bootstrap import Adapters, adapters_from
from ..settings import Settings

OK, FAILED, USAGE = 0, 1, 2  # 2 is also argparse's code for a bad command line

Job = Callable[[Services], Awaitable[int]]


class Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default shown after its help. Descriptions and epilogs are filled
    to the terminal's width paragraph by paragraph, and indented lines (the exit-code
    tables) are kept as they are."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out: list[str] = []
        paragraph: list[str] = []

        def flush() -> None:
            if paragraph:
                filled = textwrap.fill(
                    " ".join(paragraph), width, initial_indent=indent, subsequent_indent=indent
                )
                out.append(filled)
                paragraph.clear()

        for line in text.splitlines():
            if line.startswith(" ") or not line.strip():
                flush()
                out.append(indent + line)
            else:
                paragraph.append(line.strip())
        flush()
        return "\n".join(out)


def add_database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database",
        metavar="FILE_OR_URL",
        default=argparse.SUPPRESS,  # so the help shows where the default comes from
        help="the database to use: a SQLite file (or sqlite:///path) or a postgresql:// "
        "URL (default: $CHATCORE_DATABASE_URL, else $CHATCORE_DATABASE, else chatcore.db)",
    )


# What a command says, in one line, when the storage cannot be opened or used.
STORAGE_FAILURES = (
    sqlite.SchemaOutOfDate,
    sqlite.SchemaTooNew,
    postgres.SchemaOutOfDate,
    postgres.SchemaTooNew,
    postgres.Unreachable,
    Unavailable,
)


def settings_for(args: argparse.Namespace, settings: Settings) -> Settings:
    database = getattr(args, "database", None)
    return settings if database is None else attrs.evolve(settings, database=database)


def error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return FAILED


def print_fields(fields: Mapping[str, Sequence[str]]) -> None:
    for field, messages in fields.items():
        print(f"{field}: {' '.join(messages)}", file=sys.stderr)


def with_services(settings: Settings, job: Job, *, note_memory: bool = True) -> int:
    """Run ``job`` on the use cases over the settings' storage, opened for the job."""
    return asyncio.run(_run(settings, job, note_memory))


async def _run(settings: Settings, job: Job, note_memory: bool) -> int:
    if settings.storage == "memory" and note_memory:
        print("note: memory storage: what this command makes is gone when it ends", file=sys.stderr)
    try:
        async with adapters_from(settings) as adapters:
            return await job(services_of(adapters, settings))
    except STORAGE_FAILURES as exc:
        return error(str(exc))


def services_of(adapters: Adapters, settings: Settings) -> Services:
    return adapters.services(settings.policy())
