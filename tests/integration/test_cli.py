"""The command line: migrate, createsuperuser, demo, and the `chatcore` console script."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def _count_printed(output: str, noun: str, count: int) -> bool:
    """Whether `output` says there are `count` of `noun` ("users: 3", "3 users", ...)."""
    gap = r"[^\d\n]{0,30}"
    pattern = rf"\b{noun}\b{gap}\b{count}\b|\b{count}\b{gap}\b{noun}\b"
    return re.search(pattern, output, re.IGNORECASE) is not None


def test_migrate_creates_the_database_and_is_idempotent(
    tmp_path: Path, cli: Any, server_factory: Any, api: Any
) -> None:
    db = tmp_path / "fresh.sqlite3"
    first = cli("migrate", db=db)
    assert first.returncode == 0, (first.stdout, first.stderr)
    assert db.exists()
    assert "Traceback" not in first.stderr
    again = cli("migrate", db=db)
    assert again.returncode == 0, (again.stdout, again.stderr)

    server = server_factory(db=db)
    with server.client() as http:
        user, token = api.register(http)
        chat = api.create_chat(http, token)
        message = api.send(http, token, chat["id"], "kept across migrate")
    server.stop()

    third = cli("migrate", db=db)
    assert third.returncode == 0, (third.stdout, third.stderr)
    restarted = server_factory(db=db)
    with restarted.client() as http:
        assert http.get("/api/me/", headers=api.auth(token)).json() == user
        assert api.history(http, token, chat["id"]) == [message]


def test_createsuperuser_makes_an_admin_who_can_log_in(
    tmp_path: Path, cli: Any, server_factory: Any, api: Any
) -> None:
    db = tmp_path / "admin.sqlite3"
    assert cli("migrate", db=db).returncode == 0
    username = api.unique("root")
    made = cli(
        "createsuperuser",
        "--username",
        username,
        "--email",
        "root@example.com",
        "--no-input",
        db=db,
        CHATCORE_SUPERUSER_PASSWORD=api.PASSWORD,
    )
    assert made.returncode == 0, (made.stdout, made.stderr)
    assert api.PASSWORD not in made.stdout + made.stderr

    server = server_factory(db=db)
    with server.client() as http:
        api.assert_detail(api.login(http, username, "Not-the-password-1"), 401)
        login = api.login(http, username)
        assert login.status_code == 200, login.text
        me = login.json()
        api.assert_me(me, with_token=True)
        assert me["username"] == username
        assert me["email"] == "root@example.com"
        users = http.get(
            "/api/admin/users/", params={"search": username}, headers=api.auth(me["token"])
        )
        assert users.status_code == 200, users.text
        assert [(u["username"], u["is_admin"], u["is_active"]) for u in users.json()] == [
            (username, True, True)
        ]


def test_createsuperuser_while_the_server_runs(
    server: Any, client: Any, api: Any, make_admin: Any
) -> None:
    made = make_admin(server, client, api)
    listed = client.get("/api/admin/users/", headers=api.auth(made["token"]))
    assert listed.status_code == 200, listed.text


def test_demo_creates_users_a_chat_and_messages_and_prints_them(
    tmp_path: Path, cli: Any, server_factory: Any, api: Any, make_admin: Any
) -> None:
    db = tmp_path / "demo.sqlite3"
    assert cli("migrate", db=db).returncode == 0
    demo = cli("demo", db=db)
    assert demo.returncode == 0, (demo.stdout, demo.stderr)
    assert "Traceback" not in demo.stdout + demo.stderr
    output = demo.stdout

    server = server_factory(db=db)
    with server.client() as http:
        admin = make_admin(server, http, api)
        headers = api.auth(admin["token"])
        users = http.get("/api/admin/users/", params={"limit": 1000}, headers=headers).json()
        demo_users = [u for u in users if u["id"] != admin["user"]["id"]]
        assert len(demo_users) == 9, demo_users  # three of each type, as the README says
        types = sorted(u["user_type"] for u in demo_users)
        assert types == ["owner"] * 3 + ["staff"] * 3 + ["student"] * 3, types

        chats = http.get("/api/admin/chats/", params={"limit": 1000}, headers=headers).json()
        assert len(chats) == 1, chats
        api.assert_chat(chats[0])
        assert {u["id"] for u in chats[0]["participants"]} == {u["id"] for u in demo_users}

        messages = api.assert_page(
            http.get("/api/admin/messages/", params={"limit": 1000}, headers=headers)
        )
        assert len(messages) >= 2, messages
        assert all(m["chat"] == chats[0]["id"] for m in messages)
        assert chats[0]["last_message"] == messages[-1]

    for message in messages:
        assert message["content"] in output, (message["content"], output)
    assert _count_printed(output, "users?", 9), output
    assert _count_printed(output, "chats?", 1), output
    assert _count_printed(output, "messages?", len(messages)), output


def test_the_console_script_runs_the_same_commands(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "chatcore"
    assert script.exists(), f"no `chatcore` console script next to {sys.executable}"
    db = tmp_path / "script.sqlite3"
    result = subprocess.run(
        [str(script), "migrate"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CHATCORE_")},
            "CHATCORE_DATABASE": str(db),
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert db.exists()


# --- every command takes its adapters from the settings (CHATCORE_STORAGE, _MIGRATE) ---

SUPERUSER = ("createsuperuser", "--username", "root", "--no-input")


def test_migrate_on_memory_storage_has_nothing_to_migrate(tmp_path: Path, cli: Any) -> None:
    db = tmp_path / "never.sqlite3"
    result = cli("migrate", db=db, CHATCORE_STORAGE="memory")
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "nothing to migrate" in result.stdout
    assert not db.exists()


@pytest.mark.parametrize("command", [SUPERUSER, ("demo",)], ids=["createsuperuser", "demo"])
def test_commands_on_memory_storage_touch_no_file(
    tmp_path: Path, cli: Any, api: Any, command: tuple[str, ...]
) -> None:
    db = tmp_path / "never.sqlite3"
    result = cli(
        *command, db=db, CHATCORE_STORAGE="memory", CHATCORE_SUPERUSER_PASSWORD=api.PASSWORD
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "memory" in result.stderr  # says that nothing it made will last
    assert not list(tmp_path.iterdir()), list(tmp_path.iterdir())


@pytest.mark.parametrize("command", [SUPERUSER, ("demo",)], ids=["createsuperuser", "demo"])
def test_with_migrate_off_an_unmigrated_database_is_refused_not_migrated(
    tmp_path: Path, cli: Any, api: Any, command: tuple[str, ...]
) -> None:
    db = tmp_path / "bare.sqlite3"
    env = {"CHATCORE_MIGRATE": "false", "CHATCORE_SUPERUSER_PASSWORD": api.PASSWORD}
    refused = cli(*command, db=db, **env)
    assert refused.returncode == 1, (refused.stdout, refused.stderr)
    assert "chatcore migrate" in refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
    # Nothing was applied behind the operator's back: migrate still has everything to do.
    migrated = cli("migrate", db=db)
    assert migrated.returncode == 0, (migrated.stdout, migrated.stderr)
    assert "applied [1," in migrated.stdout, migrated.stdout
    # Once migrated, the same command with the same settings works.
    done = cli(*command, db=db, **env)
    assert done.returncode == 0, (done.stdout, done.stderr)
