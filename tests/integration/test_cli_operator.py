"""The operator's commands against real database files and real servers: help, check,
showmigrations, clearsessions, backup, export / import, demo, admin, changepassword."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.sqlite import migrate
from entrypoints.cli import parser

# --- help --------------------------------------------------------------------------------


def _subcommands() -> dict[str, list[tuple[str, str]]]:
    """Each command and its options' flags (positionals' names) with their help, read
    from the parser itself, so that a new command or option is covered here unasked."""
    root = parser()
    (choices,) = [a for a in root._actions if getattr(a, "choices", None)]
    commands: dict[str, list[tuple[str, str]]] = {}
    for name, sub in choices.choices.items():  # type: ignore[union-attr]
        commands[name] = [
            (
                action.option_strings[-1] if action.option_strings else action.dest,
                " ".join((action.help or "").split()),
            )
            for action in sub._actions
            if action.dest != "help"
        ]
    return commands


def test_chatcore_help_lists_every_command_in_plain_text(tmp_path: Path, cli: Any) -> None:
    shown = cli("--help", db=tmp_path / "x.db")
    assert shown.returncode == 0, shown.stderr
    for name in _subcommands():
        assert name in shown.stdout
    for markup in ("``", ":func:", ":class:", ":meth:", ".. "):
        assert markup not in shown.stdout, shown.stdout


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_command_helps_with_each_of_its_options(
    tmp_path: Path, cli: Any, command: str
) -> None:
    shown = cli(command, "--help", db=tmp_path / "x.db")
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    for option, help_text in _subcommands()[command]:
        assert help_text, f"{command} {option} has no help"
        assert help_text in text, (option, shown.stdout)
        if option.startswith("--"):
            assert option in text, (option, shown.stdout)
    assert "default" in text  # defaults are stated
    assert not (tmp_path / "x.db").exists()


# --- check and showmigrations --------------------------------------------------------


def test_check_exit_codes_say_what_is_wrong(tmp_path: Path, cli: Any) -> None:
    db = tmp_path / "checked.db"
    assert cli("check", db=db, CHATCORE_TOKEN_TTL="soon").returncode == 2
    assert cli("check", db=tmp_path / "no" / "such.db", cwd=tmp_path).returncode == 3
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    assert cli("check", db=garbage).returncode == 3
    pending = cli("check", db=db)
    assert pending.returncode == 4, (pending.stdout, pending.stderr)
    assert "chatcore migrate" in pending.stderr
    assert not db.exists()  # checking created nothing
    migrate(db, target=2)
    assert cli("check", db=db).returncode == 4
    assert cli("migrate", db=db).returncode == 0
    ok = cli("check", db=db)
    assert ok.returncode == 0, (ok.stdout, ok.stderr)
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (999, 'from the future', 'x')")
    conn.close()
    assert cli("check", db=db).returncode == 5
    assert cli("check", db=db, CHATCORE_STORAGE="memory").returncode == 0


def test_showmigrations_marks_applied_and_pending(tmp_path: Path, cli: Any) -> None:
    db = tmp_path / "shown.db"
    fresh = cli("showmigrations", db=db)
    assert fresh.returncode == 0, fresh.stderr
    marks = [line.split("]")[0] + "]" for line in fresh.stdout.splitlines() if "[" in line]
    assert marks, fresh.stdout
    assert set(marks) == {" [ ]"}, fresh.stdout
    assert not db.exists()
    migrate(db, target=3)
    partly = cli("showmigrations", db=db).stdout.splitlines()
    rows = [line for line in partly if "[" in line]
    assert [row[:4] for row in rows] == [" [X]"] * 3 + [" [ ]"] * (len(rows) - 3), partly
    assert "0001" in rows[0]


# --- clearsessions -------------------------------------------------------------------


def test_clearsessions_deletes_expired_tokens_and_ended_attempts(
    server_factory: Any, api: Any, cli: Any
) -> None:
    server = server_factory(CHATCORE_TOKEN_TTL="1", CHATCORE_LOGIN_FAILURE_WINDOW="1")
    with server.client() as http:
        api.register(http)  # a token and a browser session
        user, _ = api.register(http)
        api.assert_detail(api.login(http, user["username"], "Wrong-password-1"), 401)
        time.sleep(1.5)  # (a login now would forget the ended attempts on its way)
        cleared = cli("clearsessions", db=server.db)
        assert cleared.returncode == 0, cleared.stderr
        assert "Deleted 4 expired tokens" in cleared.stdout, cleared.stdout
        # The failed login counted under three keys: this account from this address,
        # this account, this address. The sign-ups' hour-long windows go on.
        assert "Deleted 3 ended throttle records" in cleared.stdout, cleared.stdout
        live = api.login(http, user["username"]).json()["token"]
        assert http.get("/api/me/", headers=api.auth(live)).status_code == 200
        again = cli("clearsessions", db=server.db)
        assert "Deleted 0 expired" in again.stdout


# --- backup --------------------------------------------------------------------------


def test_backup_of_a_live_server_holds_every_acknowledged_message(
    tmp_path: Path, server_factory: Any, api: Any, cli: Any
) -> None:
    server = server_factory()
    acknowledged: list[tuple[float, int]] = []
    stop = threading.Event()
    with server.client() as http:
        _, token = api.register(http)
        chat = api.create_chat(http, token)

    def write() -> None:
        with server.client() as writer:
            number = 0
            while not stop.is_set():
                number += 1
                message = api.send(writer, token, chat["id"], f"message {number}")
                acknowledged.append((time.monotonic(), message["id"]))

    thread = threading.Thread(target=write)
    thread.start()
    try:
        while len(acknowledged) < 20:
            time.sleep(0.01)
        started = time.monotonic()
        before = [message_id for at, message_id in acknowledged if at < started]
        target = tmp_path / "copy.db"
        made = cli("backup", str(target), db=server.db)
        ended = time.monotonic()
    finally:
        stop.set()
        thread.join()
    assert made.returncode == 0, (made.stdout, made.stderr)
    during = [i for at, i in acknowledged if started <= at <= ended]
    assert during, "the server took no write while the backup ran"
    copy = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = {row[0] for row in copy.execute("SELECT id FROM messages")}
    finally:
        copy.close()
    assert set(before) <= stored

    kept = target.read_bytes()
    refused = cli("backup", str(target), db=server.db)
    assert refused.returncode == 1
    assert "--force" in refused.stderr
    assert target.read_bytes() == kept
    assert cli("backup", str(target), "--force", db=server.db).returncode == 0
    memory = cli("backup", str(tmp_path / "m.db"), db=server.db, CHATCORE_STORAGE="memory")
    assert memory.returncode == 1
    assert "nothing to back up" in memory.stderr
    assert not (tmp_path / "m.db").exists()


# --- export / import -----------------------------------------------------------------


def _everything(http: httpx.Client, api: Any, admin: str, tokens: list[str]) -> Any:
    """Every GET answer that shows users, chats and messages."""
    headers = api.auth(admin)
    answers: list[Any] = []
    for path in ("/api/admin/users/", "/api/admin/chats/", "/api/admin/messages/"):
        answers.append(http.get(path, params={"limit": 1000}, headers=headers).json())
    for token in tokens:
        for path in ("/api/me/", "/api/chats/", "/api/messages/", "/api/users/"):
            answers.append(http.get(path, headers=api.auth(token)).json())
    for chat in answers[1]:
        answers.append(http.get(f"/api/chats/{chat['id']}/", headers=api.auth(tokens[1])).json())
    return _without_seq(answers)


def _without_seq(answer: Any) -> Any:
    """An answer without its chats' ``seq``: an archive carries no event log, so a loaded
    chat's stream starts anew; everything else answers the same."""
    if isinstance(answer, list):
        return [_without_seq(item) for item in answer]
    if isinstance(answer, dict):
        chat = "participants" in answer
        return {k: _without_seq(v) for k, v in answer.items() if not (chat and k == "seq")}
    return answer


