"""The chat socket's event stream over a live server (API.md, "One ordered event stream
per chat"): frames carry the chat's seq, in order, once; the changes v1 REST can make
(sends, and the admin's deletions of messages, chats and users) reach every socket;
``?since=`` resumes with no gap and no duplicate while others send; a chat's deletion
closes its sockets with 4404 after the frame that says so. The kinds v1 REST cannot make
yet are covered over the in-memory wiring (tests/unit/test_ws_delivery.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from test_websocket import closed_with, frames, refused_with, world
from websockets.asyncio.client import ClientConnection


def admin_auth(admin: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Token {admin['token']}"}


async def until_seq(ws: ClientConnection, seq: int) -> list[dict[str, Any]]:
    """Frames up to and including the one with ``seq``."""
    got: list[dict[str, Any]] = []
    while not got or got[-1].get("seq", 0) < seq:
        got += await frames(ws, 1)
    return got


async def test_sends_are_message_events_with_the_chats_seq_on_every_socket(
    server: Any, api: Any
) -> None:
    async with world(server.url) as w:
        alice, bob = await w.peer(api), await w.peer(api)
        chat = await w.chat(alice, bob)
        async with alice.socket(chat) as a, bob.socket(chat) as b:
            await a.send(json.dumps({"content": "over the socket"}))
            await alice.send(chat, "over REST")
            await bob.send(chat, "from bob")
            got_a, got_b = await frames(a, 3), await frames(b, 3)
    assert got_a == got_b
    assert [(f["type"], f["chat_id"], f["seq"]) for f in got_a] == [
        ("message", chat, 1),
        ("message", chat, 2),
        ("message", chat, 3),
    ]
    assert [f["message"]["content"] for f in got_a] == ["over the socket", "over REST", "from bob"]


async def test_admin_deletions_reach_the_others_and_a_deleted_chat_closes_with_4404(
    server: Any, api: Any, make_admin: Any, client: Any
) -> None:
    admin = make_admin(server, client, api)
    async with world(server.url) as w:
        alice, bob, carol = await w.peer(api), await w.peer(api), await w.peer(api)
        chat = await w.chat(alice, bob, carol)
        async with alice.socket(chat) as a, bob.socket(chat) as b, carol.socket(chat) as c:
            first = await alice.send(chat, "doomed")
            await carol.send(chat, "carol's")
            response = await w.http.delete(
                f"/api/admin/messages/{first['id']}/", headers=admin_auth(admin)
            )
            assert response.status_code == 204, response.text
            deleted = {"type": "message_deleted", "chat_id": chat, "seq": 3}
            for ws in (a, b, c):
                assert (await frames(ws, 3))[2] == {**deleted, "message_id": first["id"]}

            # carol's account goes: her message goes, then she does, as the others see
            response = await w.http.delete(
                f"/api/admin/users/{carol.user['id']}/", headers=admin_auth(admin)
            )
            assert response.status_code == 204, response.text
            assert await closed_with(c) == 1008  # her credentials are gone first
            for ws in (a, b):
                gone, removed = await frames(ws, 2)
                assert (gone["type"], gone["seq"]) == ("message_deleted", 4)
                assert (removed["type"], removed["seq"]) == ("member_removed", 5)
                assert removed["user"]["id"] == carol.user["id"]
                assert removed["by"]["id"] == admin["user"]["id"]

            response = await w.http.delete(f"/api/admin/chats/{chat}/", headers=admin_auth(admin))
            assert response.status_code == 204, response.text
            for ws in (a, b):
                assert await frames(ws, 1) == [{"type": "chat_deleted", "chat_id": chat, "seq": 6}]
                assert await closed_with(ws) == 4404


async def test_a_deleted_chat_ends_only_its_own_sockets(
    server: Any, api: Any, make_admin: Any, client: Any
) -> None:
    admin = make_admin(server, client, api)
    async with world(server.url) as w:
        alice = await w.peer(api)
        doomed, kept = await w.chat(alice), await w.chat(alice)
        async with alice.socket(doomed) as d, alice.socket(kept) as k:
            response = await w.http.delete(f"/api/admin/chats/{doomed}/", headers=admin_auth(admin))
            assert response.status_code == 204, response.text
            assert [f["type"] for f in await frames(d, 1)] == ["chat_deleted"]
            assert await closed_with(d) == 4404
            await alice.send(kept, "still here")
            (frame,) = await frames(k, 1)
            assert (frame["type"], frame["seq"]) == ("message", 1)


async def test_resume_with_since_misses_nothing_and_repeats_nothing_while_others_send(
    server: Any, api: Any
) -> None:
    async with world(server.url) as w:
        alice, bob = await w.peer(api), await w.peer(api)
        chat = await w.chat(alice, bob)
        for n in range(5):
            await alice.send(chat, f"before {n}")
        async with bob.socket(chat, since=0) as ws:
            seen = await frames(ws, 3)  # mid-stream: two more are waiting
        last = seen[-1]["seq"]

        async def keep_sending() -> None:
            for n in range(60):
                await alice.send(chat, f"during {n}")

        sender = asyncio.create_task(keep_sending())
        await asyncio.sleep(0.05)
        async with bob.socket(chat, since=last) as ws:
            rest = await until_seq(ws, 65)
            await sender
        history = await alice.history(chat)
    stream = seen + rest
    assert [f["seq"] for f in stream] == list(range(1, 66))
    assert [f["message"] for f in stream] == history


async def test_a_bad_since_is_ignored_as_a_bad_after_is(server: Any, api: Any) -> None:
    async with world(server.url) as w:
        alice = await w.peer(api)
        chat = await w.chat(alice)
        await alice.send(chat, "old")
        for bad in ("x", "-1", str(2**63), "1.5"):
            async with alice.socket(chat, since=bad) as ws:
                sent = await alice.send(chat, f"new {bad}")
                (frame,) = await frames(ws, 1)  # the live one only: no replay
                assert frame["message"]["id"] == sent["id"]


async def test_after_keeps_its_v1_meaning_then_the_live_events_follow(
    server: Any, api: Any
) -> None:
    async with world(server.url) as w:
        alice, bob = await w.peer(api), await w.peer(api)
        chat = await w.chat(alice, bob)
        first = await alice.send(chat, "one")
        await alice.send(chat, "two")
        async with bob.socket(chat, after=first["id"]) as ws:
            (replayed,) = await frames(ws, 1)
            assert replayed["message"]["content"] == "two"
            await alice.send(chat, "three")
            (live,) = await frames(ws, 1)
            assert (live["type"], live["seq"], live["message"]["content"]) == (
                "message",
                3,
                "three",
            )


async def test_an_outsider_still_gets_4404_with_since(server: Any, api: Any) -> None:
    async with world(server.url) as w:
        alice, mallory = await w.peer(api), await w.peer(api)
        chat = await w.chat(alice)
        await alice.send(chat, "private")
        async with mallory.socket(chat, since=0) as ws:
            assert await refused_with(ws) == 4404
