"""The admin surface: only admins (made by `createsuperuser` or by another admin) see it;
to anyone else, with or without credentials, its paths answer as unknown ones (404)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


@pytest.fixture
def scene(client: httpx.Client, api: Any) -> dict[str, Any]:
    """An owner (no admin rights) and a student in a chat with two messages."""
    owner, owner_token = api.register(client, user_type="owner", email="own@example.com")
    student, student_token = api.register(client)
    chat = api.create_chat(client, owner_token, ids=[student["id"]])
    messages = [
        api.send(client, owner_token, chat["id"], "first"),
        api.send(client, student_token, chat["id"], "second"),
    ]
    return {
        "owner": owner,
        "owner_token": owner_token,
        "student": student,
        "student_token": student_token,
        "chat": chat,
        "messages": messages,
    }


def _admin_calls(scene: dict[str, Any]) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("GET", "/api/admin/users/", None),
        ("PATCH", f"/api/admin/users/{scene['student']['id']}/", {"user_type": "staff"}),
        ("DELETE", f"/api/admin/users/{scene['student']['id']}/", None),
        ("GET", "/api/admin/chats/", None),
        ("DELETE", f"/api/admin/chats/{scene['chat']['id']}/", None),
        ("GET", "/api/admin/messages/", None),
        ("DELETE", f"/api/admin/messages/{scene['messages'][0]['id']}/", None),
    ]


def _seen(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    """All a caller can tell of a response (less the Date header)."""
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "date"]
    return response.status_code, response.content, sorted(headers)


def test_admin_endpoints_are_hidden_from_everyone_else(
    client: httpx.Client, api: Any, scene: dict[str, Any]
) -> None:
    """Anonymous, a bad token, a non-admin's token, and a non-admin's cookie session
    without its CSRF header (which would be a 403 on a real path), with the body and query
    an admin might send, broken ones too, and methods the path lacks: the same bytes as an
    unknown path, so nothing tells a stranger these paths exist."""
    login = client.post(
        "/api/login/", json={"username": scene["owner"]["username"], "password": api.PASSWORD}
    )
    session = api.set_cookies(login)["sessionid"][0]
    client.cookies.clear()
    callers = [
        {},
        api.auth("not-a-token"),
        {"Authorization": "Token"},
        api.auth(scene["owner_token"]),
        api.auth(scene["student_token"], "Bearer"),
        {"Cookie": f"sessionid={session}"},
    ]
    for method, path, body in _admin_calls(scene):
        for other in (method, "PUT", "POST", "OPTIONS"):
            for headers in callers:
                for query, sent in (("", body), ("?limit=abc&after=-1", {"user_type": 5})):
                    hidden = client.request(other, path + query, json=sent, headers=headers)
                    unknown = client.request(
                        other, "/api/nonexistent/" + query, json=sent, headers=headers
                    )
                    assert _seen(hidden) == _seen(unknown), (other, path, headers)
                    api.assert_detail(hidden, 404)
                    assert "www-authenticate" not in hidden.headers
    # nothing happened
    assert api.history(client, scene["owner_token"], scene["chat"]["id"]) == scene["messages"]
    me = client.get("/api/me/", headers=api.auth(scene["student_token"])).json()
    assert me["user_type"] == "student"


def test_admin_user_list(
    client: httpx.Client, api: Any, admin: dict[str, Any], scene: dict[str, Any]
) -> None:
    headers = api.auth(admin["token"])
    response = client.get(
        "/api/admin/users/", params={"search": scene["owner"]["username"]}, headers=headers
    )
    assert response.status_code == 200, response.text
    users = api.assert_json(response)
    assert isinstance(users, list)
    assert len(users) == 1
    api.assert_admin_user(users[0])
    owner = scene["owner"]
    assert users[0] == {
        "id": owner["id"],
        "username": owner["username"],
        "email": "own@example.com",
        "user_type": "owner",
        "date_joined": owner["date_joined"],
        "is_admin": False,
        "is_active": True,
    }

    found = client.get(
        "/api/admin/users/", params={"search": admin["username"].upper()}, headers=headers
    ).json()
    assert [u["id"] for u in found] == [admin["user"]["id"]]
    assert found[0]["is_admin"] is True
    assert found[0]["is_active"] is True
    assert found[0]["email"] == f"{admin['username']}@example.com"

    page = client.get(
        "/api/admin/users/", params={"after": owner["id"] - 1, "limit": 2}, headers=headers
    )
    assert page.status_code == 200, page.text
    listed = page.json()
    assert len(listed) == 2
    for user in listed:
        api.assert_admin_user(user)
    assert listed[0]["id"] == owner["id"]
    assert listed[1]["id"] > owner["id"]

    everyone = client.get("/api/admin/users/", params={"limit": 1000}, headers=headers).json()
    ids = [u["id"] for u in everyone]
    assert ids == sorted(ids)


@pytest.mark.parametrize(
    ("field", "value"), [("limit", "0"), ("limit", "abc"), ("after", "x"), ("after", "-1")]
)
def test_admin_lists_reject_bad_paging_params(
    client: httpx.Client, api: Any, admin: dict[str, Any], field: str, value: str
) -> None:
    for path in ("/api/admin/users/", "/api/admin/chats/", "/api/admin/messages/"):
        response = client.get(path, params={field: value}, headers=api.auth(admin["token"]))
        api.assert_field_error(response, field)


def test_admin_changes_a_user_type(
    client: httpx.Client, api: Any, admin: dict[str, Any], scene: dict[str, Any]
) -> None:
    path = f"/api/admin/users/{scene['student']['id']}/"
    response = client.patch(path, json={"user_type": "staff"}, headers=api.auth(admin["token"]))
    assert response.status_code == 200, response.text
    changed = api.assert_json(response)
    api.assert_admin_user(changed)
    assert changed["id"] == scene["student"]["id"]
    assert changed["user_type"] == "staff"
    assert changed["is_active"] is True
    assert changed["is_admin"] is False
    me = client.get("/api/me/", headers=api.auth(scene["student_token"])).json()
    assert me["user_type"] == "staff"

    no_slash = client.patch(
        path.rstrip("/"), json={"user_type": "owner"}, headers=api.auth(admin["token"])
    )
    assert no_slash.status_code == 200, no_slash.text
    assert no_slash.json()["user_type"] == "owner"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("user_type", "admin"),
        ("user_type", 3),
        ("user_type", None),
        ("is_active", "no"),
        ("is_active", None),
        ("is_admin", "yes"),
        ("is_admin", 1),
    ],
)
def test_admin_patch_validates_its_fields(
    client: httpx.Client,
    api: Any,
    admin: dict[str, Any],
    scene: dict[str, Any],
    field: str,
    value: Any,
) -> None:
    response = client.patch(
        f"/api/admin/users/{scene['student']['id']}/",
        json={field: value},
        headers=api.auth(admin["token"]),
    )
    api.assert_field_error(response, field)
    me = client.get("/api/me/", headers=api.auth(scene["student_token"])).json()
    assert me["user_type"] == "student"


def test_admin_patch_of_an_unknown_user_is_404(
    client: httpx.Client, api: Any, admin: dict[str, Any]
) -> None:
    response = client.patch(
        "/api/admin/users/987654321/", json={"is_active": False}, headers=api.auth(admin["token"])
    )
    api.assert_detail(response, 404)
    api.assert_detail(
        client.delete("/api/admin/users/987654321/", headers=api.auth(admin["token"])), 404
    )


def test_deactivating_a_user_locks_them_out_until_reactivated(
    client: httpx.Client, api: Any, admin: dict[str, Any], scene: dict[str, Any]
) -> None:
    student = scene["student"]
    path = f"/api/admin/users/{student['id']}/"
    headers = api.auth(admin["token"])
    second_token = api.login(client, student["username"]).json()["token"]

    off = client.patch(path, json={"is_active": False}, headers=headers)
    assert off.status_code == 200, off.text
    assert off.json()["is_active"] is False
    for token in (scene["student_token"], second_token):
        api.assert_detail(client.get("/api/me/", headers=api.auth(token)), 401)
        api.assert_detail(
            client.post(
                f"/api/chats/{scene['chat']['id']}/send_message/",
                json={"content": "still here?"},
                headers=api.auth(token),
            ),
            401,
        )
    api.assert_detail(api.login(client, student["username"]), 401)

    on = client.patch(path, json={"is_active": True}, headers=headers)
    assert on.status_code == 200, on.text
    assert on.json()["is_active"] is True
    again = api.login(client, student["username"])
    assert again.status_code == 200, again.text
    assert client.get("/api/me/", headers=api.auth(again.json()["token"])).status_code == 200


def test_admin_rights_are_granted_and_revoked_by_an_admin(
    client: httpx.Client, api: Any, admin: dict[str, Any], scene: dict[str, Any]
) -> None:
    owner_headers = api.auth(scene["owner_token"])
    path = f"/api/admin/users/{scene['owner']['id']}/"
    api.assert_detail(client.get("/api/admin/users/", headers=owner_headers), 404)

    granted = client.patch(path, json={"is_admin": True}, headers=api.auth(admin["token"]))
    assert granted.status_code == 200, granted.text
    assert granted.json()["is_admin"] is True
    assert granted.json()["user_type"] == "owner"
    listed = client.get("/api/admin/users/", headers=owner_headers)
    assert listed.status_code == 200, listed.text

    revoked = client.patch(path, json={"is_admin": False}, headers=api.auth(admin["token"]))
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["is_admin"] is False
    api.assert_detail(client.get("/api/admin/users/", headers=owner_headers), 404)


def test_deleting_a_user(client: httpx.Client, api: Any, admin: dict[str, Any]) -> None:
    doomed, doomed_token = api.register(client)
    watcher, watcher_token = api.register(client)
    path = f"/api/admin/users/{doomed['id']}/"
    response = client.delete(path, headers=api.auth(admin["token"]))
    assert response.status_code == 204, response.text
    assert response.content == b""

    api.assert_detail(client.get("/api/me/", headers=api.auth(doomed_token)), 401)
    api.assert_detail(api.login(client, doomed["username"]), 401)
    public = client.get(
        "/api/users/", params={"search": doomed["username"]}, headers=api.auth(watcher_token)
    )
    assert public.json() == []
    private = client.get(
        "/api/admin/users/",
        params={"search": doomed["username"]},
        headers=api.auth(admin["token"]),
    )
    assert private.json() == []
    api.assert_detail(client.delete(path, headers=api.auth(admin["token"])), 404)
    api.assert_detail(
        client.patch(path, json={"is_active": True}, headers=api.auth(admin["token"])), 404
    )
    refused = client.post(
        "/api/chats/",
        json={"name": "x", "participant_ids": [doomed["id"]]},
        headers=api.auth(watcher_token),
    )
    api.assert_field_error(refused, "participant_ids")
    assert watcher["id"] != doomed["id"]


def test_admin_chat_list_and_delete(
    client: httpx.Client, api: Any, admin: dict[str, Any], scene: dict[str, Any]
) -> None:
    headers = api.auth(admin["token"])
    chat = scene["chat"]
    response = client.get(
        "/api/admin/chats/", params={"after": chat["id"] - 1, "limit": 1}, headers=headers
    )
    assert response.status_code == 200, response.text
    chats = api.assert_json(response)
    assert isinstance(chats, list)
    assert len(chats) == 1
    api.assert_chat(chats[0])
    assert chats[0]["id"] == chat["id"]
    assert chats[0]["last_message"] == scene["messages"][-1]

    everything = client.get("/api/admin/chats/", params={"limit": 1000}, headers=headers).json()
    for listed in everything:
        api.assert_chat(listed)

    deleted = client.delete(f"/api/admin/chats/{chat['id']}/", headers=headers)
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    for token in (scene["owner_token"], scene["student_token"]):
        member = api.auth(token)
        api.assert_detail(client.get(f"/api/chats/{chat['id']}/", headers=member), 404)
        api.assert_detail(client.get(f"/api/chats/{chat['id']}/messages/", headers=member), 404)
        api.assert_detail(
            client.post(
                f"/api/chats/{chat['id']}/send_message/", json={"content": "x"}, headers=member
            ),
            404,
        )
        for message in scene["messages"]:
            api.assert_detail(client.get(f"/api/messages/{message['id']}/", headers=member), 404)
        assert client.get("/api/chats/", headers=member).json() == []
        assert client.get("/api/messages/", headers=member).json() == []
    api.assert_detail(client.delete(f"/api/admin/chats/{chat['id']}/", headers=headers), 404)


def test_admin_message_list_and_delete(
    client: httpx.Client, api: Any, admin: dict[str, Any], scene: dict[str, Any]
) -> None:
    headers = api.auth(admin["token"])
    chat_id = scene["chat"]["id"]
    first, second = scene["messages"]
    response = client.get("/api/admin/messages/", params={"chat": chat_id}, headers=headers)
    assert api.assert_page(response) == [first, second]
    older = client.get(
        "/api/admin/messages/", params={"chat": chat_id, "before": second["id"]}, headers=headers
    )
    assert api.assert_page(older) == [first]
    newer = client.get(
        "/api/admin/messages/", params={"chat": chat_id, "after": first["id"]}, headers=headers
    )
    assert api.assert_page(newer) == [second]
    limited = client.get(
        "/api/admin/messages/", params={"chat": chat_id, "limit": 1}, headers=headers
    )
    assert api.assert_page(limited) == [second]
    across = client.get(
        "/api/admin/messages/", params={"after": first["id"] - 1, "limit": 1}, headers=headers
    )
    assert api.assert_page(across) == [first]

    deleted = client.delete(f"/api/admin/messages/{first['id']}/", headers=headers)
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    member = api.auth(scene["student_token"])
    api.assert_detail(client.get(f"/api/messages/{first['id']}/", headers=member), 404)
    assert api.history(client, scene["student_token"], chat_id) == [second]
    assert api.assert_page(
        client.get("/api/admin/messages/", params={"chat": chat_id}, headers=headers)
    ) == [second]
    api.assert_detail(client.delete(f"/api/admin/messages/{first['id']}/", headers=headers), 404)


def test_admin_cookie_session_writes_need_csrf(
    client: httpx.Client, api: Any, admin: dict[str, Any], scene: dict[str, Any]
) -> None:
    login = client.post(
        "/api/login/", json={"username": admin["username"], "password": api.PASSWORD}
    )
    assert login.status_code == 200, login.text
    client.cookies.clear()
    cookies = api.set_cookies(login)
    session = cookies.get("sessionid", ("", {}))[0]
    csrf = cookies.get("csrftoken", ("", {}))[0]
    assert session
    assert csrf
    cookie = {"Cookie": f"sessionid={session}; csrftoken={csrf}"}
    target = f"/api/admin/messages/{scene['messages'][0]['id']}/"

    assert client.get("/api/admin/users/", headers=cookie).status_code == 200
    api.assert_detail(client.delete(target, headers=cookie), 403)
    assert api.history(client, scene["owner_token"], scene["chat"]["id"]) == scene["messages"]
    done = client.delete(target, headers={**cookie, "X-CSRFToken": csrf})
    assert done.status_code == 204, done.text
