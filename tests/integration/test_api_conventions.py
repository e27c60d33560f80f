"""Conventions every endpoint shares: trailing slashes, 404/405/400/413/415 error shapes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

JSON_TYPE = {"Content-Type": "application/json"}


@pytest.fixture
def world(client: httpx.Client, api: Any) -> dict[str, Any]:
    """Two users, a chat between them and one message."""
    alice, alice_token = api.register(client)
    bob, bob_token = api.register(client)
    chat = api.create_chat(client, alice_token, ids=[bob["id"]])
    message = api.send(client, alice_token, chat["id"], "hello")
    return {
        "alice": alice,
        "token": alice_token,
        "bob": bob,
        "bob_token": bob_token,
        "chat": chat,
        "message": message,
    }


def test_every_get_path_answers_with_and_without_the_trailing_slash(
    client: httpx.Client, api: Any, world: dict[str, Any]
) -> None:
    chat_id, message_id = world["chat"]["id"], world["message"]["id"]
    headers = api.auth(world["token"])
    for path in (
        "/api/me/",
        "/api/users/",
        "/api/chats/",
        f"/api/chats/{chat_id}/",
        f"/api/chats/{chat_id}/messages/",
        "/api/messages/",
        f"/api/messages/{message_id}/",
    ):
        with_slash = client.get(path, headers=headers)
        without = client.get(path.rstrip("/"), headers=headers)
        assert with_slash.status_code == 200, (path, with_slash.status_code, with_slash.text)
        assert without.status_code == 200, (path, without.status_code, without.text)
        assert without.json() == with_slash.json(), path


def test_post_without_the_trailing_slash_works_with_no_redirect(
    client: httpx.Client, api: Any
) -> None:
    username = api.unique()
    registered = client.post(
        "/api/register",
        json={"username": username, "password": api.PASSWORD, "password_confirm": api.PASSWORD},
    )
    client.cookies.clear()
    assert registered.status_code == 201, (registered.status_code, registered.text)
    api.assert_me(registered.json(), with_token=True)

    logged_in = client.post("/api/login", json={"username": username, "password": api.PASSWORD})
    client.cookies.clear()
    assert logged_in.status_code == 200, (logged_in.status_code, logged_in.text)
    token = logged_in.json()["token"]
    headers = api.auth(token)

    other, _ = api.register(client)
    created = client.post(
        "/api/chats", json={"name": "no slash", "participant_ids": [other["id"]]}, headers=headers
    )
    assert created.status_code == 201, (created.status_code, created.text)
    api.assert_chat(created.json())
    chat_id = created.json()["id"]

    sent = client.post(
        f"/api/chats/{chat_id}/send_message", json={"content": "no slash"}, headers=headers
    )
    assert sent.status_code == 201, (sent.status_code, sent.text)
    api.assert_message(sent.json())
    assert sent.json()["content"] == "no slash"

    logged_out = client.post("/api/logout", headers=headers)
    assert logged_out.status_code == 200, (logged_out.status_code, logged_out.text)
    api.assert_detail(client.get("/api/me", headers=headers), 401)


@pytest.mark.parametrize(
    "path",
    [
        "/api/nope/",
        "/nope",
        "/api/chats/abc/",
        "/api/chats/1/bogus/",
        "/api/chats/99999999999999999999999999/",
        "/api/chats/0/",
        "/api/chats/-1/",
        "/api/messages/0/",
        "/api/messages/99999999999999999999999999/",
        "/api/messages/abc/",
        "/api/chats/99999999999999999999999999/messages/",
    ],
)
def test_unknown_paths_are_404_detail(
    client: httpx.Client, api: Any, world: dict[str, Any], path: str
) -> None:
    api.assert_detail(client.get(path, headers=api.auth(world["token"])), 404)


def test_unknown_path_without_credentials_is_404(client: httpx.Client, api: Any) -> None:
    api.assert_detail(client.get("/definitely/not/here/"), 404)
    api.assert_detail(client.post("/api/definitely-not-here/", json={}), 404)


def test_unknown_chat_send_is_404(client: httpx.Client, api: Any, world: dict[str, Any]) -> None:
    response = client.post(
        "/api/chats/99999999999999999999999999/send_message/",
        json={"content": "x"},
        headers=api.auth(world["token"]),
    )
    api.assert_detail(response, 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/api/me/"),
        ("POST", "/api/me/"),
        ("GET", "/api/login/"),
        ("GET", "/api/register/"),
        ("GET", "/api/logout/"),
        ("PUT", "/api/chats/"),
        ("DELETE", "/api/chats/"),
        ("GET", "/api/chats/{chat}/send_message/"),
        ("POST", "/api/chats/{chat}/messages/"),
        ("PUT", "/api/messages/{message}/"),
        ("POST", "/api/users/"),
        ("POST", "/api/chats/{chat}/"),
        ("GET", "/api/chats/{chat}/leave/"),
    ],
)
def test_wrong_method_is_405_detail(
    client: httpx.Client, api: Any, world: dict[str, Any], method: str, path: str
) -> None:
    url = path.format(chat=world["chat"]["id"], message=world["message"]["id"])
    response = client.request(method, url, headers=api.auth(world["token"]), json={})
    api.assert_detail(response, 405)
    api.assert_detail(
        client.request(method, url.rstrip("/"), headers=api.auth(world["token"]), json={}), 405
    )


def _post_targets(world: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    token = {"Authorization": f"Token {world['token']}"}
    return [
        ("/api/register/", {}),
        ("/api/login/", {}),
        ("/api/chats/", token),
        (f"/api/chats/{world['chat']['id']}/send_message/", token),
    ]


def test_malformed_json_is_400_detail(
    client: httpx.Client, api: Any, world: dict[str, Any]
) -> None:
    for path, headers in _post_targets(world):
        for raw in (b'{"username": ', b"{'single': 'quotes'}", b"{,}", b"nul", b'{"a": 1} x'):
            response = client.post(path, content=raw, headers={**headers, **JSON_TYPE})
            api.assert_detail(response, 400)


@pytest.mark.parametrize("raw", [b"[]", b'["x"]', b'"text"', b"5", b"true", b"null"])
def test_json_that_is_not_an_object_is_400_non_field_errors(
    client: httpx.Client, api: Any, world: dict[str, Any], raw: bytes
) -> None:
    for path, headers in _post_targets(world):
        response = client.post(path, content=raw, headers={**headers, **JSON_TYPE})
        body = api.assert_field_error(response, "non_field_errors")
        assert "non_field_errors" in body, (path, body)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/xml", "application/octet-stream", "image/png"],
)
def test_a_body_that_is_not_json_or_a_form_is_415_detail(
    client: httpx.Client, api: Any, world: dict[str, Any], content_type: str
) -> None:
    for path, headers in _post_targets(world):
        response = client.post(
            path,
            content=b'{"username": "x", "content": "x"}',
            headers={**headers, "Content-Type": content_type},
        )
        api.assert_detail(response, 415)


def test_json_with_a_charset_parameter_is_accepted(
    client: httpx.Client, api: Any, world: dict[str, Any]
) -> None:
    response = client.post(
        f"/api/chats/{world['chat']['id']}/send_message/",
        content='{"content": "caf\u00e9"}'.encode(),
        headers={**api.auth(world["token"]), "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["content"] == "caf\u00e9"


def test_a_body_over_the_default_limit_is_413_detail(
    client: httpx.Client, api: Any, world: dict[str, Any]
) -> None:
    oversized = 262144 + 1024
    for path, headers in _post_targets(world):
        body = b'{"content": "' + b"x" * oversized + b'", "username": "x"}'
        response = client.post(path, content=body, headers={**headers, **JSON_TYPE})
        api.assert_detail(response, 413)


def test_the_body_limit_is_configurable_and_covers_chunked_bodies(
    server_factory: Any, api: Any
) -> None:
    small = server_factory(CHATCORE_MAX_BODY_BYTES="2048")
    with small.client() as http:
        user, token = api.register(http)
        chat = api.create_chat(http, token)
        send = f"/api/chats/{chat['id']}/send_message/"
        headers = {**api.auth(token), **JSON_TYPE}

        fits = http.post(send, json={"content": "y" * 1500}, headers=api.auth(token))
        assert fits.status_code == 201, fits.text

        api.assert_detail(http.post(send, json={"content": "y" * 3000}, headers=headers), 413)
        api.assert_detail(
            http.post("/api/login/", json={"username": "x" * 3000, "password": "p"}), 413
        )

        def chunks() -> Iterator[bytes]:
            yield b'{"content": "'
            for _ in range(64):
                yield b"z" * 512
            yield b'"}'

        chunked = http.post(send, content=chunks(), headers=headers)
        api.assert_detail(chunked, 413)

        # none of the refused bodies was stored
        history = api.history(http, token, chat["id"])
        assert [m["content"] for m in history] == ["y" * 1500]
        assert user["id"] == history[0]["sender"]["id"]


@pytest.mark.parametrize(
    ("path_kind", "field", "value"),
    [
        ("register", "username", 5),
        ("register", "email", ["a@b.c"]),
        ("login", "username", 5),
        ("login", "password", None),
        ("chats", "name", 7),
        ("chats", "name", None),
        ("chats", "participant_ids", ["x"]),
        ("chats", "participant_ids", "1"),
        ("chats", "participant_ids", [1.5]),
        ("chats", "participant_ids", [True]),
        ("chats", "participant_ids", [None]),
        ("chats", "participant_usernames", [5]),
        ("chats", "participant_usernames", "name"),
        ("send", "content", 7),
        ("send", "content", None),
        ("send", "content", ["x"]),
        ("send", "content", {"text": "x"}),
        ("send", "content", True),
        ("send", "client_id", 5),
        ("send", "client_id", ["x"]),
    ],
)
def test_wrong_json_types_are_400_on_that_field(
    client: httpx.Client,
    api: Any,
    world: dict[str, Any],
    path_kind: str,
    field: str,
    value: Any,
) -> None:
    bodies: dict[str, tuple[str, dict[str, Any], dict[str, str]]] = {
        "register": (
            "/api/register/",
            {
                "username": api.unique(),
                "password": api.PASSWORD,
                "password_confirm": api.PASSWORD,
            },
            {},
        ),
        "login": (
            "/api/login/",
            {"username": world["alice"]["username"], "password": api.PASSWORD},
            {},
        ),
        "chats": (
            "/api/chats/",
            {"name": "typed", "participant_ids": [world["bob"]["id"]]},
            api.auth(world["token"]),
        ),
        "send": (
            f"/api/chats/{world['chat']['id']}/send_message/",
            {"content": "typed"},
            api.auth(world["token"]),
        ),
    }
    path, body, headers = bodies[path_kind]
    response = client.post(path, json={**body, field: value}, headers=headers)
    client.cookies.clear()
    api.assert_field_error(response, field)
