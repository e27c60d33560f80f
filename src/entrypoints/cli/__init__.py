"""The ``chatcore`` command, as an operator expects ``manage.py``: serve, and the
database and account chores, each with ``--help``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from ..settings import Settings, SettingsError
from . import accounts, database, demo, transfer
from .common import OK, USAGE, Formatter

DESCRIPTION = """\
chatcore: a self-hostable chat backend. `chatcore serve` runs the server; the other
commands look after its database and accounts. Settings are CHATCORE_* environment
variables (see the README); --database overrides CHATCORE_DATABASE_URL for one command.
`chatcore COMMAND --help` tells more of each."""

EPILOG = """\
exit codes: 0 done, 1 refused or failed (the message says why), 2 unusable command
line or setting; `chatcore check` has codes of its own."""


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        prog="chatcore", description=DESCRIPTION, epilog=EPILOG, formatter_class=Formatter
    )
    commands = main_parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(commands)
    database.add_commands(commands)
    accounts.add_commands(commands)
    transfer.add_commands(commands)
    demo.add_commands(commands)
    return main_parser


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the server (uvicorn)",
        description="Run the HTTP and WebSocket server. It migrates the database at start "
        "unless CHATCORE_MIGRATE=false, and logs the URLs of the API, its documentation "
        "and the home page once it listens.",
        formatter_class=Formatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="the TCP port; 0 picks a free one")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the database; more than 1 needs CHATCORE_REDIS_URL, "
        "which carries real-time delivery between them",
    )
    serve.add_argument("--reload", action="store_true", help="restart on code changes")
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug", "trace"],
        help="uvicorn's log level",
    )
    serve.set_defaults(run=_serve)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from ..server import serve

    if args.workers < 1:
        print("chatcore serve: --workers must be at least 1", file=sys.stderr)
        return USAGE
    if args.workers > 1 and not settings.redis_url:
        print(
            f"chatcore serve: --workers {args.workers} needs CHATCORE_REDIS_URL (e.g. "
            "redis://127.0.0.1:6379/0): without it each worker's sockets would hear only "
            "the events stored through that worker. Set it, or run one worker.",
            file=sys.stderr,
        )
        return USAGE
    if args.workers > 1 and settings.metrics:
        print(
            "note: each worker counts its own metrics and GET /metrics answers from "
            "whichever worker takes the connection; to scrape every process, run them as "
            "separate `chatcore serve` processes on ports of their own (README, Operations).",
            file=sys.stderr,
        )
    serve(args.host, args.port, workers=args.workers, reload=args.reload, log_level=args.log_level)
    return OK


def main(argv: Sequence[str] | None = None) -> int:
    main_parser = parser()
    args = main_parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        main_parser.error(str(exc))  # exits with 2
    try:
        code: int = args.run(args, settings)
    except BrokenPipeError:  # `chatcore export | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code
