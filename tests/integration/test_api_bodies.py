"""Request bodies as DRF's default parsers took them: JSON, urlencoded forms and
multipart forms, with the same validation and the same errors, lists as repeated keys;
and one rule for every body: a key the operation does not take is a 400 naming it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from adapters.http.api import OPERATIONS

ENCODINGS = ["json", "urlencoded", "multipart"]
BOUNDARY = "chatcore-test-boundary"


def send(
    client: httpx.Client,
    method: str,
    path: str,
    fields: dict[str, Any],
    encoding: str,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Send ``fields`` in one of the three encodings: in a form, a list is a repeated
    key and a boolean the text a browser would send."""
    headers = dict(headers or {})
    if encoding == "json":
        return client.request(method, path, json=fields, headers=headers)
    pairs = [
        (key, str(item).lower() if isinstance(item, bool) else str(item))
        for key, value in fields.items()
        for item in (value if isinstance(value, list) else [value])
    ]
    if encoding == "urlencoded":
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return client.request(method, path, content=urlencode(pairs), headers=headers)
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
        for key, value in pairs
    ]
    headers["Content-Type"] = f"multipart/form-data; boundary={BOUNDARY}"
    body = "".join(parts) + f"--{BOUNDARY}--\r\n"
    return client.request(method, path, content=body.encode(), headers=headers)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_register_login_and_chat_in_every_encoding(
    client: httpx.Client, api: Any, encoding: str
) -> None:
    name = api.unique()
    form = {"username": name, "password": api.PASSWORD, "password_confirm": api.PASSWORD}
    registered = send(client, "POST", "/api/register/", {**form, "user_type": "staff"}, encoding)
    client.cookies.clear()
    assert registered.status_code == 201, registered.text
    assert registered.json()["user_type"] == "staff"
    login = {"username": name, "password": api.PASSWORD}
    logged_in = send(client, "POST", "/api/login/", login, encoding)
    client.cookies.clear()
    assert logged_in.status_code == 200, logged_in.text
    auth = api.auth(logged_in.json()["token"])

    bob, _ = api.register(client)
    carol, _ = api.register(client)
    draft = {
        "name": "by form",
        "participant_ids": [bob["id"], carol["id"]],
        "participant_usernames": [carol["username"]],
    }
    created = send(client, "POST", "/api/chats/", draft, encoding, auth)
    assert created.status_code == 201, created.text
    members = {u["id"] for u in created.json()["participants"]}
    assert members == {registered.json()["id"], bob["id"], carol["id"]}

    path = f"/api/chats/{created.json()['id']}/send_message/"
    message = {"content": "sent as a form", "client_id": "form-1"}
    sent = send(client, "POST", path, message, encoding, auth)
    assert sent.status_code == 201, sent.text
    again = send(client, "POST", path, message, encoding, auth)
    assert again.status_code == 200
    assert again.json() == sent.json()

    changed = send(client, "PATCH", "/api/me/", {"email": "form@example.org"}, encoding, auth)
    assert changed.status_code == 200, changed.text
    assert changed.json()["email"] == "form@example.org"


@pytest.mark.parametrize("encoding", ENCODINGS[1:])
def test_a_form_gets_exactly_the_errors_json_gets(
    client: httpx.Client, api: Any, encoding: str
) -> None:
    _, token = api.register(client)
    auth = api.auth(token)
    cases: list[tuple[str, str, dict[str, Any], dict[str, str] | None]] = [
        ("POST", "/api/register/", {"username": "bad name", "password": "1"}, None),
        ("POST", "/api/register/", {"username": api.unique(), "user_type": "admin"}, None),
        ("POST", "/api/login/", {"username": "x"}, None),
        ("POST", "/api/chats/", {"name": " ", "participant_ids": ["x", 0, 999999999]}, auth),
        ("POST", "/api/chats/", {"participant_usernames": ["nobody-at-all"]}, auth),
        ("PATCH", "/api/me/", {"email": "nope", "password": "short"}, auth),
        ("POST", "/api/register/", {"username": "u", "surprise": "x"}, None),
    ]
    for method, path, fields, headers in cases:
        as_json = send(client, method, path, fields, "json", headers)
        as_form = send(client, method, path, fields, encoding, headers)
        client.cookies.clear()
        assert as_json.status_code == 400, as_json.text
        assert (as_form.status_code, as_form.json()) == (400, as_json.json()), (path, fields)


def test_an_admin_edit_takes_form_booleans(
    client: httpx.Client, api: Any, admin: dict[str, Any]
) -> None:
    user, _ = api.register(client)
    path = f"/api/admin/users/{user['id']}/"
    auth = api.auth(admin["token"])
    for encoding in ENCODINGS[1:]:
        for flag in (True, False):
            edit = {"is_admin": flag, "user_type": "staff"}
            response = send(client, "PATCH", path, edit, encoding, auth)
            assert response.status_code == 200, response.text
            assert response.json()["is_admin"] is flag
        bad = send(client, "PATCH", path, {"is_active": "maybe"}, encoding, auth)
        api.assert_field_error(bad, "is_active")


def test_django_forms_csrf_field_is_ignored_and_files_are_refused(
    client: httpx.Client, api: Any
) -> None:
    name = api.unique()
    form = {
        "username": name,
        "password": api.PASSWORD,
        "password_confirm": api.PASSWORD,
        "csrfmiddlewaretoken": "abc",
    }
    assert send(client, "POST", "/api/register/", form, "urlencoded").status_code == 201
    client.cookies.clear()
    upload = client.post(
        "/api/login/",
        data={"username": name},
        files={"password": ("password.txt", b"secret", "text/plain")},
    )
    api.assert_detail(upload, 400)


BODY_OPERATIONS = [op for op in OPERATIONS if op.body is not None]


@pytest.mark.parametrize("op", BODY_OPERATIONS, ids=lambda op: f"{op.method} {op.path}")
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_body_refuses_a_key_it_does_not_take_by_name(
    client: httpx.Client, api: Any, admin: dict[str, Any], op: Any, encoding: str
) -> None:
    user, _ = api.register(client)
    chat = api.create_chat(client, admin["token"], ids=[user["id"]])
    path = op.path.format(chat_id=chat["id"], user_id=user["id"], message_id=1)
    headers = api.auth(admin["token"]) if op.auth else None
    fields = {"username_typo": "x", "id": 5}  # a typo, and a field the response shows
    response = send(client, op.method, path, fields, encoding, headers)
    client.cookies.clear()
    body = api.assert_field_error(response, "username_typo", "id")
    assert body["username_typo"] == body["id"] == ["Unknown field."]


def test_the_admin_edit_refuses_a_username_change_instead_of_ignoring_it(
    client: httpx.Client, api: Any, admin: dict[str, Any]
) -> None:
    user, _ = api.register(client)
    path = f"/api/admin/users/{user['id']}/"
    response = client.patch(
        path, json={"username": "renamed", "is_admin": True}, headers=api.auth(admin["token"])
    )
    api.assert_field_error(response, "username")
    listed = client.get(
        f"/api/admin/users/?search={user['username']}", headers=api.auth(admin["token"])
    )
    assert listed.json()[0]["is_admin"] is False  # nothing of the refused edit was applied