def test_export_then_import_into_a_fresh_file_answers_the_same(
    tmp_path: Path, server_factory: Any, api: Any, cli: Any, make_admin: Any
) -> None:
    source = server_factory()
    with source.client() as http:
        admin = make_admin(source, http, api)
        ann, ann_token = api.register(http, email="ann@example.com", user_type="owner")
        ben, ben_token = api.register(http, user_type="staff")
        chat = api.create_chat(http, ann_token, ids=[ben["id"]])
        api.create_chat(http, ben_token, name="alone")
        for number in range(5):
            api.send(http, ann_token, chat["id"], f"hello {number}", client_id=f"c{number}")
        api.send(http, ben_token, chat["id"], 'naïve ✓ \U0001f600 "quoted"\nnew line')
        doomed = api.send(http, ann_token, chat["id"], "deleted last")
        deleted = http.delete(
            f"/api/admin/messages/{doomed['id']}/", headers=api.auth(admin["token"])
        )
        assert deleted.status_code == 204, deleted.text
        tokens = [admin["token"], ann_token, ben_token]
        expected = _everything(http, api, admin["token"], tokens)

    dump = tmp_path / "dump.jsonl"
    exported = cli("export", str(dump), db=source.db)
    assert exported.returncode == 0, exported.stderr
    to_stdout = cli("export", db=source.db)
    assert to_stdout.stdout == dump.read_text()
    assert "token" not in dump.read_text().lower().replace("password_hash", "")

    fresh = tmp_path / "fresh.db"
    imported = cli("import", str(dump), db=fresh)
    assert imported.returncode == 0, (imported.stdout, imported.stderr)
    again = cli("import", str(dump), db=fresh)
    assert again.returncode == 1
    assert "not empty" in again.stderr

    target = server_factory(db=fresh)
    with target.client() as http:
        for name in (admin["username"], ann["username"], ben["username"]):
            assert api.login(http, name).status_code == 200
        logins = {
            name: api.login(http, name).json()["token"]
            for name in (admin["username"], ann["username"], ben["username"])
        }
        new_tokens = [logins[admin["username"]], logins[ann["username"]], logins[ben["username"]]]
        assert _everything(http, api, new_tokens[0], new_tokens) == expected
        after = api.send(http, new_tokens[1], chat["id"], "after the import")
        assert after["id"] > doomed["id"]  # the deleted message's id is not reused


