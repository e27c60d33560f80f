"""Real-time delivery over a live server with the websockets client: exactly once, in
the one order of the history, to participants only (API.md, WebSocket section)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import websockets
from raw_sockets import raw_upgrade, read_to_end
from websockets.asyncio.client import ClientConnection

RECV_GUARD = 20.0  # a hang guard, not a speed requirement


class Peer:
    """A registered user with an async HTTP client and helpers to open sockets."""

    def __init__(self, http: httpx.AsyncClient, ws_base: str, user: dict[str, Any], token: str):
        self.http, self.ws_base, self.user, self.token = http, ws_base, user, token

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}

    def url(self, chat_id: int, **query: object) -> str:
        params = "&".join(f"{k}={v}" for k, v in {"token": self.token, **query}.items())
        return f"{self.ws_base}/ws/chat/{chat_id}/?{params}"

    @asynccontextmanager
    async def socket(self, chat_id: int, **query: object) -> AsyncIterator[ClientConnection]:
        async with websockets.connect(self.url(chat_id, **query), max_size=None) as ws:
            yield ws

    async def send(self, chat_id: int, content: str, **extra: object) -> dict[str, Any]:
        response = await self.http.post(
            f"/api/chats/{chat_id}/send_message/",
            json={"content": content, **extra},
            headers=self.auth,
        )
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    async def history(self, chat_id: int) -> list[dict[str, Any]]:
        response = await self.http.get(
            f"/api/chats/{chat_id}/messages/", params={"limit": 1000}, headers=self.auth
        )
        assert response.status_code == 200, response.text
        messages: list[dict[str, Any]] = response.json()
        while "prev" in response.links:
            response = await self.http.get(response.links["prev"]["url"], headers=self.auth)
            messages = response.json() + messages
        return messages


class World:
    def __init__(self, base: str) -> None:
        self.base = base
        self.ws_base = base.replace("http://", "ws://")
        self.http = httpx.AsyncClient(base_url=base, timeout=60)

    async def peer(self, api: Any) -> Peer:
        name = api.unique()
        body = {"username": name, "password": api.PASSWORD, "password_confirm": api.PASSWORD}
        response = await self.http.post("/api/register/", json=body)
        assert response.status_code == 201, response.text
        self.http.cookies.clear()
        data = response.json()
        return Peer(self.http, self.ws_base, data, data.pop("token"))

    async def chat(self, owner: Peer, *others: Peer) -> int:
        body = {"name": "ws", "participant_ids": [p.user["id"] for p in others]}
        response = await self.http.post("/api/chats/", json=body, headers=owner.auth)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])


@asynccontextmanager
async def world(base: str) -> AsyncIterator[World]:
    w = World(base)
    try:
        yield w
    finally:
        await w.http.aclose()


async def frames(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    """The next ``count`` frames (error frames included, for the test to look at)."""
    return [json.loads(await asyncio.wait_for(ws.recv(), RECV_GUARD)) for _ in range(count)]


async def messages(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    got = await frames(ws, count)
    assert all(f["type"] == "message" for f in got), got
    return [f["message"] for f in got]


async def closed_with(ws: ClientConnection) -> int | None:
    """Read until the server closes; the close code it sent."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), RECV_GUARD)
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


async def refused_with(ws: ClientConnection) -> int | None:
    """The close code of a refusal, checking that nothing came before it (API.md:
    nothing of the chat is sent before the credential and membership checks pass)."""
    try:
        frame = await asyncio.wait_for(ws.recv(), RECV_GUARD)
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    pytest.fail(f"the server sent {frame!r} before refusing the socket")


async def test_two_participants_see_each_message_once_in_history_order(
    server: Any, api: Any
) -> None:
    async with world(server.url) as w:
        alice, bob = await w.peer(api), await w.peer(api)
        chat = await w.chat(alice, bob)
        async with alice.socket(chat) as a, bob.socket(chat) as b:
            await a.send(json.dumps({"content": "hi bob"}))
            await b.send(json.dumps({"content": "hi alice", "client_id": "b-1"}))
            seen_a, seen_b = await messages(a, 2), await messages(b, 2)
        assert seen_a == seen_b
        assert sorted(m["content"] for m in seen_a) == ["hi alice", "hi bob"]
        assert seen_a == await alice.history(chat)
        assert {m["sender"]["id"] for m in seen_a} == {alice.user["id"], bob.user["id"]}


