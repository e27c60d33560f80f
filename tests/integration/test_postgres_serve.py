"""`chatcore serve` over PostgreSQL (API.md, "Scale-out").

A representative slice of this suite, the very same tests, imported here and run
against a server whose ``CHATCORE_DATABASE_URL`` is a PostgreSQL database of this
session's own (the ``server`` fixture below stands in for the SQLite one for them); two
server processes on one database serving one REST state; the command line's database
commands over a URL; and the database stopped under a running server (a private
PostgreSQL, never the machine's): 503 with ``Retry-After`` meanwhile, served again
without a restart once it is back, every acknowledged message still there."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from test_api_accounts import (  # noqa: F401 - collected here, over PostgreSQL
    test_login_answers_200_with_me_and_a_new_token_each_time,
    test_logout_revokes_only_the_token_that_made_the_request,
    test_register_answers_201_with_me_and_token,
    test_register_rejects_a_username_taken_ignoring_case,
    test_users_pages_with_limit_and_after,
    test_users_search_is_case_insensitive_substring_in_id_order,
)
from test_api_chats import (  # noqa: F401
    test_chat_list_holds_only_the_callers_chats_most_recent_activity_first,
    test_create_by_usernames_and_by_both_ignoring_duplicates,
    test_unknown_participants_create_nothing,
    trio,
)
from test_api_messages import (  # noqa: F401
    room,
    test_an_outsider_gets_404_for_everything_about_the_chat,
    test_following_links_tiles_the_history_without_gap_or_overlap,
    test_message_ids_grow_in_the_order_messages_are_stored,
    test_repeating_a_client_id_answers_200_with_the_original,
    test_send_answers_201_with_the_message,
    test_the_feed_pages_with_links_and_keeps_its_chat_filter,
    test_the_message_feed_holds_only_the_callers_chats,
)
from test_websocket import (  # noqa: F401
    test_a_repeated_client_id_answers_only_the_sender_with_the_original,
    test_logout_and_deactivation_close_the_sockets,
    test_rest_sends_reach_the_sockets_and_outsiders_get_4404,
    test_twenty_clients_sending_fifty_each_all_receive_the_same_thousand,
)
from test_websocket_events import (  # noqa: F401
    test_admin_deletions_reach_the_others_and_a_deleted_chat_closes_with_4404,
    test_resume_with_since_misses_nothing_and_repeats_nothing_while_others_send,
    test_sends_are_message_events_with_the_chats_seq_on_every_socket,
)

from pg_support import private_cluster

OUTAGE_DEADLINE = 60.0  # for the server to serve again once the database is back


@pytest.fixture(scope="session")
def server(postgres_server: Any) -> Any:
    """For the tests of this module (those imported above too): the PostgreSQL server."""
    return postgres_server


def test_two_servers_on_one_database_serve_one_rest_state(
    server_factory: Any, pg_database: str, api: Any
) -> None:
    one, two = server_factory(pg_database), server_factory(pg_database)
    with one.client() as a, two.client() as b:
        ann, ann_token = api.register(a)
        ben, ben_token = api.register(b)
        login = api.login(b, ann["username"])  # registered on one, logs in on two
        assert login.status_code == 200, login.text
        chat = api.create_chat(a, ann_token, ids=[ben["id"]])
        sent = [
            api.send(client, token, chat["id"], f"m{n}")
            for n in range(10)
            for client, token in ((a, ann_token), (b, ben_token))
        ]
        # a retry on the other server finds the first one's message
        first = api.send(a, ann_token, chat["id"], "once", client_id="c-1")
        again = api.send(b, ann_token, chat["id"], "once", client_id="c-1", expect=200)
        assert again == first
        for client, token in ((a, ann_token), (b, ben_token)):
            history = api.history(client, token, chat["id"])
            assert [m["id"] for m in history] == [m["id"] for m in [*sent, first]]
            listed = client.get("/api/chats/", headers=api.auth(token)).json()
            assert listed[0]["id"] == chat["id"]
            assert listed[0]["last_message"]["id"] == first["id"]
            assert listed[0]["seq"] == len(sent) + 1
        # a logout on one is a logout on the other
        assert b.post("/api/logout/", headers=api.auth(ben_token)).status_code == 200
        assert a.get("/api/me/", headers=api.auth(ben_token)).status_code == 401


def test_the_database_commands_take_a_postgresql_url(
    cli: Any, pg_database: str, tmp_path: Path
) -> None:
    def run(*args: str) -> Any:
        return cli(*args, db=pg_database, cwd=tmp_path)

    pending = run("check")
    assert pending.returncode == 4, pending.stderr  # migrations pending
    shown = run("showmigrations")
    assert shown.returncode == 0, shown.stderr
    assert " [ ] 0001 " in shown.stdout
    migrated = run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "applied [1]" in migrated.stdout
    assert "applied nothing" in run("migrate").stdout
    assert " [X] 0001 " in run("showmigrations").stdout
    checked = run("check")
    assert checked.returncode == 0, checked.stderr
    assert "reachable" in checked.stdout
    refused = run("backup", str(tmp_path / "copy.db"))
    assert refused.returncode == 1
    assert "pg_dump" in refused.stderr
    assert not (tmp_path / "copy.db").exists()
    # --database takes a URL too, over a SQLite setting
    flagged = cli("showmigrations", "--database", pg_database, db=tmp_path / "x.db")
    assert " [X] 0001 " in flagged.stdout, flagged.stderr
    gone = cli("check", db=pg_database.rsplit("/", 1)[0] + "/no_such_db_here", cwd=tmp_path)
    assert gone.returncode == 3, gone.stderr
    # both spellings set, naming different databases: refused, naming the settings
    both = cli("check", db=pg_database, cwd=tmp_path, CHATCORE_DATABASE="other.db")
    assert both.returncode == 2
    assert "CHATCORE_DATABASE_URL" in both.stderr


def _send_until(
    client: httpx.Client, token: str, chat_id: int, tag: str, stop: Any
) -> tuple[list[str], list[httpx.Response]]:
    """Send with fresh client ids until ``stop()``; the acknowledged client ids, and the
    503 answers seen."""
    acknowledged, unavailable = [], []
    number = 0
    while not stop():
        number += 1
        client_id = f"{tag}-{number}"
        try:
            response = client.post(
                f"/api/chats/{chat_id}/send_message/",
                json={"content": f"{tag} {number}", "client_id": client_id},
                headers={"Authorization": f"Token {token}"},
            )
        except httpx.TimeoutException:
            continue
        if response.status_code in (200, 201):
            acknowledged.append(client_id)
        elif response.status_code == 503:
            unavailable.append(response)
        else:
            raise AssertionError((response.status_code, response.text))
        time.sleep(0.02)
    return acknowledged, unavailable


def test_a_database_outage_is_503_with_retry_after_and_the_server_recovers_by_itself(
    server_factory: Any, api: Any
) -> None:
    with private_cluster() as cluster:
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE chatcore")
        served = server_factory(cluster.url("chatcore"))
        with served.client(timeout=20.0) as http:
            _, token = api.register(http)
            chat = api.create_chat(http, token)
            phase = {"name": "up"}
            with concurrent.futures.ThreadPoolExecutor(3) as pool:
                senders = [
                    pool.submit(
                        _send_until,
                        http,
                        token,
                        chat["id"],
                        f"s{n}",
                        lambda: phase["name"] == "done",
                    )
                    for n in range(3)
                ]
                time.sleep(1.0)
                cluster.stop("immediate")  # mid-stream
                phase["name"] = "down"
                deadline = time.monotonic() + OUTAGE_DEADLINE
                while time.monotonic() < deadline:  # a request meets the outage
                    down = http.get("/api/chats/", headers=api.auth(token))
                    if down.status_code == 503:
                        break
                    time.sleep(0.1)
                assert down.status_code == 503, down.text
                assert int(down.headers["Retry-After"]) >= 1
                assert down.json() == {"detail": down.json()["detail"]}
                cluster.start()
                while time.monotonic() < deadline:  # the same server serves again
                    up = http.get("/api/chats/", headers=api.auth(token))
                    if up.status_code == 200:
                        break
                    assert up.status_code == 503, up.text
                    time.sleep(0.2)
                assert up.status_code == 200, up.text
                time.sleep(1.0)  # and takes sends again
                phase["name"] = "done"
                outcomes = [sender.result(timeout=OUTAGE_DEADLINE) for sender in senders]
            acknowledged = [cid for ok, _ in outcomes for cid in ok]
            unavailable = [r for _, bad in outcomes for r in bad]
            assert all(r.headers["Retry-After"].isdigit() for r in unavailable)
            stored = {m["client_id"] for m in api.history(http, token, chat["id"])}
            assert set(acknowledged) <= stored  # no acknowledged message was lost
            assert served.process.poll() is None  # never restarted
            # sends after the return were acknowledged too
            assert api.send(http, token, chat["id"], "after the outage")["content"]
