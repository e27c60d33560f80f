"""The admin console at /admin/ over a live server, as a browser without scripts would use
it (forms and cookies): who gets in, its session cookie and CSRF, and each change's effect
as the REST API and the sockets see it. Headless Chromium: test_admin_console_browser.py."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import httpx
from test_websocket import closed_with, frames, world

CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


class Console:
    """An httpx client logged in to the console: its cookies, and the session's CSRF
    token read from a page, as a browser's form would carry it."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.csrf = ""

    @classmethod
    async def login(cls, base: str, username: str, password: str) -> Console:
        console = cls(httpx.AsyncClient(base_url=base, timeout=60))
        response = await console.submit_login(username, password)
        assert response.status_code == 303, (response.status_code, response.text)
        page = await console.get("/admin/")
        assert page.status_code == 200, page.text
        console.csrf = CSRF.findall(page.text)[0]
        return console

    async def submit_login(self, username: str, password: str, **extra: str) -> httpx.Response:
        form = await self.http.get("/admin/login/")
        assert form.status_code == 200, form.text
        token = CSRF.findall(form.text)[0]
        fields = {"username": username, "password": password, "csrf_token": token, **extra}
        return await self.http.post("/admin/login/", data=fields)

    async def get(
        self, path: str, headers: dict[str, str] | None = None, **params: Any
    ) -> httpx.Response:
        return await self.http.get(path, params=params, headers=headers)

    async def post(self, path: str, **fields: Any) -> httpx.Response:
        """A form posted with the session's CSRF token; a change answers 303."""
        return await self.http.post(path, data={"csrf_token": self.csrf, **fields})

    async def close(self) -> None:
        await self.http.aclose()


def assert_secured(response: httpx.Response) -> None:
    """The console's headers: a CSP allowing nothing inline and nothing from elsewhere."""
    policy = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'", policy
    assert directives["frame-ancestors"] == "'none'", policy
    assert all("unsafe" not in v and "*" not in v and "http" not in v for v in directives.values())
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, (name, response.headers)


def seen(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    """All a caller can tell of a response (less the Date header)."""
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "date"]
    return response.status_code, response.content, sorted(headers)


def console_paths(user_id: int, chat_id: int, message_id: int) -> list[str]:
    return [
        "/admin/",
        "/admin/users/",
        f"/admin/users/{user_id}/",
        f"/admin/users/{user_id}/delete/",
        "/admin/chats/",
        f"/admin/chats/{chat_id}/",
        f"/admin/chats/{chat_id}/delete/",
        "/admin/messages/",
        f"/admin/messages/{message_id}/delete/",
        "/admin/no-such-page/",
    ]


async def test_visitors_are_sent_to_the_login_page_whatever_the_path(
    server: Any, api: Any, client: httpx.Client
) -> None:
    user, token = api.register(client)
    chat = api.create_chat(client, token)
    message = api.send(client, token, chat["id"], "hello")
    paths = console_paths(user["id"], chat["id"], message["id"])
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        for path in [*paths, "/admin/users/abc/", "/admin/chats/0/"]:
            for method in ("GET", "POST", "DELETE"):
                # An API token or session is no console session.
                response = await http.request(method, path, headers=api.auth(token))
                assert response.status_code == 303, (method, path, response.status_code)
                assert response.headers["location"].startswith("/admin/login/"), path
                assert_secured(response)
        form = await http.get("/admin/login/")
    assert form.status_code == 200
    assert_secured(form)
    for label in ('for="username">Username<', 'for="password">Password<', ">Log in</button>"):
        assert label in form.text
    assert api.send(client, token, chat["id"], "still here")["content"] == "still here"


