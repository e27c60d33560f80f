"""The interactive commands at a real terminal (a pseudo-terminal that is the child's
controlling tty, which getpass reads), answering each prompt as it appears; and the
server's start-up line."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import httpx

from private_redis import SHARED_REDIS_URL, fresh_prefix

DEADLINE = 60.0


def cli_env(db: Path, **extra: str) -> dict[str, str]:
    """Ours minus stray CHATCORE_* settings, on this database (as conftest's run_cli)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCORE_")}
    return {**env, "PYTHONUNBUFFERED": "1", "CHATCORE_DATABASE": str(db), **extra}


def _take_the_terminal() -> None:  # runs in the child, before exec
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def converse(db: Path, args: list[str], steps: list[tuple[str, str]]) -> tuple[int, str]:
    """Run ``chatcore ARGS`` on a terminal; for each (prompt, answer), wait for the
    prompt then type the answer. Returns the exit code and everything shown."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "entrypoints.cli", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=cli_env(db),
        cwd=db.parent,
        preexec_fn=_take_the_terminal,
    )
    os.close(slave)
    shown = ""
    seen = 0
    deadline = time.monotonic() + DEADLINE

    def read_some() -> bool:
        nonlocal shown
        ready, _, _ = select.select([master], [], [], 0.2)
        if not ready:
            return True
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            return False
        shown += chunk.decode(errors="replace")
        return bool(chunk)

    try:
        for prompt, answer in steps:
            while prompt not in shown[seen:]:
                assert time.monotonic() < deadline, f"no {prompt!r} in:\n{shown}"
                assert read_some(), f"ended before {prompt!r}:\n{shown}"
            seen = shown.index(prompt, seen) + len(prompt)
            os.write(master, answer.encode() + b"\n")
        while process.poll() is None or read_some():
            assert time.monotonic() < deadline, shown
            if not read_some():
                break
        return process.wait(timeout=DEADLINE), shown
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)


def test_interactive_createsuperuser_asks_again_until_each_answer_is_good(
    tmp_path: Path, cli: Any, server_factory: Any, api: Any
) -> None:
    db = tmp_path / "tty.db"
    assert cli("createsuperuser", "--username", "taken", "--no-input", db=db,
               CHATCORE_SUPERUSER_PASSWORD=api.PASSWORD).returncode == 0  # fmt: skip
    code, shown = converse(
        db,
        ["createsuperuser", "--user-type", "owner"],
        [
            ("Username: ", "no spaces allowed"),
            ("Username: ", "Taken"),
            ("Username: ", "boss"),
            ("Email address: ", "boss@"),
            ("Email address: ", "boss@example.com"),
            ("Password: ", api.PASSWORD),
            ("Password (again): ", "something else"),
            ("Password: ", "password"),
            ("Password (again): ", "password"),
            ("Password: ", api.PASSWORD),
            ("Password (again): ", api.PASSWORD),
        ],
    )
    assert code == 0, shown
    assert "already exists" in shown
    assert "didn't match" in shown
    assert "too common" in shown
    assert "Superuser 'boss' created" in shown
    assert api.PASSWORD not in shown  # never echoed
    server = server_factory(db=db)
    with server.client() as http:
        me = api.login(http, "boss").json()
        assert (me["email"], me["user_type"], me["is_admin"]) == ("boss@example.com", "owner", True)


def test_interactive_changepassword_gives_up_after_three_tries(
    tmp_path: Path, cli: Any, api: Any
) -> None:
    db = tmp_path / "tty.db"
    assert cli("createsuperuser", "--username", "ann", "--no-input", db=db,
               CHATCORE_SUPERUSER_PASSWORD=api.PASSWORD).returncode == 0  # fmt: skip
    steps = [("Password: ", "Amber-willow-1"), ("Password (again): ", "Amber-willow-2")] * 3
    code, shown = converse(db, ["changepassword", "ann"], steps)
    assert code == 1, shown
    assert "after 3 attempts" in shown
    new = "Amber-willow-4410"
    code, shown = converse(
        db, ["changepassword", "ann"], [("Password: ", new), ("Password (again): ", new)]
    )
    assert code == 0, shown
    assert "Password changed for user 'ann'" in shown


# --- the start-up line -----------------------------------------------------------------

LINE = re.compile(
    r"API (http://[\d.]+:(\d+))/api/ - docs \1/api/docs/ and \1/api/redoc/ - home page \1/"
)


def _pages_answer(base: str) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        for path in ("/api/docs/", "/api/redoc/", "/"):
            assert http.get(path).status_code == 200, path


def test_serve_says_once_where_the_api_docs_and_home_page_are(server_factory: Any) -> None:
    server = server_factory()
    found = LINE.findall(server.output())
    assert len(found) == 1, server.output()
    base, port = found[0]
    assert int(port) == server.port
    _pages_answer(base)


def test_with_workers_the_line_is_said_once_with_the_port_bound(tmp_path: Path) -> None:
    log = tmp_path / "workers.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "entrypoints.cli", "serve", "--port", "0", "--workers", "2"],
            env=cli_env(
                tmp_path / "workers.db",
                CHATCORE_REDIS_URL=SHARED_REDIS_URL,
                CHATCORE_REDIS_PREFIX=fresh_prefix(),
            ),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + DEADLINE
        while not LINE.search(log.read_text()) or log.read_text().count("startup complete") < 2:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        text = log.read_text()
        found = LINE.findall(text)
        assert len(found) == 1, text
        base, port = found[0]
        assert int(port) > 0
        _pages_answer(base)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_several_workers_without_redis_are_refused_with_the_setting_named(
    tmp_path: Path,
) -> None:
    """Without Redis each worker's sockets would hear only what that worker stored."""
    refused = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "serve", "--port", "0", "--workers", "2"],
        env=cli_env(tmp_path / "refused.db"),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert refused.returncode == 2, (refused.returncode, refused.stdout, refused.stderr)
    assert "CHATCORE_REDIS_URL" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr, refused.stderr
    assert not (tmp_path / "refused.db").exists()  # refused before anything was done
