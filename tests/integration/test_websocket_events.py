"""The chat socket's event stream over a live server (API.md, "One ordered event stream
per chat"): frames carry the chat's seq, in order, once; the changes v1 REST can make
(sends, and the admin's deletions of messages, chats and users) reach every socket;
``?since=`` resumes with no gap and no duplicate while others send; a chat's deletion
closes its sockets with 4404 after the frame that says so. The kinds v1 REST cannot make
yet are covered over the in-memory wiring (tests/unit/test_ws_delivery.py)."""

from __future__ import annotations

import asyncio
import contextlib
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


def _key(frame: dict[str, Any]) -> tuple[object, ...]:
    """What a frame says, independent of when it is rendered (a replay shows a message's
    latest content; the live frame showed it as it was then)."""
    message = frame.get("message") or {}
    user = frame.get("user") or {}
    return (frame["seq"], frame["type"], message.get("id"), user.get("id"))


async def test_twenty_clients_sending_and_editing_while_members_churn_see_one_stream(
    server: Any, api: Any
) -> None:
    """Issue 10's concurrency check: 20 clients send and edit at once while the admin adds
    and removes other people; every socket's events are gapless, in seq order, and equal
    to GET /api/chats/{id}/events/?since=0."""
    async with world(server.url) as w:
        owner = await w.peer(api)
        clients = [await w.peer(api) for _ in range(20)]
        extras = [await w.peer(api) for _ in range(4)]
        chat = await w.chat(owner, *clients)
        opened = contextlib.AsyncExitStack()
        sockets = [await opened.enter_async_context(c.socket(chat)) for c in clients]
        heard: list[list[dict[str, Any]]] = [[] for _ in sockets]

        async def listen(ws: ClientConnection, into: list[dict[str, Any]]) -> None:
            async for raw in ws:
                into.append(json.loads(raw))

        listeners = [
            asyncio.create_task(listen(ws, into)) for ws, into in zip(sockets, heard, strict=True)
        ]
        try:

            async def talk(peer: Any) -> None:
                for number in range(5):
                    sent = await peer.send(chat, f"{peer.user['username']} {number}")
                    if number % 2 == 0:
                        edited = await peer.http.patch(
                            f"/api/messages/{sent['id']}/",
                            json={"content": f"edited {number}"},
                            headers=peer.auth,
                        )
                        assert edited.status_code == 200, edited.text

            async def churn() -> None:
                for _ in range(3):
                    for extra in extras:
                        body = {"participant_ids": [extra.user["id"]]}
                        added = await w.http.post(
                            f"/api/chats/{chat}/participants/", json=body, headers=owner.auth
                        )
                        assert added.status_code == 200, added.text
                    for extra in extras:
                        path = f"/api/chats/{chat}/participants/{extra.user['id']}/"
                        removed = await w.http.delete(path, headers=owner.auth)
                        assert removed.status_code == 204, removed.text

            await asyncio.gather(churn(), *(talk(peer) for peer in clients))
            stream = await w.http.get(
                f"/api/chats/{chat}/events/", params={"since": 0, "limit": 1000}, headers=owner.auth
            )
            assert stream.status_code == 200, stream.text
            body = stream.json()
            final = body["seq"]
            assert final == 20 * 5 + 20 * 3 + 3 * 4 * 2  # sends, edits, adds and removes
            expected = [_key(frame) for frame in body["events"]]
            assert [key[0] for key in expected] == list(range(1, final + 1))

            async def complete() -> None:
                # Polls the lists the listeners fill (no event to wait on: any frame may be last).
                while any(not got or got[-1].get("seq", 0) < final for got in heard):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(complete(), 30)  # a hang guard, not a speed requirement
            for got in heard:
                assert [_key(frame) for frame in got] == expected
        finally:
            for task in listeners:
                task.cancel()
            await opened.aclose()