async def test_twenty_clients_sending_fifty_each_all_receive_the_same_thousand(
    server: Any, api: Any
) -> None:
    async with world(server.url) as w:
        peers = [await w.peer(api) for _ in range(20)]
        chat = await w.chat(peers[0], *peers[1:])

        async def run(peer: Peer, ready: asyncio.Barrier) -> list[dict[str, Any]]:
            async with peer.socket(chat) as ws:
                await ready.wait()
                for n in range(50):
                    await ws.send(
                        json.dumps({"content": f"{peer.user['id']}:{n}", "client_id": str(n)})
                    )
                return await messages(ws, 1000)

        barrier = asyncio.Barrier(20)
        seen = await asyncio.gather(*(run(peer, barrier) for peer in peers))
        history = await peers[0].history(chat)
    assert len(history) == 1000
    assert len({m["id"] for m in history}) == 1000
    for received in seen:
        assert received == history  # all 1,000, each once, in the history's order


async def test_rest_sends_reach_the_sockets_and_outsiders_get_4404(server: Any, api: Any) -> None:
    async with world(server.url) as w:
        alice, bob, eve = await w.peer(api), await w.peer(api), await w.peer(api)
        chat = await w.chat(alice, bob)
        async with bob.socket(chat) as b:
            sent = await alice.send(chat, "over REST")
            (got,) = await messages(b, 1)
            assert got == sent
            async with eve.socket(chat) as e:
                assert await refused_with(e) == 4404
        async with alice.socket(999_999_999) as missing:
            assert await refused_with(missing) == 4404


@pytest.mark.parametrize("query", ["", "?token=nonsense"])
async def test_no_or_bad_credentials_get_4401(server: Any, api: Any, query: str) -> None:
    async with world(server.url) as w:
        alice = await w.peer(api)
        chat = await w.chat(alice)
        async with websockets.connect(f"{w.ws_base}/ws/chat/{chat}/{query}") as ws:
            assert await refused_with(ws) == 4401


async def test_header_and_cookie_credentials_with_the_origin_check(server: Any, api: Any) -> None:
    async with world(server.url) as w:
        alice = await w.peer(api)
        chat = await w.chat(alice)
        url = f"{w.ws_base}/ws/chat/{chat}/"
        async with websockets.connect(url, additional_headers=alice.auth) as ws:
            await ws.send(json.dumps({"content": "by header"}))
            assert (await messages(ws, 1))[0]["content"] == "by header"
        login = await w.http.post(
            "/api/login/", json={"username": alice.user["username"], "password": api.PASSWORD}
        )
        session = login.cookies["sessionid"]
        w.http.cookies.clear()
        cookie = {"Cookie": f"sessionid={session}"}
        own = server.url
        async with websockets.connect(url, additional_headers=cookie, origin=own) as ws:
            await ws.send(json.dumps({"content": "by cookie"}))
            assert (await messages(ws, 1))[0]["content"] == "by cookie"
        evil = "http://evil.example"
        async with websockets.connect(url, additional_headers=cookie, origin=evil) as ws:
            assert await refused_with(ws) == 4401


async def test_bad_frames_get_error_frames_and_the_socket_stays_open(server: Any, api: Any) -> None:
    async with world(server.url) as w:
        alice = await w.peer(api)
        chat = await w.chat(alice)
        bad = {
            "not json": "invalid_json",
            "[1, 2]": "invalid_frame",
            '"text"': "invalid_frame",
            '{"type": "typing"}': "unknown_type",
            "{}": "invalid_content",
            '{"content": 7}': "invalid_content",
            '{"content": "   "}': "invalid_content",
            json.dumps({"content": "x" * 10_001}): "invalid_content",
            '{"content": "ok", "client_id": 5}': "invalid_frame",
            json.dumps({"content": "ok", "client_id": "k" * 65}): "invalid_frame",
        }
        async with alice.socket(chat) as ws:
            for frame, code in bad.items():
                await ws.send(frame)
                (error,) = await frames(ws, 1)
                assert error["type"] == "error", error
                assert error["code"] == code, (frame, error)
                assert isinstance(error["message"], str)
                assert error["message"]
            await ws.send(json.dumps({"content": "still here"}))
            assert (await messages(ws, 1))[0]["content"] == "still here"
        assert [m["content"] for m in await alice.history(chat)] == ["still here"]


async def test_a_repeated_client_id_answers_only_the_sender_with_the_original(
    server: Any, api: Any
) -> None:
    async with world(server.url) as w:
        alice, bob = await w.peer(api), await w.peer(api)
        chat = await w.chat(alice, bob)
        async with alice.socket(chat) as a, bob.socket(chat) as b:
            await a.send(json.dumps({"content": "once", "client_id": "k"}))
            (first,) = await messages(a, 1)
            await a.send(json.dumps({"content": "twice?", "client_id": "k"}))
            (again,) = await messages(a, 1)
            assert again == first
            await alice.send(chat, "marker")
            assert [m["content"] for m in await messages(b, 2)] == ["once", "marker"]
        assert len(await alice.history(chat)) == 2