def test_import_refuses_a_malformed_file_with_its_line(tmp_path: Path, cli: Any) -> None:
    bad = tmp_path / "bad.jsonl"
    header = '{"type":"chatcore-export","version":1,"last_ids":{"users":1,"chats":0,"messages":0}}'
    for body, says in [
        ("not json", "line 1"),
        (header + '\n{"type":"user","id":"1"}', "line 2"),
        (header + '\n{"type":"spaceship"}', "unknown type"),
        ('{"type":"user"}', "header"),
    ]:
        bad.write_text(body + "\n")
        refused = cli("import", str(bad), db=tmp_path / "never.db")
        assert refused.returncode == 1, (body, refused.stdout, refused.stderr)
        assert says in refused.stderr, (body, refused.stderr)
        assert "Traceback" not in refused.stderr


# --- demo ----------------------------------------------------------------------------


def test_demo_prints_credentials_that_log_in_and_keeps_off_a_used_database(
    tmp_path: Path, server_factory: Any, api: Any, cli: Any
) -> None:
    db = tmp_path / "demo-only.db"
    made = cli("demo", "--database", str(db), db=tmp_path / "other.db")
    assert made.returncode == 0, made.stderr
    assert not (tmp_path / "other.db").exists()  # --database wins over the setting
    password = made.stdout.split("password for each: ")[1].split(")")[0]
    usernames = [line.split()[0] for line in made.stdout.splitlines() if line.startswith("  demo_")]
    assert len(usernames) == 9
    server = server_factory(db=db)
    with server.client() as http:
        for username in usernames:
            assert api.login(http, username, password).status_code == 200, username
    refused = cli("demo", db=db)
    assert refused.returncode == 1
    assert "--force" in refused.stderr
    assert cli("demo", "--force", db=db).returncode == 0


# --- admin grant / revoke, changepassword --------------------------------------------


def test_admin_grant_and_revoke_apply_to_the_next_request(
    server: Any, client: Any, api: Any, cli: Any
) -> None:
    user, token = api.register(client)
    assert client.get("/api/admin/users/", headers=api.auth(token)).status_code == 404
    granted = cli("admin", "grant", user["username"].upper(), db=server.db)
    assert granted.returncode == 0, granted.stderr
    assert client.get("/api/admin/users/", headers=api.auth(token)).status_code == 200
    assert cli("admin", "revoke", user["username"], db=server.db).returncode == 0
    assert client.get("/api/admin/users/", headers=api.auth(token)).status_code == 404
    unknown = cli("admin", "grant", api.unique("nobody"), db=server.db)
    assert unknown.returncode == 1
    assert "no user named" in unknown.stderr


def test_changepassword_revokes_every_session_and_the_new_password_logs_in(
    server: Any, client: Any, api: Any, cli: Any
) -> None:
    user, token = api.register(client)
    name = user["username"]
    new = "Amber-willow-4410"
    weak = cli("changepassword", name, "--no-input", db=server.db, CHATCORE_NEW_PASSWORD="password")
    assert weak.returncode == 1
    assert "common" in weak.stderr
    assert client.get("/api/me/", headers=api.auth(token)).status_code == 200
    changed = cli("changepassword", name, "--no-input", db=server.db, CHATCORE_NEW_PASSWORD=new)
    assert changed.returncode == 0, changed.stderr
    assert new not in changed.stdout + changed.stderr
    api.assert_detail(client.get("/api/me/", headers=api.auth(token)), 401)
    api.assert_detail(api.login(client, name), 401)
    assert api.login(client, name, new).status_code == 200
    unknown = cli("changepassword", api.unique("nobody"), "--no-input", db=server.db,
                  CHATCORE_NEW_PASSWORD=new)  # fmt: skip
    assert unknown.returncode == 1
    assert "no user named" in unknown.stderr
    asked = cli("changepassword", name, db=server.db)  # stdin is not a terminal
    assert asked.returncode == 1
    assert "--no-input" in asked.stderr
