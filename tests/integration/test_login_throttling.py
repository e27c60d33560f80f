"""Failed-login throttling per account and per client address, on servers started with
small limits (each test gets its own server, so counters start at zero)."""

from __future__ import annotations

from typing import Any

import httpx

PER_ACCOUNT = 5
PER_ADDRESS = 20
WRONG = "Wrong-password-000"


def _limited(server_factory: Any) -> Any:
    return server_factory(
        CHATCORE_LOGIN_FAILURES_PER_ACCOUNT=str(PER_ACCOUNT),
        CHATCORE_LOGIN_FAILURES_PER_ADDRESS=str(PER_ADDRESS),
    )


def test_an_account_is_throttled_past_its_failure_limit(server_factory: Any, api: Any) -> None:
    server = _limited(server_factory)
    with server.client() as http:
        victim, victim_token = api.register(http)
        bystander, _ = api.register(http)
        for _ in range(PER_ACCOUNT):
            api.assert_detail(api.login(http, victim["username"], WRONG), 401)

        throttled = api.login(http, victim["username"])
        api.assert_detail(throttled, 429)
        assert "token" not in throttled.text
        api.assert_detail(api.login(http, victim["username"], WRONG), 429)

        # only logins are throttled: the account's existing token keeps working
        assert http.get("/api/me/", headers=api.auth(victim_token)).status_code == 200
        # and another account from the same address is still under every limit
        other = api.login(http, bystander["username"])
        assert other.status_code == 200, other.text


def test_an_unknown_username_is_throttled_like_a_real_one(server_factory: Any, api: Any) -> None:
    server = _limited(server_factory)
    with server.client() as http:
        ghost = api.unique("ghost")
        for _ in range(PER_ACCOUNT):
            api.assert_detail(api.login(http, ghost, WRONG), 401)
        api.assert_detail(api.login(http, ghost, WRONG), 429)


def test_successful_logins_do_not_count_as_failures(server_factory: Any, api: Any) -> None:
    server = _limited(server_factory)
    with server.client() as http:
        user, _ = api.register(http)
        for _ in range(PER_ACCOUNT + 2):
            response = api.login(http, user["username"])
            assert response.status_code == 200, response.text
        for _ in range(PER_ACCOUNT - 1):
            api.assert_detail(api.login(http, user["username"], WRONG), 401)
        assert api.login(http, user["username"]).status_code == 200


def test_an_address_is_throttled_past_its_failure_limit(server_factory: Any, api: Any) -> None:
    server = _limited(server_factory)
    with server.client() as http:
        user, token = api.register(http)
        # one failure each for many usernames: no account reaches its own limit
        for n in range(PER_ADDRESS):
            api.assert_detail(api.login(http, api.unique(f"spray{n}-"), WRONG), 401)

        throttled = api.login(http, user["username"])
        api.assert_detail(throttled, 429)
        api.assert_detail(api.login(http, api.unique("fresh"), WRONG), 429)
        assert http.get("/api/me/", headers=api.auth(token)).status_code == 200


def test_limits_default_high_enough_for_a_few_typos(client: httpx.Client, api: Any) -> None:
    user, _ = api.register(client)
    for _ in range(3):
        api.assert_detail(api.login(client, user["username"], WRONG), 401)
    assert api.login(client, user["username"]).status_code == 200