async def test_an_admin_logs_in_and_out_with_a_strict_revocable_session(
    server: Any, api: Any, make_admin: Any, client: httpx.Client
) -> None:
    admin = make_admin(server, client, api)
    console = Console(httpx.AsyncClient(base_url=server.url, timeout=60))
    try:
        response = await console.submit_login(admin["username"], api.PASSWORD)
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/admin/"
        value, attrs = api.set_cookies(response)["adminsession"]
        assert attrs["httponly"] is True
        assert attrs["samesite"].lower() == "strict"
        assert attrs["path"] == "/admin/"
        assert "secure" not in attrs  # CHATCORE_SECURE_COOKIES is off here
        # Stored as a digest, like every token: the secret is nowhere in the database.
        with sqlite3.connect(server.db) as db:
            rows = db.execute("SELECT * FROM tokens").fetchall()
        assert rows
        assert not any(value in str(row) for row in rows)

        dashboard = await console.get("/admin/")
        assert dashboard.status_code == 200
        assert_secured(dashboard)
        for section in ("Users", "Chats", "Messages"):
            assert f'/">{section}</a>' in dashboard.text
        console.csrf = CSRF.findall(dashboard.text)[0]

        # Logging out revokes that session at once, for any copy of the cookie.
        copy = httpx.AsyncClient(base_url=server.url, timeout=60, cookies={"adminsession": value})
        async with copy:
            assert (await copy.get("/admin/")).status_code == 200
            logout = await console.post("/admin/logout/")
            assert logout.status_code == 303
            assert logout.headers["location"].startswith("/admin/login/")
            assert (await copy.get("/admin/")).status_code == 303
    finally:
        await console.close()


def test_secure_cookies_when_asked(server_factory: Any, api: Any, make_admin: Any) -> None:
    own = server_factory(CHATCORE_SECURE_COOKIES="true")
    with own.client() as http:
        admin = make_admin(own, http, api)
        form = http.get("/admin/login/")
        assert "secure" in api.set_cookies(form)["adminlogincsrf"][1]
        fields = {
            "username": admin["username"],
            "password": api.PASSWORD,
            "csrf_token": CSRF.findall(form.text)[0],
        }
        # httpx keeps Secure cookies off plain http: send the login one by hand.
        cookie = {"Cookie": f"adminlogincsrf={CSRF.findall(form.text)[0]}"}
        response = http.post("/admin/login/", data=fields, headers=cookie)
    assert response.status_code == 303, response.text
    assert api.set_cookies(response)["adminsession"][1]["secure"] is True


async def test_non_admins_get_what_an_unknown_path_answers(
    server: Any, api: Any, make_admin: Any, client: httpx.Client, cli: Any
) -> None:
    """A right password without the admin flag, and a session whose admin flag was
    revoked since: the app's 404 of an unknown path, byte for byte, for every page and
    method; no session is handed out."""
    user, token = api.register(client, user_type="owner")
    chat = api.create_chat(client, token)
    message = api.send(client, token, chat["id"], "hello")
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        unknown = await http.post("/no-such-path/")
        console = Console(http)
        refused = await console.submit_login(user["username"], api.PASSWORD)
        assert seen(refused) == seen(unknown)
        assert "adminsession" not in http.cookies

    admin = make_admin(server, client, api)
    console = await Console.login(server.url, admin["username"], api.PASSWORD)
    try:
        result = cli("admin", "revoke", admin["username"], db=server.db)
        assert result.returncode == 0, result.stderr
        for path in console_paths(user["id"], chat["id"], message["id"]):
            for method in ("GET", "POST", "PUT"):
                response = await console.http.request(method, path)
                expected = await console.http.request(method, "/no-such-path/")
                assert seen(response) == seen(expected), (method, path)
                api.assert_detail(response, 404)
    finally:
        await console.close()


