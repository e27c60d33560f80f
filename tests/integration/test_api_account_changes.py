"""Changing one's own account (PATCH /api/me/) and an administrator's password reset,
over a live server: what changes, what is refused, and who stays logged in."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import websockets

NEW_PASSWORD = "Harbor-violet-2290"
RECV_GUARD = 20.0


async def close_code(ws: websockets.ClientConnection) -> int | None:
    """Read until the server closes the socket; the code it sent."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), RECV_GUARD)
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


def test_me_shows_the_admin_flag(client: httpx.Client, api: Any, admin: dict[str, Any]) -> None:
    _, token = api.register(client)
    mine = client.get("/api/me/", headers=api.auth(token))
    assert mine.status_code == 200
    api.assert_me(mine.json())
    assert mine.json()["is_admin"] is False
    theirs = client.get("/api/me/", headers=api.auth(admin["token"]))
    assert theirs.json()["is_admin"] is True


def test_patch_me_changes_the_email(client: httpx.Client, api: Any) -> None:
    _, token = api.register(client)
    changed = client.patch("/api/me/", json={"email": "new@example.org"}, headers=api.auth(token))
    assert changed.status_code == 200, changed.text
    api.assert_me(changed.json())
    assert changed.json()["email"] == "new@example.org"
    assert client.get("/api/me/", headers=api.auth(token)).json()["email"] == "new@example.org"


def test_patch_me_refuses_bad_values_on_their_fields(client: httpx.Client, api: Any) -> None:
    _, token = api.register(client)
    for body, fields in [
        ({"email": "nope"}, {"email"}),
        ({"email": None}, {"email"}),
        ({"password": NEW_PASSWORD}, {"current_password"}),
        ({"password": "short", "current_password": api.PASSWORD}, {"password"}),
        ({"password": NEW_PASSWORD, "current_password": "wrong one"}, {"current_password"}),
        ({"password": 12345678, "current_password": api.PASSWORD}, {"password"}),
    ]:
        response = client.patch("/api/me/", json=body, headers=api.auth(token))
        api.assert_field_error(response, *fields)
    me = client.get("/api/me/", headers=api.auth(token))
    assert me.status_code == 200  # still logged in, nothing changed


def test_patch_me_needs_credentials(client: httpx.Client, api: Any) -> None:
    response = client.patch("/api/me/", json={"email": "x@example.org"})
    api.assert_detail(response, 401)


async def test_a_password_change_logs_out_every_other_credential_and_socket(
    server: Any, api: Any
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        name = api.unique()
        body = {"username": name, "password": api.PASSWORD, "password_confirm": api.PASSWORD}
        registered = await http.post("/api/register/", json=body)
        assert registered.status_code == 201
        http.cookies.clear()
        keep = registered.json()["token"]
        login = await http.post("/api/login/", json={"username": name, "password": api.PASSWORD})
        other = login.json()["token"]
        session = f"sessionid={login.cookies['sessionid']}"
        http.cookies.clear()
        created = await http.post("/api/chats/", json={"name": "c"}, headers=api.auth(keep))
        chat = created.json()["id"]
        ws_base = server.url.replace("http://", "ws://")
        kept = await websockets.connect(f"{ws_base}/ws/chat/{chat}/?token={keep}")
        doomed = await websockets.connect(f"{ws_base}/ws/chat/{chat}/?token={other}")
        try:
            change = {"password": NEW_PASSWORD, "current_password": api.PASSWORD}
            changed = await http.patch("/api/me/", json=change, headers=api.auth(keep))
            assert changed.status_code == 200, changed.text

            assert await close_code(doomed) == 1008
            assert (await http.get("/api/me/", headers=api.auth(other))).status_code == 401
            cookie_me = await http.get("/api/me/", headers={"Cookie": session})
            assert cookie_me.status_code == 401
            assert (await http.get("/api/me/", headers=api.auth(keep))).status_code == 200
            await http.post(
                f"/api/chats/{chat}/send_message/", json={"content": "hi"}, headers=api.auth(keep)
            )
            frame = await asyncio.wait_for(kept.recv(), RECV_GUARD)  # still open, still live
            assert "hi" in str(frame)
            old = await http.post("/api/login/", json={"username": name, "password": api.PASSWORD})
            assert old.status_code == 401
            new = await http.post("/api/login/", json={"username": name, "password": NEW_PASSWORD})
            assert new.status_code == 200
        finally:
            await kept.close()
            await doomed.close()


def test_an_admin_sets_a_password(client: httpx.Client, api: Any, admin: dict[str, Any]) -> None:
    user, token = api.register(client)
    path = f"/api/admin/users/{user['id']}/"
    short = client.patch(path, json={"password": "short"}, headers=api.auth(admin["token"]))
    api.assert_field_error(short, "password")
    assert client.get("/api/me/", headers=api.auth(token)).status_code == 200

    done = client.patch(path, json={"password": NEW_PASSWORD}, headers=api.auth(admin["token"]))
    assert done.status_code == 200, done.text
    api.assert_admin_user(done.json())
    assert client.get("/api/me/", headers=api.auth(token)).status_code == 401
    login = {"username": user["username"], "password": NEW_PASSWORD}
    assert client.post("/api/login/", json=login).status_code == 200