async def test_a_frame_over_64_kib_closes_with_1009(server: Any, api: Any) -> None:
    async with world(server.url) as w:
        alice = await w.peer(api)
        chat = await w.chat(alice)
        async with alice.socket(chat) as ws:
            await ws.send(json.dumps({"content": "x" * (64 * 1024 + 1)}))
            assert await closed_with(ws) == 1009


async def test_resume_after_a_disconnect_misses_nothing_while_others_send(
    server: Any, api: Any
) -> None:
    async with world(server.url) as w:
        alice, bob = await w.peer(api), await w.peer(api)
        chat = await w.chat(alice, bob)
        for n in range(5):
            await alice.send(chat, f"before {n}")
        async with bob.socket(chat, after=0) as ws:
            seen = await messages(ws, 3)  # mid-stream: two more are waiting
        last = seen[-1]["id"]

        async def keep_sending() -> None:
            for n in range(60):
                await alice.send(chat, f"during {n}")

        sender = asyncio.create_task(keep_sending())
        await asyncio.sleep(0.05)
        async with bob.socket(chat, after=last) as ws:
            rest: list[dict[str, Any]] = []
            while len(seen) + len(rest) < 65:
                rest += await messages(ws, 1)
            await sender
        assert seen + rest == await alice.history(chat)


async def test_logout_and_deactivation_close_the_sockets(
    server: Any, api: Any, make_admin: Any, client: Any
) -> None:
    admin = make_admin(server, client, api)
    async with world(server.url) as w:
        alice, bob = await w.peer(api), await w.peer(api)
        chat = await w.chat(alice, bob)
        async with alice.socket(chat) as a, bob.socket(chat) as b:
            response = await w.http.post("/api/logout/", headers=alice.auth)
            assert response.status_code == 200
            assert await closed_with(a) == 1008
            response = await w.http.patch(
                f"/api/admin/users/{bob.user['id']}/",
                json={"is_active": False},
                headers={"Authorization": f"Token {admin['token']}"},
            )
            assert response.status_code == 200, response.text
            assert await closed_with(b) == 1008


async def test_rate_limit_answers_with_retry_after_ms(server_factory: Any, api: Any) -> None:
    server = server_factory(CHATCORE_WS_SEND_BURST="3", CHATCORE_WS_SENDS_PER_SECOND="1")
    async with world(server.url) as w:
        alice = await w.peer(api)
        chat = await w.chat(alice)
        async with alice.socket(chat) as ws:
            for n in range(4):
                await ws.send(json.dumps({"content": f"m{n}"}))
            got = await frames(ws, 4)
        errors = [f for f in got if f["type"] == "error"]
        assert [e["code"] for e in errors] == ["rate_limited"]
        assert errors[0]["retry_after_ms"] > 0
        assert len(await alice.history(chat)) == 3


async def test_shutdown_says_going_away(server_factory: Any, api: Any) -> None:
    server = server_factory()
    async with world(server.url) as w:
        alice = await w.peer(api)
        chat = await w.chat(alice)
        async with alice.socket(chat) as ws:
            await asyncio.to_thread(server.stop)
            assert await closed_with(ws) == 1001


async def test_a_stalled_reader_is_cut_off_while_the_others_keep_receiving(
    server_factory: Any, api: Any
) -> None:
    server = server_factory(CHATCORE_WS_QUEUE_BYTES="65536")
    async with world(server.url) as w:
        alice, bob, carol = await w.peer(api), await w.peer(api), await w.peer(api)
        chat = await w.chat(alice, bob, carol)
        stalled = raw_upgrade(server.port, f"/ws/chat/{chat}/?token={carol.token}")
        try:
            async with bob.socket(chat) as b:
                body = "y" * 8000
                total = 600  # ~5 MB: past the queue and the kernel's buffers
                for n in range(total):
                    await alice.send(chat, f"{n} {body}")
                got = await messages(b, total)
                assert [m["content"].split()[0] for m in got] == [str(n) for n in range(total)]
        except BaseException:
            stalled.close()
            raise
        received = await read_to_end(stalled, RECV_GUARD)  # the server ended it
        assert len(received) < total * len(body)  # it was cut off, not served in full
        assert b"\x88\x02\x03\xf5" in received  # a close frame with code 1013 ended it
        async with carol.socket(chat, after=0) as c:  # reconnects and misses nothing
            assert len(await messages(c, total)) == total