async def test_every_post_needs_the_sessions_csrf_token(
    server: Any, api: Any, make_admin: Any, client: httpx.Client
) -> None:
    admin = make_admin(server, client, api)
    user, token = api.register(client)
    chat = api.create_chat(client, token, name="before")
    console = await Console.login(server.url, admin["username"], api.PASSWORD)
    other = await Console.login(server.url, admin["username"], api.PASSWORD)
    try:
        assert other.csrf != console.csrf  # per session
        path = f"/admin/chats/{chat['id']}/rename/"
        for fields in ({}, {"csrf_token": ""}, {"csrf_token": other.csrf}, {"csrf_token": "x"}):
            response = await console.http.post(path, data={"name": "after", **fields})
            assert response.status_code == 403, (fields, response.status_code)
            assert "CSRF" in response.text
            assert_secured(response)
        for bad in (f"/admin/users/{user['id']}/delete/", "/admin/logout/"):
            assert (await console.http.post(bad, data={})).status_code == 403
        got = await console.get(f"/api/chats/{chat['id']}/", headers=api.auth(token))
        assert got.json()["name"] == "before"
        assert (await console.get("/api/me/", headers=api.auth(token))).status_code == 200
        # The login form's own token: no cookie of it, no login.
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as bare:
            fields = {"username": admin["username"], "password": api.PASSWORD}
            response = await bare.post("/admin/login/", data={**fields, "csrf_token": "x"})
            assert response.status_code == 403
            assert "adminsession" not in bare.cookies
        assert (await console.post(path, name="after")).status_code == 303
    finally:
        await console.close()
        await other.close()


def test_console_logins_share_the_api_logins_throttle(
    server_factory: Any, api: Any, make_admin: Any
) -> None:
    own = server_factory(CHATCORE_LOGIN_FREE_FAILURES="2", CHATCORE_LOGIN_BACKOFF_SECONDS="600")
    with own.client() as http:
        admin = make_admin(own, http, api)
        for _ in range(2):
            form = http.get("/admin/login/")
            fields = {"username": admin["username"], "password": "wrong password 1"}
            response = http.post(
                "/admin/login/", data={**fields, "csrf_token": CSRF.findall(form.text)[0]}
            )
            assert response.status_code == 400, response.status_code
            assert "correct username and password" in response.text
        api.assert_detail(api.login(http, admin["username"]), 429)
        form = http.get("/admin/login/")
        fields = {"username": admin["username"], "password": api.PASSWORD}
        response = http.post(
            "/admin/login/", data={**fields, "csrf_token": CSRF.findall(form.text)[0]}
        )
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0
    assert "adminsession" not in api.set_cookies(response)


async def test_changes_to_users_act_at_once_through_the_api(
    server: Any, api: Any, make_admin: Any, client: httpx.Client
) -> None:
    admin = make_admin(server, client, api)
    console = await Console.login(server.url, admin["username"], api.PASSWORD)
    try:
        async with world(server.url) as w:
            alice, bob = await w.peer(api), await w.peer(api)
            chat = await w.chat(alice, bob)
            name = bob.user["username"]
            found = await console.get("/admin/users/", search=name)
            assert f">{name}</bdi>" in found.text
            assert "1 account found" in found.text
            page = await console.get(f"/admin/users/{bob.user['id']}/")
            assert page.status_code == 200
            assert_secured(page)

            async with bob.socket(chat) as b:
                # Staff, and (the box "Active" left unticked) deactivated: his token
                # stops at once, his socket closes.
                saved = await console.post(f"/admin/users/{bob.user['id']}/", user_type="staff")
                assert saved.status_code == 303, saved.text
                assert await closed_with(b) == 1008
            assert (await w.http.get("/api/me/", headers=bob.auth)).status_code == 401
            listed = await w.http.get(
                "/api/admin/users/", params={"search": name}, headers=api.auth(admin["token"])
            )
            assert [(u["user_type"], u["is_active"]) for u in listed.json()] == [("staff", False)]
            inactive = await console.get("/admin/users/", search=name, active="no")
            assert f">{name}</bdi>" in inactive.text

            # A new password: the old ones and every token stop, the new one works.
            async with alice.socket(chat) as a:
                response = await console.post(
                    f"/admin/users/{alice.user['id']}/password/", password="new lantern 42"
                )
                assert response.status_code == 303, response.text
                assert await closed_with(a) == 1008
            assert (await w.http.get("/api/me/", headers=alice.auth)).status_code == 401
            assert api.login(client, alice.user["username"]).status_code == 401
            login = api.login(client, alice.user["username"], "new lantern 42")
            assert login.status_code == 200

            # A bad password is a 400 page naming the rule, and changes nothing.
            weak = await console.post(f"/admin/users/{alice.user['id']}/password/", password="1")
            assert weak.status_code == 400
            assert "too short" in weak.text

            # Deleted, after a confirmation page.
            confirm = await console.get(f"/admin/users/{bob.user['id']}/delete/")
            assert "Yes, delete" in confirm.text
            gone = await console.post(f"/admin/users/{bob.user['id']}/delete/")
            assert gone.status_code == 303
            response = await w.http.patch(
                f"/api/admin/users/{bob.user['id']}/", json={}, headers=api.auth(admin["token"])
            )
            api.assert_detail(response, 404)
            assert (await console.get(f"/admin/users/{bob.user['id']}/")).status_code == 404
            # Nobody locks themselves out.
            response = await console.post(f"/admin/users/{admin['user']['id']}/delete/")
            assert response.status_code == 400
    finally:
        await console.close()


