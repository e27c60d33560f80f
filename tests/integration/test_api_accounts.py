"""Accounts over HTTP: register, login, logout, me, the user directory, token expiry."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

# --- register -----------------------------------------------------------------------------


def test_register_answers_201_with_me_and_token(client: httpx.Client, api: Any) -> None:
    username = api.unique()
    response = client.post(
        "/api/register/",
        json={
            "username": username,
            "email": f"{username}@example.com",
            "password": api.PASSWORD,
            "password_confirm": api.PASSWORD,
            "user_type": "owner",
        },
    )
    assert response.status_code == 201, response.text
    body = api.assert_json(response)
    api.assert_me(body, with_token=True)
    assert body["username"] == username
    assert body["email"] == f"{username}@example.com"
    assert body["user_type"] == "owner"
    assert isinstance(body["token"], str)
    assert body["token"]
    assert "argon2" not in response.text.lower()


def test_register_defaults_to_student_and_email_is_optional(client: httpx.Client, api: Any) -> None:
    username = api.unique()
    response = client.post(
        "/api/register/",
        json={"username": username, "password": api.PASSWORD, "password_confirm": api.PASSWORD},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    api.assert_me(body, with_token=True)
    assert body["user_type"] == "student"
    assert body["email"] in ("", None)


@pytest.mark.parametrize("user_type", ["student", "staff"])
def test_register_each_user_type(client: httpx.Client, api: Any, user_type: str) -> None:
    user, token = api.register(client, user_type=user_type)
    assert user["user_type"] == user_type
    me = client.get("/api/me/", headers=api.auth(token)).json()
    assert me["user_type"] == user_type


def test_register_accepts_every_allowed_username_character_and_150_chars(
    client: httpx.Client, api: Any
) -> None:
    punctuated = "a.b+c-d_e@f" + api.unique("")
    user, _ = api.register(client, punctuated)
    assert user["username"] == punctuated
    longest = api.unique("L").ljust(150, "x")
    user, _ = api.register(client, longest)
    assert user["username"] == longest


@pytest.mark.parametrize(
    "username",
    ["", "has space", "bang!", "semi;colon", "slash/", "x" * 151, "quote'"],
    ids=["empty", "space", "bang", "semicolon", "slash", "151-chars", "quote"],
)
def test_register_rejects_bad_usernames(client: httpx.Client, api: Any, username: str) -> None:
    response = client.post(
        "/api/register/",
        json={"username": username, "password": api.PASSWORD, "password_confirm": api.PASSWORD},
    )
    api.assert_field_error(response, "username")


def test_register_rejects_a_username_taken_ignoring_case(client: httpx.Client, api: Any) -> None:
    username = api.unique("Case")
    api.register(client, username)
    for variant in (username, username.upper(), username.lower()):
        response = client.post(
            "/api/register/",
            json={
                "username": variant,
                "password": api.PASSWORD,
                "password_confirm": api.PASSWORD,
            },
        )
        api.assert_field_error(response, "username")


@pytest.mark.parametrize(
    "password",
    ["Sh0rt-p", "12345678901234", "password", "qwertyuiop"],
    ids=["seven-chars", "all-digits", "common-password", "common-qwerty"],
)
def test_register_rejects_weak_passwords(client: httpx.Client, api: Any, password: str) -> None:
    response = client.post(
        "/api/register/",
        json={"username": api.unique(), "password": password, "password_confirm": password},
    )
    api.assert_field_error(response, "password")


def test_register_rejects_the_username_as_password(client: httpx.Client, api: Any) -> None:
    username = api.unique("Zebra")
    response = client.post(
        "/api/register/",
        json={"username": username, "password": username, "password_confirm": username},
    )
    api.assert_field_error(response, "password", "non_field_errors")


def test_register_rejects_a_mismatched_confirmation(client: httpx.Client, api: Any) -> None:
    response = client.post(
        "/api/register/",
        json={
            "username": api.unique(),
            "password": api.PASSWORD,
            "password_confirm": api.PASSWORD + "x",
        },
    )
    api.assert_field_error(response, "password_confirm", "password", "non_field_errors")


def test_register_rejects_a_malformed_email(client: httpx.Client, api: Any) -> None:
    for email in ("not-an-email", "a@", "@example.com", "two@@example.com"):
        response = client.post(
            "/api/register/",
            json={
                "username": api.unique(),
                "email": email,
                "password": api.PASSWORD,
                "password_confirm": api.PASSWORD,
            },
        )
        api.assert_field_error(response, "email")


def test_register_rejects_an_unknown_user_type(client: httpx.Client, api: Any) -> None:
    for user_type in ("admin", "OWNER", "", "superuser"):
        response = client.post(
            "/api/register/",
            json={
                "username": api.unique(),
                "password": api.PASSWORD,
                "password_confirm": api.PASSWORD,
                "user_type": user_type,
            },
        )
        api.assert_field_error(response, "user_type")


def test_register_names_every_missing_field(client: httpx.Client, api: Any) -> None:
    body = api.assert_field_error(client.post("/api/register/", json={}), "username")
    assert "username" in body
    assert "password" in body


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", 5),
        ("username", None),
        ("username", ["x"]),
        ("password", 12345678),
        ("password_confirm", {"a": 1}),
        ("email", 5),
        ("user_type", ["owner"]),
        ("user_type", 1),
    ],
)
def test_register_rejects_wrong_json_types_on_their_field(
    client: httpx.Client, api: Any, field: str, value: Any
) -> None:
    body: dict[str, Any] = {
        "username": api.unique(),
        "password": api.PASSWORD,
        "password_confirm": api.PASSWORD,
        "user_type": "student",
    }
    body[field] = value
    api.assert_field_error(client.post("/api/register/", json=body), field)


# --- login --------------------------------------------------------------------------------


def test_login_answers_200_with_me_and_a_new_token_each_time(
    client: httpx.Client, api: Any
) -> None:
    user, first = api.register(client, email="login@example.com", user_type="staff")
    one = api.login(client, user["username"])
    two = api.login(client, user["username"])
    for response in (one, two):
        assert response.status_code == 200, response.text
        body = api.assert_json(response)
        api.assert_me(body, with_token=True)
        assert body["id"] == user["id"]
        assert body["username"] == user["username"]
        assert body["user_type"] == "staff"
        assert body["email"] == "login@example.com"
        assert body["date_joined"] == user["date_joined"]
    tokens = {first, one.json()["token"], two.json()["token"]}
    assert len(tokens) == 3
    for token in tokens:
        assert client.get("/api/me/", headers=api.auth(token)).status_code == 200


def test_login_failures_look_the_same_for_unknown_user_and_wrong_password(
    client: httpx.Client, api: Any
) -> None:
    user, _ = api.register(client)
    wrong_password = api.login(client, user["username"], "Not-the-password-99")
    unknown_user = api.login(client, api.unique("nobody"), "Not-the-password-99")
    api.assert_detail(wrong_password, 401)
    api.assert_detail(unknown_user, 401)
    assert wrong_password.json() == unknown_user.json()
    assert "token" not in wrong_password.text
    assert "sessionid" not in api.set_cookies(wrong_password)


def test_login_validates_its_body(client: httpx.Client, api: Any) -> None:
    api.assert_field_error(client.post("/api/login/", json={"password": api.PASSWORD}), "username")
    api.assert_field_error(client.post("/api/login/", json={"username": "someone"}), "password")
    api.assert_field_error(
        client.post("/api/login/", json={"username": 5, "password": api.PASSWORD}), "username"
    )
    api.assert_field_error(
        client.post("/api/login/", json={"username": "someone", "password": ["x"]}), "password"
    )


# --- me -----------------------------------------------------------------------------------


def test_me_returns_the_register_response_minus_token(client: httpx.Client, api: Any) -> None:
    user, token = api.register(client, email="me@example.com", user_type="owner")
    for scheme in ("Token", "Bearer"):
        response = client.get("/api/me/", headers=api.auth(token, scheme))
        assert response.status_code == 200, response.text
        me = api.assert_json(response)
        api.assert_me(me)
        assert me == user


@pytest.mark.parametrize(
    "authorization",
    [None, "Token", "Token not-a-real-token", "Bearer nope", "Basic dXNlcjpwYXNz", "x"],
    ids=["none", "bare-scheme", "bad-token", "bad-bearer", "basic", "garbage"],
)
def test_me_without_valid_credentials_is_401(
    client: httpx.Client, api: Any, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    api.assert_detail(client.get("/api/me/", headers=headers), 401)


def test_protected_endpoints_need_credentials(client: httpx.Client, api: Any) -> None:
    calls = [
        ("GET", "/api/me/"),
        ("POST", "/api/logout/"),
        ("GET", "/api/users/"),
        ("GET", "/api/chats/"),
        ("POST", "/api/chats/"),
        ("GET", "/api/chats/1/"),
        ("POST", "/api/chats/1/send_message/"),
        ("GET", "/api/chats/1/messages/"),
        ("GET", "/api/messages/"),
        ("GET", "/api/messages/1/"),
    ]
    for method, path in calls:
        json_body = {"name": "x", "content": "x"} if method == "POST" else None
        response = client.request(method, path, json=json_body)
        api.assert_detail(response, 401)


# --- logout -------------------------------------------------------------------------------


def test_logout_revokes_only_the_token_that_made_the_request(
    client: httpx.Client, api: Any
) -> None:
    user, first = api.register(client)
    second = api.login(client, user["username"]).json()["token"]
    response = client.post("/api/logout/", headers=api.auth(first))
    assert response.status_code == 200, response.text
    api.assert_detail(response, 200)
    api.assert_detail(client.get("/api/me/", headers=api.auth(first)), 401)
    api.assert_detail(client.get("/api/me/", headers=api.auth(first, "Bearer")), 401)
    api.assert_detail(client.post("/api/logout/", headers=api.auth(first)), 401)
    assert client.get("/api/me/", headers=api.auth(second)).status_code == 200
    # and a new login still works after a logout
    assert api.login(client, user["username"]).status_code == 200


def test_logout_with_bearer(client: httpx.Client, api: Any) -> None:
    _, token = api.register(client)
    response = client.post("/api/logout/", headers=api.auth(token, "Bearer"))
    api.assert_detail(response, 200)
    api.assert_detail(client.get("/api/me/", headers=api.auth(token)), 401)


# --- the user directory -------------------------------------------------------------------


def test_users_search_is_case_insensitive_substring_in_id_order(
    client: httpx.Client, api: Any
) -> None:
    stem = api.unique("dir")
    registered = [api.register(client, f"{tag}{stem}{tag}") for tag in ("a", "b", "c")]
    made = [user for user, _ in registered]
    token = registered[0][1]
    response = client.get(
        "/api/users/", params={"search": stem.upper()[2:]}, headers=api.auth(token)
    )
    assert response.status_code == 200, response.text
    users = api.assert_json(response)
    assert isinstance(users, list)
    for user in users:
        api.assert_user(user)
    assert users == [{k: u[k] for k in ("id", "username", "user_type")} for u in made]
    assert [u["id"] for u in users] == sorted(u["id"] for u in users)
    assert "next" not in response.links


def test_users_pages_with_limit_and_after(client: httpx.Client, api: Any) -> None:
    stem = api.unique("pg")
    registered = [api.register(client, f"{stem}{n}") for n in range(3)]
    made = [user for user, _ in registered]
    token = registered[0][1]
    headers = api.auth(token)

    first = client.get("/api/users/", params={"search": stem, "limit": 2}, headers=headers)
    assert first.status_code == 200, first.text
    assert [u["id"] for u in first.json()] == [u["id"] for u in made[:2]]
    assert "next" in first.links, first.headers.get("link")
    assert "prev" not in first.links
    params = api.link_params(first, "next")
    assert params["after"] == str(made[1]["id"])
    assert params["limit"] == "2"

    second = client.get(first.links["next"]["url"], headers=headers)
    assert second.status_code == 200, second.text
    assert [u["id"] for u in second.json()] == [made[2]["id"]]
    assert "next" not in second.links
    assert "prev" in second.links, second.headers.get("link")

    beyond = client.get(
        "/api/users/", params={"search": stem, "after": made[2]["id"]}, headers=headers
    )
    assert beyond.status_code == 200
    assert beyond.json() == []
    assert "next" not in beyond.links


def test_users_without_search_lists_everyone_in_id_order(client: httpx.Client, api: Any) -> None:
    user, token = api.register(client)
    response = client.get(
        "/api/users/", params={"after": user["id"] - 1, "limit": 1}, headers=api.auth(token)
    )
    assert response.status_code == 200
    assert response.json() == [{k: user[k] for k in ("id", "username", "user_type")}]


@pytest.mark.parametrize(
    ("field", "value"),
    [("limit", "0"), ("limit", "abc"), ("limit", "-3"), ("after", "x"), ("after", "-1")],
)
def test_users_rejects_bad_paging_params(
    client: httpx.Client, api: Any, field: str, value: str
) -> None:
    _, token = api.register(client)
    response = client.get("/api/users/", params={field: value}, headers=api.auth(token))
    api.assert_field_error(response, field)


# --- token lifetime -----------------------------------------------------------------------


def test_tokens_expire_after_the_configured_ttl(server_factory: Any, api: Any) -> None:
    ttl = 3
    short = server_factory(CHATCORE_TOKEN_TTL=str(ttl))
    with short.client() as http:
        user, token = api.register(http)
        issued = time.monotonic()
        assert http.get("/api/me/", headers=api.auth(token)).status_code == 200
        time.sleep(max(0.0, issued + ttl + 1.5 - time.monotonic()))
        api.assert_detail(http.get("/api/me/", headers=api.auth(token)), 401)
        fresh = api.login(http, user["username"])
        assert fresh.status_code == 200, fresh.text
        assert http.get("/api/me/", headers=api.auth(fresh.json()["token"])).status_code == 200


def test_users_search_is_a_literal_substring_not_a_pattern(client: httpx.Client, api: Any) -> None:
    stem = api.unique("lit")
    user, token = api.register(client, f"{stem}aXc")
    headers = api.auth(token)
    assert client.get("/api/users/", params={"search": "%"}, headers=headers).json() == []
    assert client.get("/api/users/", params={"search": f"{stem}a_c"}, headers=headers).json() == []
    assert client.get("/api/users/", params={"search": f"{stem}a%"}, headers=headers).json() == []
    found = client.get("/api/users/", params={"search": f"{stem}AX"}, headers=headers).json()
    assert [u["id"] for u in found] == [user["id"]]
