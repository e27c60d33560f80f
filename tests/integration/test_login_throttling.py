"""Throttles over a real server: failed logins (per account and address, per account,
per address), sign-ups per address, chat creation per user. Each test starts its own
server with small limits, so counters start at zero.

Every client here connects from 127.0.0.1, which uvicorn trusts as a proxy by default
(``--forwarded-allow-ips``): a request's ``X-Forwarded-For`` is then its client address.
That is how these tests speak from several addresses; the owner test also shows that
the server tells them apart (from the stranger's address the owner is refused)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

WRONG = "Wrong-password-000"
LONG_PAUSE = "3600"  # no back-off ends while a test runs


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def _login_body(username: str, password: str) -> dict[str, str]:
    return {"username": username, "password": password}


def test_a_burst_of_20_wrong_guesses_against_3_gets_3_checked_and_no_login(
    server_factory: Any, api: Any
) -> None:
    server = server_factory(
        CHATCORE_LOGIN_FREE_FAILURES="3", CHATCORE_LOGIN_BACKOFF_SECONDS=LONG_PAUSE
    )
    with server.client() as http:
        victim, _ = api.register(http)
    username = victim["username"]

    async def burst() -> tuple[list[int], httpx.Response]:
        limits = httpx.Limits(max_connections=25)
        async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as http:
            wrong = [
                asyncio.create_task(http.post("/api/login/", json=_login_body(username, WRONG)))
                for _ in range(20)
            ]
            # Three answers back mean the free guesses are spent (each was either
            # counted, or refused because three were): the right one comes now, while
            # the rest of the burst is still in flight.
            right = None
            for answered, next_answer in enumerate(asyncio.as_completed(wrong), start=1):
                await next_answer
                if answered == 3:
                    right = await http.post("/api/login/", json=_login_body(username, api.PASSWORD))
            assert right is not None
            return [task.result().status_code for task in wrong], right

    statuses, right = asyncio.run(burst())
    assert sorted(statuses) == [401] * 3 + [429] * 17
    api.assert_detail(right, 429)
    assert "token" not in right.text


def test_a_strangers_burst_does_not_stop_the_owner_from_their_own_address(
    server_factory: Any, api: Any
) -> None:
    server = server_factory(
        CHATCORE_LOGIN_FREE_FAILURES="3",
        CHATCORE_LOGIN_BACKOFF_SECONDS=LONG_PAUSE,
        CHATCORE_LOGIN_FAILURES_PER_ACCOUNT="10",
    )
    strangers = [f"203.0.113.{n}" for n in range(1, 7)]
    with server.client() as http:
        owner, token = api.register(http)
        username = owner["username"]

        async def attack() -> list[int]:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as burst:
                answers = await asyncio.gather(
                    *(
                        burst.post(
                            "/api/login/",
                            json=_login_body(username, WRONG),
                            headers=_from(address),
                        )
                        for address in strangers
                        for _ in range(5)
                    )
                )
            return [answer.status_code for answer in answers]

        statuses = asyncio.run(attack())
        assert set(statuses) == {401, 429}
        # the account's bound is reached; past it each address that had not failed yet
        # got one guess more
        assert 10 <= statuses.count(401) <= 10 + len(strangers)

        for home in ("198.51.100.7", None):  # an address of their own; the proxy itself
            response = http.post(
                "/api/login/",
                json=_login_body(username, api.PASSWORD),
                headers=_from(home) if home else None,
            )
            http.cookies.clear()
            assert response.status_code == 200, response.text
        from_stranger = http.post(
            "/api/login/", json=_login_body(username, api.PASSWORD), headers=_from(strangers[0])
        )
        api.assert_detail(from_stranger, 429)
        assert http.get("/api/me/", headers=api.auth(token)).status_code == 200


def test_an_address_is_throttled_past_its_failure_limit(server_factory: Any, api: Any) -> None:
    server = server_factory(CHATCORE_LOGIN_FAILURES_PER_ADDRESS="20")
    with server.client() as http:
        user, token = api.register(http)
        sprayer = _from("203.0.113.9")
        # one failure each for many usernames: no account comes near its own limits
        for n in range(20):
            body = _login_body(api.unique(f"spray{n}-"), WRONG)
            api.assert_detail(http.post("/api/login/", json=body, headers=sprayer), 401)

        right = _login_body(user["username"], api.PASSWORD)
        api.assert_detail(http.post("/api/login/", json=right, headers=sprayer), 429)
        assert http.post("/api/login/", json=right).status_code == 200  # another address
        assert http.get("/api/me/", headers=api.auth(token)).status_code == 200


def test_an_unknown_username_is_throttled_like_a_real_one(server_factory: Any, api: Any) -> None:
    server = server_factory(CHATCORE_LOGIN_FREE_FAILURES="3")
    with server.client() as http:
        ghost = api.unique("ghost")
        for _ in range(3):
            api.assert_detail(api.login(http, ghost, WRONG), 401)
        api.assert_detail(api.login(http, ghost, WRONG), 429)


def test_successful_logins_do_not_count_as_failures(server_factory: Any, api: Any) -> None:
    server = server_factory(
        CHATCORE_LOGIN_FREE_FAILURES="3", CHATCORE_LOGIN_FAILURES_PER_ACCOUNT="3"
    )
    with server.client() as http:
        user, _ = api.register(http)
        for _ in range(6):
            response = api.login(http, user["username"])
            assert response.status_code == 200, response.text
        for _ in range(2):
            api.assert_detail(api.login(http, user["username"], WRONG), 401)
        assert api.login(http, user["username"]).status_code == 200


def test_limits_default_high_enough_for_a_few_typos(client: httpx.Client, api: Any) -> None:
    user, _ = api.register(client)
    for _ in range(4):
        api.assert_detail(api.login(client, user["username"], WRONG), 401)
    assert api.login(client, user["username"]).status_code == 200


def test_sign_ups_are_limited_per_address(server_factory: Any, api: Any) -> None:
    server = server_factory(CHATCORE_REGISTRATIONS_PER_ADDRESS="3")

    def sign_up(http: httpx.Client, address: str) -> httpx.Response:
        body = {"username": api.unique(), "password": api.PASSWORD}
        body["password_confirm"] = api.PASSWORD
        return http.post("/api/register/", json=body, headers=_from(address))

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            body = {"password": api.PASSWORD, "password_confirm": api.PASSWORD}
            return await asyncio.gather(
                *(
                    http.post(
                        "/api/register/",
                        json={**body, "username": api.unique()},
                        headers=_from("203.0.113.5"),
                    )
                    for _ in range(6)
                )
            )

    answers = asyncio.run(burst())
    assert sorted(a.status_code for a in answers) == [201] * 3 + [429] * 3
    for refused in (a for a in answers if a.status_code == 429):
        api.assert_detail(refused, 429)
        assert int(refused.headers["Retry-After"]) > 3500
    with server.client() as http:
        assert sign_up(http, "198.51.100.7").status_code == 201
        api.assert_detail(sign_up(http, "203.0.113.5"), 429)


def test_chat_creation_is_limited_per_user(server_factory: Any, api: Any) -> None:
    server = server_factory(CHATCORE_CHATS_PER_USER="3")
    with server.client() as http:
        _, alice = api.register(http)
        _, bob = api.register(http)
        for _ in range(3):
            api.create_chat(http, alice)
        refused = http.post(
            "/api/chats/", json={"name": "one more", "participant_ids": []}, headers=api.auth(alice)
        )
        api.assert_detail(refused, 429)
        assert int(refused.headers["Retry-After"]) > 3500
        api.create_chat(http, bob)
        chats = http.get("/api/chats/", headers=api.auth(alice)).json()
        assert len(chats) == 3