async def test_changes_to_chats_and_messages_reach_the_sockets(
    server: Any, api: Any, make_admin: Any, client: httpx.Client
) -> None:
    admin = make_admin(server, client, api)
    console = await Console.login(server.url, admin["username"], api.PASSWORD)
    try:
        async with world(server.url) as w:
            alice, bob, carol = await w.peer(api), await w.peer(api), await w.peer(api)
            chat = await w.chat(alice, bob)
            first = await alice.send(chat, "to be deleted by the console")
            await bob.send(chat, "stays")
            async with alice.socket(chat, since=2) as a:
                page = await console.get(f"/admin/chats/{chat}/")
                assert "to be deleted by the console" in page.text

                response = await console.post(f"/admin/chats/{chat}/rename/", name="renamed")
                assert response.status_code == 303, response.text
                (renamed,) = await frames(a, 1)
                assert (renamed["type"], renamed["chat"]["name"]) == ("chat_updated", "renamed")

                confirm = await console.get(f"/admin/messages/{first['id']}/delete/")
                assert "to be deleted by the console" in confirm.text
                response = await console.post(f"/admin/messages/{first['id']}/delete/")
                assert response.status_code == 303
                (deleted,) = await frames(a, 1)
                assert deleted == {
                    "type": "message_deleted",
                    "chat_id": chat,
                    "seq": 4,
                    "message_id": first["id"],
                }
                response = await w.http.get(f"/api/messages/{first['id']}/", headers=bob.auth)
                assert response.status_code == 404

                carol_name = carol.user["username"]
                response = await console.post(
                    f"/admin/chats/{chat}/participants/", usernames=f"{carol_name}, nobody-here"
                )
                assert response.status_code == 400  # one unknown name: nobody is added
                assert "nobody-here" in response.text
                response = await console.post(
                    f"/admin/chats/{chat}/participants/", usernames=carol_name
                )
                assert response.status_code == 303, response.text
                (added,) = await frames(a, 1)
                assert (added["type"], added["user"]["id"]) == ("member_added", carol.user["id"])
                assert added["by"]["id"] == admin["user"]["id"]
                got = await w.http.get(f"/api/chats/{chat}/", headers=carol.auth)
                assert got.status_code == 200
                assert admin["user"]["id"] not in [p["id"] for p in got.json()["participants"]]

                response = await console.post(
                    f"/admin/chats/{chat}/participants/{bob.user['id']}/remove/"
                )
                assert response.status_code == 303
                (removed,) = await frames(a, 1)
                assert (removed["type"], removed["user"]["id"]) == (
                    "member_removed",
                    bob.user["id"],
                )
                got = await w.http.get(f"/api/chats/{chat}/", headers=bob.auth)
                assert got.status_code == 404

                confirm = await console.get(f"/admin/chats/{chat}/delete/")
                assert "Yes, delete" in confirm.text
                response = await console.post(f"/admin/chats/{chat}/delete/")
                assert response.status_code == 303
                (ended,) = await frames(a, 1)
                assert ended["type"] == "chat_deleted"
                assert await closed_with(a) == 4404
            got = await w.http.get(f"/api/chats/{chat}/", headers=alice.auth)
            assert got.status_code == 404
            assert (await console.get(f"/admin/chats/{chat}/")).status_code == 404
    finally:
        await console.close()


