"""No credential reaches the server's log (issue 8, item 7): a real server with its access
log on goes through every way a credential travels (a body's password, the Authorization
header, the session and CSRF cookies, ``?token=`` on a WebSocket and on plain HTTP, failed
and refused requests), then its whole log is searched for every credential used."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed


def _password() -> str:
    return f"Pw-{secrets.token_urlsafe(12)}"


async def _socket_round(ws_base: str, chat_id: int, query: str) -> int | None:
    """Open the chat's socket with ``query``, send one frame, close; the close code."""
    try:
        async with websockets.connect(f"{ws_base}/ws/chat/{chat_id}/?{query}") as ws:
            await ws.send('{"content": "hello over the socket"}')
            with contextlib.suppress(TimeoutError, ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            await ws.close()
            return ws.close_code
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


def test_no_credential_reaches_the_log(server_factory: Any, api: Any) -> None:
    server = server_factory()
    used: list[str] = []  # every credential sent or received

    with server.client() as http:
        password = _password()
        used.append(password)
        username = api.unique("logged")
        user, token = api.register(http, username, password=password, password_confirm=password)
        used.append(token)

        login = http.post("/api/login/", json={"username": username, "password": password})
        assert login.status_code == 200, login.text
        cookies = api.set_cookies(login)
        http.cookies.clear()
        session, csrf, login_token = (
            cookies["sessionid"][0],
            cookies["csrftoken"][0],
            login.json()["token"],
        )
        used += [session, csrf, login_token]
        by_cookie = {"Cookie": f"sessionid={session}; csrftoken={csrf}"}

        assert http.get("/api/me/", headers=api.auth(token)).status_code == 200
        assert http.get("/api/me/", headers={"Authorization": f"Bearer {token}"}).status_code in (
            200,
            401,
        )
        assert http.get("/api/me/", headers=by_cookie).status_code == 200
        assert http.get("/api/me/", params={"token": token}).status_code == 401
        chat = api.create_chat(http, token)

        # Refused and failing requests carry credentials too.
        wrong = _password()
        used.append(wrong)
        api.assert_detail(
            http.post("/api/login/", json={"username": username, "password": wrong}), 401
        )
        mismatch = _password()
        used.append(mismatch)
        refused = http.post(
            "/api/register/",
            json={"username": api.unique(), "password": mismatch, "password_confirm": "other"},
        )
        assert refused.status_code == 400
        broken = _password()
        used.append(broken)
        bad_json = http.post(
            "/api/login/",
            content=f'{{"username": "{username}", "password": "{broken}"',
            headers={"Content-Type": "application/json"},
        )
        assert bad_json.status_code == 400
        stray = [secrets.token_urlsafe(16) for _ in range(3)]
        used += stray
        query = {"password": stray[0], "sessionid": stray[1], "csrftoken": stray[2], "limit": "5"}
        assert http.get("/api/users/", params=query, headers=api.auth(token)).status_code == 200
        forged = secrets.token_urlsafe(16)
        used.append(forged)
        no_csrf = http.post("/api/logout/", headers={**by_cookie, "X-CSRFToken": forged})
        assert no_csrf.status_code == 403

        ws_base = server.url.replace("http://", "ws://")
        bogus = secrets.token_urlsafe(20)
        used.append(bogus)
        assert asyncio.run(_socket_round(ws_base, chat["id"], f"token={token}&after=0")) == 1000
        assert asyncio.run(_socket_round(ws_base, chat["id"], f"token={bogus}")) == 4401

        logout = http.post("/api/logout/", headers={**by_cookie, "X-CSRFToken": csrf})
        assert logout.status_code == 200, logout.text
        assert http.post("/api/logout/", headers=api.auth(login_token)).status_code == 200
        assert http.get("/api/me/", headers=api.auth(login_token)).status_code == 401
        assert user["username"] == username

    log = server.output()
    # The log did record these requests (so the search below searched something).
    assert '"POST /api/login/ HTTP/1.1" 401' in log, log
    assert "/ws/chat/" in log, log
    assert "token=[redacted]" in log, log
    for credential in used:
        assert credential not in log, (credential, log)
