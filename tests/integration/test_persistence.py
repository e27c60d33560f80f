"""The SQLite file is the truth: data survives a restart, and two server processes on one
database file see each other's writes, with concurrent sends through both all stored."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

THREADS_PER_SERVER = 3
SENDS_PER_THREAD = 20


def test_everything_survives_a_restart(server_factory: Any, api: Any) -> None:
    first = server_factory()
    with first.client() as http:
        alice, alice_token = api.register(http, email="alice@example.com", user_type="owner")
        bob, bob_token = api.register(http)
        chat = api.create_chat(http, alice_token, name="kept", ids=[bob["id"]])
        sent = [
            api.send(http, alice_token, chat["id"], "before restart", client_id="c-1"),
            api.send(http, bob_token, chat["id"], "\u00e9t\u00e9 \U0001f31e"),
        ]
        revoked = api.login(http, bob["username"]).json()["token"]
        api.assert_detail(http.post("/api/logout/", headers=api.auth(revoked)), 200)
        chats_before = http.get("/api/chats/", headers=api.auth(alice_token)).json()
    first.stop()

    second = server_factory(db=first.db)
    with second.client() as http:
        me = http.get("/api/me/", headers=api.auth(alice_token))
        assert me.status_code == 200, me.text
        assert me.json() == alice
        assert http.get("/api/me/", headers=api.auth(bob_token)).json() == bob
        api.assert_detail(http.get("/api/me/", headers=api.auth(revoked)), 401)

        assert (
            http.get(f"/api/chats/{chat['id']}/", headers=api.auth(bob_token)).json()
            == (chats_before[0])
        )
        assert http.get("/api/chats/", headers=api.auth(alice_token)).json() == chats_before
        assert api.history(http, alice_token, chat["id"]) == sent
        for message in sent:
            by_id = http.get(f"/api/messages/{message['id']}/", headers=api.auth(bob_token))
            assert by_id.json() == message

        # idempotency keys are stored too, not held in memory
        again = api.send(
            http, alice_token, chat["id"], "before restart", client_id="c-1", expect=200
        )
        assert again == sent[0]
        newer = api.send(http, alice_token, chat["id"], "after restart")
        assert newer["id"] > max(m["id"] for m in sent)

        assert api.login(http, alice["username"]).status_code == 200
        duplicate = http.post(
            "/api/register/",
            json={
                "username": alice["username"],
                "password": api.PASSWORD,
                "password_confirm": api.PASSWORD,
            },
        )
        http.cookies.clear()
        api.assert_field_error(duplicate, "username")
        users = http.get(
            "/api/users/", params={"search": alice["username"]}, headers=api.auth(bob_token)
        ).json()
        assert [u["id"] for u in users] == [alice["id"]]


def test_two_servers_on_one_database_file(server_factory: Any, api: Any) -> None:
    one = server_factory()
    two = server_factory(db=one.db)
    assert one.port != two.port
    with one.client() as a, two.client() as b:
        alice, alice_token = api.register(a)
        bob, bob_token = api.register(b)

        # accounts and tokens made through one are good on the other
        assert b.get("/api/me/", headers=api.auth(alice_token)).json() == alice
        assert a.get("/api/me/", headers=api.auth(bob_token)).json() == bob
        logged_in = api.login(b, alice["username"])
        assert logged_in.status_code == 200, logged_in.text

        chat = api.create_chat(a, alice_token, ids=[bob["id"]])
        assert b.get(f"/api/chats/{chat['id']}/", headers=api.auth(bob_token)).json() == chat

        from_b = api.send(b, bob_token, chat["id"], "written through two")
        seen_on_a = a.get(f"/api/messages/{from_b['id']}/", headers=api.auth(alice_token))
        assert seen_on_a.status_code == 200, seen_on_a.text
        assert seen_on_a.json() == from_b

        # a logout through one server revokes the token on the other
        throwaway = api.login(a, bob["username"]).json()["token"]
        api.assert_detail(b.post("/api/logout/", headers=api.auth(throwaway)), 200)
        api.assert_detail(a.get("/api/me/", headers=api.auth(throwaway)), 401)

        # concurrent sends through both servers at once
        barrier = threading.Barrier(2 * THREADS_PER_SERVER)
        senders = [(one, alice_token), (two, bob_token)]

        def work(server: Any, token: str, thread: int) -> list[tuple[int, str, Any]]:
            results: list[tuple[int, str, Any]] = []
            with server.client() as http:
                barrier.wait(timeout=60)
                for n in range(SENDS_PER_THREAD):
                    content = f"p{server.port}-t{thread}-n{n}"
                    response = http.post(
                        f"/api/chats/{chat['id']}/send_message/",
                        json={"content": content, "client_id": content},
                        headers=api.auth(token),
                    )
                    try:
                        body = response.json()
                    except ValueError:
                        body = response.text
                    results.append((response.status_code, content, body))
            return results

        with ThreadPoolExecutor(max_workers=2 * THREADS_PER_SERVER) as pool:
            futures = [
                pool.submit(work, server, token, thread)
                for server, token in senders
                for thread in range(THREADS_PER_SERVER)
            ]
            results = [item for future in futures for item in future.result()]

        failures = [(status, body) for status, _, body in results if status != 201]
        assert not failures, failures[:5]
        stored = [body for _, _, body in results]
        for message in stored:
            api.assert_message(message)
        ids = [m["id"] for m in stored]
        assert len(set(ids)) == len(ids) == 2 * THREADS_PER_SERVER * SENDS_PER_THREAD
        assert {m["content"] for m in stored} == {content for _, content, _ in results}

        # both servers read back the same complete history, in one id order
        expected = sorted([from_b, *stored], key=lambda m: m["id"])
        via_one = api.history(a, alice_token, chat["id"])
        via_two = api.history(b, bob_token, chat["id"])
        assert via_one == expected
        assert via_two == expected

        # per-thread order is id order: ids grow in the order each sender stored them
        for server, _ in senders:
            for thread in range(THREADS_PER_SERVER):
                prefix = f"p{server.port}-t{thread}-"
                mine = [m["id"] for m in expected if m["content"].startswith(prefix)]
                assert len(mine) == SENDS_PER_THREAD
                assert [m["content"] for m in expected if m["content"].startswith(prefix)] == [
                    f"{prefix}n{n}" for n in range(SENDS_PER_THREAD)
                ]

        # retries through the *other* server find the stored message (stored, not cached)
        sample = stored[0]
        retry_server = b if sample["sender"]["id"] == alice["id"] else a
        retry_token = alice_token if sample["sender"]["id"] == alice["id"] else bob_token
        retried = retry_server.post(
            f"/api/chats/{chat['id']}/send_message/",
            json={"content": sample["content"], "client_id": sample["client_id"]},
            headers=api.auth(retry_token),
        )
        assert retried.status_code == 200, retried.text
        assert retried.json() == sample

        for http, token in ((a, alice_token), (b, bob_token)):
            chats = http.get("/api/chats/", headers=api.auth(token)).json()
            assert chats[0]["id"] == chat["id"]
            assert chats[0]["last_message"] == expected[-1]


def test_concurrent_registrations_on_two_servers_stay_unique(server_factory: Any, api: Any) -> None:
    one = server_factory()
    two = server_factory(db=one.db)
    username = api.unique("race")

    def attempt(server: Any) -> httpx.Response:
        with server.client() as http:
            return http.post(
                "/api/register/",
                json={
                    "username": username,
                    "password": api.PASSWORD,
                    "password_confirm": api.PASSWORD,
                },
            )

    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(attempt, [one, two, one, two]))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 400, 400, 400], [(r.status_code, r.text) for r in responses]
    for response in responses:
        if response.status_code == 400:
            api.assert_field_error(response, "username")
    with one.client() as http:
        token = next(r for r in responses if r.status_code == 201).json()["token"]
        found = http.get("/api/users/", params={"search": username}, headers=api.auth(token))
        assert len(found.json()) == 1