async def test_lists_search_filter_and_page(
    server: Any, api: Any, make_admin: Any, client: httpx.Client
) -> None:
    admin = make_admin(server, client, api)
    tag = api.unique("t")
    alice, alice_token = api.register(client, username=f"{tag}alice", user_type="owner")
    bob, bob_token = api.register(client, username=f"{tag}bob", user_type="staff")
    chat = api.create_chat(client, alice_token, name=f"{tag} room", ids=[bob["id"]])
    other = api.create_chat(client, bob_token, name=f"{tag} other")
    api.send(client, alice_token, chat["id"], f"{tag} apples and pears")
    api.send(client, bob_token, chat["id"], f"{tag} only pears")
    api.send(client, bob_token, other["id"], f"{tag} pears elsewhere")
    console = await Console.login(server.url, admin["username"], api.PASSWORD)
    try:
        staff = await console.get("/admin/users/", search=tag, user_type="staff")
        assert f"{tag}bob" in staff.text
        assert f"{tag}alice" not in staff.text
        ordered = await console.get("/admin/users/", search=tag, sort="-username")
        assert ordered.text.index(f"{tag}bob") < ordered.text.index(f"{tag}alice")
        admins = await console.get("/admin/users/", search=tag, admin="yes")
        assert "0 accounts found" in admins.text

        chats = await console.get("/admin/chats/", search=f"{tag} ROOM")
        assert f"{tag} room" in chats.text
        assert f"{tag} other" not in chats.text

        def shown(page: httpx.Response) -> list[str]:
            return re.findall(rf"{tag} [a-z ]+", page.text.split("<tbody>")[1])

        pears = await console.get("/admin/messages/", search=f"{tag} ONLY")
        assert shown(pears) == [f"{tag} only pears"]
        by_alice = await console.get("/admin/messages/", search=tag, sender=str(alice["id"]))
        assert shown(by_alice) == [f"{tag} apples and pears"]
        in_chat = await console.get("/admin/messages/", search=tag, chat=str(chat["id"]))
        assert shown(in_chat) == [f"{tag} only pears", f"{tag} apples and pears"]

        def counted(page: httpx.Response) -> dict[str, int]:
            found = re.findall(r"<strong>(\d+)</strong> (\w+)", page.text)
            return {what: int(n) for n, what in found}

        before = counted(await console.get("/admin/"))
        _, token = api.register(client)
        api.send(client, token, api.create_chat(client, token)["id"], "one more")
        after = counted(await console.get("/admin/"))
        assert after == {k: v + 1 for k, v in before.items()}
        assert set(after) == {"accounts", "chats", "messages"}
    finally:
        await console.close()


