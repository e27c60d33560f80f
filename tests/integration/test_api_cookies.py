"""Browser credentials: the session and csrftoken cookies, the CSRF rule, and how logout
treats the cookie session and the token as two separate credentials."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


class Browser:
    """A logged-in browser: its two cookies, plus the token the same login returned."""

    def __init__(self, client: httpx.Client, api: Any, response: httpx.Response) -> None:
        assert response.status_code in (200, 201), response.text
        client.cookies.clear()
        self.client = client
        self.token: str = response.json()["token"]
        self.user: dict[str, Any] = response.json()
        self.set_cookies = api.set_cookies(response)
        assert "sessionid" in self.set_cookies, response.headers.get_list("set-cookie")
        assert "csrftoken" in self.set_cookies, response.headers.get_list("set-cookie")
        self.session = self.set_cookies["sessionid"][0]
        self.csrf = self.set_cookies["csrftoken"][0]

    def headers(self, *, csrf: str | None = None) -> dict[str, str]:
        headers = {"Cookie": f"sessionid={self.session}; csrftoken={self.csrf}"}
        if csrf is not None:
            headers["X-CSRFToken"] = csrf
        return headers

    def request(
        self, method: str, path: str, *, csrf: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        response = self.client.request(method, path, headers=self.headers(csrf=csrf), **kwargs)
        self.client.cookies.clear()
        return response


@pytest.fixture
def browser(client: httpx.Client, api: Any) -> Browser:
    user, _ = api.register(client)
    response = client.post(
        "/api/login/", json={"username": user["username"], "password": api.PASSWORD}
    )
    return Browser(client, api, response)


def _assert_cookie_attributes(cookies: dict[str, tuple[str, dict[str, Any]]]) -> None:
    session_value, session = cookies["sessionid"]
    csrf_value, csrf = cookies["csrftoken"]
    assert session_value
    assert csrf_value
    assert session.get("httponly") is True, session
    assert str(session.get("samesite", "")).lower() == "lax", session
    assert "httponly" not in csrf, csrf


def test_login_sets_an_httponly_lax_session_and_a_readable_csrf_cookie(
    browser: Browser,
) -> None:
    _assert_cookie_attributes(browser.set_cookies)
    assert browser.session != browser.token
    assert browser.csrf != browser.token


def test_register_sets_the_same_cookies(client: httpx.Client, api: Any) -> None:
    response = client.post(
        "/api/register/",
        json={
            "username": api.unique(),
            "password": api.PASSWORD,
            "password_confirm": api.PASSWORD,
        },
    )
    registered = Browser(client, api, response)
    _assert_cookie_attributes(registered.set_cookies)
    me = registered.request("GET", "/api/me/")
    assert me.status_code == 200, me.text
    assert me.json()["id"] == registered.user["id"]


def test_the_session_cookie_alone_authenticates_reads(browser: Browser, api: Any) -> None:
    response = browser.request("GET", "/api/me/")
    assert response.status_code == 200, response.text
    me = api.assert_json(response)
    api.assert_me(me)
    assert me["id"] == browser.user["id"]
    assert browser.request("GET", "/api/chats/").status_code == 200
    assert browser.request("GET", "/api/messages/").status_code == 200


def test_a_bogus_session_cookie_is_401(client: httpx.Client, api: Any) -> None:
    response = client.get("/api/me/", headers={"Cookie": "sessionid=not-a-session"})
    api.assert_detail(response, 401)


def test_cookie_writes_need_the_csrf_header(
    browser: Browser, client: httpx.Client, api: Any
) -> None:
    other, _ = api.register(client)
    body = {"name": "csrf", "participant_ids": [other["id"]]}

    api.assert_detail(browser.request("POST", "/api/chats/", json=body), 403)
    api.assert_detail(browser.request("POST", "/api/chats/", json=body, csrf="wrong"), 403)
    api.assert_detail(browser.request("POST", "/api/chats/", json=body, csrf=""), 403)
    assert browser.request("GET", "/api/chats/").json() == []

    created = browser.request("POST", "/api/chats/", json=body, csrf=browser.csrf)
    assert created.status_code == 201, created.text
    chat = created.json()
    api.assert_chat(chat)

    send = f"/api/chats/{chat['id']}/send_message/"
    api.assert_detail(browser.request("POST", send, json={"content": "no header"}), 403)
    sent = browser.request("POST", send, json={"content": "with header"}, csrf=browser.csrf)
    assert sent.status_code == 201, sent.text
    history = api.history(client, browser.token, chat["id"])
    assert [m["content"] for m in history] == ["with header"]


def test_token_writes_need_no_csrf(browser: Browser, client: httpx.Client, api: Any) -> None:
    for scheme in ("Token", "Bearer"):
        response = client.post(
            "/api/chats/",
            json={"name": scheme, "participant_ids": []},
            headers=api.auth(browser.token, scheme),
        )
        assert response.status_code == 201, response.text


def test_logout_with_the_token_leaves_the_cookie_session_working(
    browser: Browser, client: httpx.Client, api: Any
) -> None:
    api.assert_detail(client.post("/api/logout/", headers=api.auth(browser.token)), 200)
    api.assert_detail(client.get("/api/me/", headers=api.auth(browser.token)), 401)
    still = browser.request("GET", "/api/me/")
    assert still.status_code == 200, still.text
    made = browser.request(
        "POST", "/api/chats/", json={"name": "after", "participant_ids": []}, csrf=browser.csrf
    )
    assert made.status_code == 201, made.text


def test_logout_with_the_cookie_needs_csrf_and_leaves_the_token_working(
    browser: Browser, client: httpx.Client, api: Any
) -> None:
    api.assert_detail(browser.request("POST", "/api/logout/"), 403)
    assert browser.request("GET", "/api/me/").status_code == 200

    api.assert_detail(browser.request("POST", "/api/logout/", csrf=browser.csrf), 200)
    api.assert_detail(browser.request("GET", "/api/me/"), 401)
    me = client.get("/api/me/", headers=api.auth(browser.token))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == browser.user["id"]


def test_each_login_gets_its_own_session(client: httpx.Client, api: Any) -> None:
    user, _ = api.register(client)
    login = {"username": user["username"], "password": api.PASSWORD}
    one = Browser(client, api, client.post("/api/login/", json=login))
    two = Browser(client, api, client.post("/api/login/", json=login))
    assert one.session != two.session
    api.assert_detail(one.request("POST", "/api/logout/", csrf=one.csrf), 200)
    api.assert_detail(one.request("GET", "/api/me/"), 401)
    assert two.request("GET", "/api/me/").status_code == 200