async def test_hostile_text_is_shown_as_text(
    server: Any, api: Any, make_admin: Any, client: httpx.Client
) -> None:
    admin = make_admin(server, client, api)
    _, token = api.register(client)
    hostile = "<script>alert(1)</script> <img src=x onerror=alert(2)> \u202eevil"
    chat = api.create_chat(client, token, name=hostile)
    message = api.send(client, token, chat["id"], hostile)
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=alert(2)&gt; \u202eevil"
    console = await Console.login(server.url, admin["username"], api.PASSWORD)
    try:
        for path, params in [
            (f"/admin/chats/{chat['id']}/", {}),
            ("/admin/chats/", {"search": "evil"}),
            ("/admin/messages/", {"chat": str(chat["id"])}),
            (f"/admin/messages/{message['id']}/delete/", {}),
            (f"/admin/chats/{chat['id']}/delete/", {}),
            ("/admin/users/", {"search": hostile[:150]}),  # echoed into the search box
        ]:
            page = await console.get(path, **params)
            assert page.status_code in (200, 400), (path, page.status_code)
            assert "<script>alert" not in page.text, path
            assert "<img src=x" not in page.text, path
            assert page.text.count("<script") == 0, path
            if path != "/admin/users/":
                assert re.search(f"<bdi[^>]*>{re.escape(escaped)}</bdi>", page.text), path
    finally:
        await console.close()


async def test_bad_input_gets_clear_4xx_pages_never_a_500(
    server: Any, api: Any, make_admin: Any, client: httpx.Client
) -> None:
    admin = make_admin(server, client, api)
    _, token = api.register(client)
    chat = api.create_chat(client, token)
    console = await Console.login(server.url, admin["username"], api.PASSWORD)
    try:
        for path, params, status in [
            ("/admin/users/", {"page": "abc"}, 400),
            ("/admin/users/", {"page": "0"}, 400),
            ("/admin/users/", {"page": "9" * 30}, 400),
            ("/admin/users/", {"page": "999999"}, 400),
            ("/admin/users/", {"sort": "password"}, 400),
            ("/admin/users/", {"user_type": "wizard"}, 400),
            ("/admin/users/", {"active": "maybe"}, 400),
            ("/admin/users/", {"search": "x" * 5000}, 400),
            ("/admin/chats/", {"page": "-1"}, 400),
            ("/admin/messages/", {"chat": "abc"}, 400),
            ("/admin/messages/", {"sender": "0"}, 400),
            ("/admin/messages/", {"before": "9" * 25}, 400),
            ("/admin/users/999999999/", {}, 404),
            ("/admin/users/abc/", {}, 404),
            ("/admin/users/0/", {}, 404),
            (f"/admin/users/{'9' * 40}/", {}, 404),
            ("/admin/chats/999999999/", {}, 404),
            ("/admin/messages/999999999/delete/", {}, 404),
            ("/admin/nothing/here/", {}, 404),
            ("/admin/users/", {"done": "x" * 5000}, 200),  # no notice, no failure
            ("/admin/users/", {f"p{i}": "1" for i in range(2001)}, 400),
        ]:
            response = await console.get(path, **params)
            assert response.status_code == status, (path, params, response.status_code)
            assert "text/html" in response.headers["content-type"]
            assert_secured(response)
            assert "Traceback" not in response.text
        rename = f"/admin/chats/{chat['id']}/rename/"
        for body, headers, status in [
            ({"name": "  "}, {}, 400),
            ({"name": "x" * 300}, {}, 400),
            (b"csrf_token=" + console.csrf.encode() + b"&name=%ff", {}, 400),
            (b'{"name": "json"}', {"Content-Type": "application/json"}, 415),
            (b"name=" + b"x" * 300_000, {}, 413),
        ]:
            if isinstance(body, dict):
                response = await console.post(rename, **body)
            else:
                headers = {"Content-Type": "application/x-www-form-urlencoded", **headers}
                response = await console.http.post(rename, content=body, headers=headers)
            assert response.status_code == status, (body[:40], response.status_code)
            assert_secured(response)
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as bare:
            form = await bare.get("/admin/login/", params={"next": "x" * 5000})
            assert form.status_code == 200  # the login form, without a place to go back to
            assert 'name="next" value=""' in form.text
        assert (await console.post("/admin/users/", search="x")).status_code == 405
        response = await console.post("/admin/chats/999999999/rename/", name="x")
        assert response.status_code == 404
    finally:
        await console.close()
