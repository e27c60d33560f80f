"""Several server processes as one (API.md, "Scale-out"): real `chatcore serve` processes on
their own ports, sharing one storage and one Redis. A socket on one server hears every
event stored through any other, in seq order, exactly once; a logout, a deactivation or a
removal on one server closes the sockets on the others at once; a server killed with
kill -9 while clients send costs its clients nothing but a reconnection to another with
``?since=``; Redis killed and started again mid-stream costs nothing either, and sockets go
on receiving what is stored while it is away. And `chatcore serve --workers 2` itself.

Every wait is bounded (RECV_GUARD per frame, DEADLINE per test): a hang fails, it never
stalls the suite. Nothing is timed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import websockets
from test_websocket import Peer, World, closed_with, frames, world

from private_redis import PrivateRedis

DEADLINE = 180.0  # per test: a hang guard, never a measure of speed
RECHECK_NEVER = "3600"  # so that a close can only come from the notifier, not the watcher


def on(peer: Peer, w: World) -> Peer:
    """The same user, speaking to another server."""
    return Peer(w.http, w.ws_base, peer.user, peer.token)


async def stored_events(peer: Peer, chat_id: int) -> list[dict[str, Any]]:
    response = await peer.http.get(
        f"/api/chats/{chat_id}/events/", params={"since": 0, "limit": 1000}, headers=peer.auth
    )
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


async def until_seq(ws: Any, seq: int, got: list[dict[str, Any]] | None = None) -> list[Any]:
    """Frames (added to ``got``) until the one with ``seq``."""
    got = [] if got is None else got
    while not got or got[-1].get("seq", 0) < seq:
        got += await frames(ws, 1)
    return got


def seqs(got: list[dict[str, Any]]) -> list[int]:
    return [frame["seq"] for frame in got]


async def test_a_socket_on_one_server_hears_what_is_stored_through_the_other_once_in_order(
    cluster_factory: Any, api: Any
) -> None:
    a, b = cluster_factory().start(2)
    async with asyncio.timeout(DEADLINE), world(a.url) as wa, world(b.url) as wb:
        alice, bob = await wa.peer(api), await wa.peer(api)
        chat = await wa.chat(alice, bob)
        senders = [alice, bob, on(alice, wb), on(bob, wb)]  # REST through both servers
        async with (
            alice.socket(chat) as alice_on_a,
            on(bob, wb).socket(chat) as bob_on_b,
            on(alice, wb).socket(chat) as alice_on_b,
        ):

            async def send_ten(peer: Peer, socket: Any) -> None:
                for i in range(10):
                    if socket is not None and i % 2:
                        await socket.send(json.dumps({"content": f"{peer.user['id']} ws {i}"}))
                    else:
                        await peer.send(chat, f"{peer.user['id']} rest {i}")

            # Every sender at once, and socket sends too: 40 events, from both servers.
            await asyncio.gather(
                send_ten(senders[0], alice_on_a),
                send_ten(senders[1], None),
                send_ten(senders[2], alice_on_b),
                send_ten(senders[3], bob_on_b),
            )
            received = [await until_seq(ws, 40) for ws in (alice_on_a, bob_on_b, alice_on_b)]
        stored = await stored_events(alice, chat)
    assert seqs(stored) == list(range(1, 41))
    for got in received:
        assert got == stored  # each event exactly once, in seq order, as stored


async def test_logout_deactivation_and_removal_on_one_server_close_sockets_on_the_other(
    cluster_factory: Any, api: Any, make_admin: Any
) -> None:
    a, b = cluster_factory(CHATCORE_WS_RECHECK_SECONDS=RECHECK_NEVER).start(2)
    with b.client() as http:
        admin = make_admin(b, http, api)
    async with asyncio.timeout(DEADLINE), world(a.url) as wa, world(b.url) as wb:
        alice, bob, carol, dan = [await wa.peer(api) for _ in range(4)]
        chat = await wa.chat(dan, alice, bob, carol)  # dan made it: he is its admin
        async with (
            alice.socket(chat) as alice_on_a,
            bob.socket(chat) as bob_on_a,
            carol.socket(chat) as carol_on_a,
            dan.socket(chat) as dan_on_a,
        ):
            response = await wb.http.post("/api/logout/", headers=alice.auth)
            assert response.status_code == 200, response.text
            assert await closed_with(alice_on_a) == 1008  # revoked: API.md's policy close

            response = await wb.http.patch(
                f"/api/admin/users/{bob.user['id']}/",
                json={"is_active": False},
                headers={"Authorization": f"Token {admin['token']}"},
            )
            assert response.status_code == 200, response.text
            assert await closed_with(bob_on_a) == 1008

            response = await wb.http.delete(
                f"/api/chats/{chat}/participants/{carol.user['id']}/", headers=dan.auth
            )
            assert response.status_code in (200, 204), response.text
            removed = (await frames(carol_on_a, 1))[0]
            assert (removed["type"], removed["user"]["id"]) == ("member_removed", carol.user["id"])
            assert await closed_with(carol_on_a) == 4404
            # dan, who stays, heard it too, and his socket is open
            assert (await frames(dan_on_a, 1))[0] == removed
            await on(dan, wb).send(chat, "still here")
            assert (await frames(dan_on_a, 1))[0]["message"]["content"] == "still here"


async def test_a_password_changed_from_the_command_line_closes_the_sockets_at_once(
    cluster_factory: Any, api: Any, cli: Any
) -> None:
    cluster = cluster_factory(CHATCORE_WS_RECHECK_SECONDS=RECHECK_NEVER)
    (server,) = cluster.start(1)
    async with asyncio.timeout(DEADLINE), world(server.url) as w:
        alice = await w.peer(api)
        chat = await w.chat(alice)
        async with alice.socket(chat) as ws:
            changed = cli(
                "changepassword",
                alice.user["username"],
                "--no-input",
                db=cluster.db,
                cwd=cluster.factory.workdir,
                **{**cluster.settings, "CHATCORE_NEW_PASSWORD": "Another-quartz-lantern-12"},
            )
            assert changed.returncode == 0, (changed.stdout, changed.stderr)
            assert await closed_with(ws) == 1008


async def test_kill_9_of_a_server_while_clients_send_costs_a_reconnection_not_an_event(
    cluster_factory: Any, api: Any
) -> None:
    a, b = cluster_factory().start(2)
    async with asyncio.timeout(DEADLINE), world(a.url) as wa, world(b.url) as wb:
        people = [await wa.peer(api) for _ in range(3)]
        chat = await wa.chat(*people)
        per_sender = 30
        killed = asyncio.Event()

        async def send_all(peer: Peer) -> None:
            """Through server A while it lives, then B; a send cut off by the kill is sent
            again to B with the same client_id, so it is stored once whatever happened."""
            current = peer
            for i in range(per_sender):
                client_id = f"{peer.user['id']}-{i}"
                while True:
                    try:
                        await current.send(chat, f"m {client_id}", client_id=client_id)
                        break
                    except httpx.TransportError:
                        current = on(peer, wb)
                if i == per_sender // 3 and peer is people[0]:
                    a.kill()
                    killed.set()

        async def read_all(peer: Peer, expected: int) -> list[dict[str, Any]]:
            """A socket on A; when A dies, a new one on B from ``?since=`` the last seq."""
            got: list[dict[str, Any]] = []
            servers = [peer, on(peer, wb)]
            while len(got) < expected:
                since = got[-1]["seq"] if got else 0
                client = servers[0] if not killed.is_set() else servers[1]
                try:
                    async with websockets.connect(client.url(chat, since=since)) as ws:
                        while len(got) < expected:
                            got += await frames(ws, 1)
                except (websockets.ConnectionClosed, OSError):
                    await killed.wait()  # only the kill may cut a socket here
            return got

        total = per_sender * len(people)
        readers = [asyncio.create_task(read_all(peer, total)) for peer in people[:2]]
        await asyncio.sleep(0)  # the readers connect before the first send goes
        await asyncio.gather(*(send_all(peer) for peer in people))
        received = await asyncio.gather(*readers)
        stored = await stored_events(on(people[0], wb), chat)
    assert killed.is_set()
    assert seqs(stored) == list(range(1, total + 1))
    contents = sorted(event["message"]["content"] for event in stored)
    assert contents == sorted(f"m {p.user['id']}-{i}" for p in people for i in range(per_sender))
    for got in received:
        assert got == stored  # nothing missed, nothing twice, in order


async def test_redis_killed_and_started_again_mid_stream_loses_nothing(
    cluster_factory: Any, api: Any, tmp_path: Path
) -> None:
    """While Redis is away, REST keeps working and sockets keep receiving what is stored
    (read from storage); after it is back, everything flows live again."""
    redis = PrivateRedis(tmp_path)
    try:
        a, b = cluster_factory(redis_url=redis.url).start(2)
        async with asyncio.timeout(DEADLINE), world(a.url) as wa, world(b.url) as wb:
            alice, bob = await wa.peer(api), await wa.peer(api)
            chat = await wa.chat(alice, bob)
            through = [alice, on(bob, wb)]
            async with alice.socket(chat) as on_a, on(bob, wb).socket(chat) as on_b:
                sockets = {"a": on_a, "b": on_b}
                got: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}

                async def send(first: int, last: int) -> None:
                    for n in range(first, last + 1):
                        await through[n % 2].send(chat, f"n{n}")

                await send(1, 10)
                for key, ws in sockets.items():
                    await until_seq(ws, 10, got[key])
                redis.kill()
                try:
                    await send(11, 25)  # stored while Redis is away...
                    for key, ws in sockets.items():
                        await until_seq(ws, 25, got[key])  # ...and heard, from storage
                finally:
                    redis.start()
                await send(26, 40)
                for key, ws in sockets.items():
                    await until_seq(ws, 40, got[key])
            stored = await stored_events(alice, chat)
    finally:
        redis.stop()
    assert seqs(stored) == list(range(1, 41))
    assert got["a"] == got["b"] == stored


async def test_a_revocation_made_while_redis_is_away_closes_the_socket_at_the_recheck(
    cluster_factory: Any, api: Any, tmp_path: Path
) -> None:
    """A revocation is not stored as an event: missed while Redis is away, it is found by
    the socket's periodic credential check (CHATCORE_WS_RECHECK_SECONDS)."""
    redis = PrivateRedis(tmp_path)
    try:
        a, b = cluster_factory(redis_url=redis.url, CHATCORE_WS_RECHECK_SECONDS="1").start(2)
        async with asyncio.timeout(DEADLINE), world(a.url) as wa, world(b.url) as wb:
            alice = await wa.peer(api)
            chat = await wa.chat(alice)
            async with alice.socket(chat) as on_a:
                redis.kill()
                try:
                    response = await wb.http.post("/api/logout/", headers=alice.auth)
                    assert response.status_code == 200, response.text
                    assert await closed_with(on_a) == 1008
                finally:
                    redis.start()
    finally:
        redis.stop()


async def test_serve_with_two_workers_delivers_every_send_to_every_socket_in_order(
    cluster_factory: Any, api: Any
) -> None:
    """The issue's case: 8 sockets on one chat, 20 REST sends; before Redis, half the
    sockets (those on the other worker) heard nothing."""
    (server,) = cluster_factory().start(1, args=["--workers", "2"])
    async with asyncio.timeout(DEADLINE), world(server.url) as w:
        alice, bob = await w.peer(api), await w.peer(api)
        chat = await w.chat(alice, bob)
        sockets = [
            await websockets.connect(peer.url(chat)).__aenter__() for peer in [alice, bob] * 4
        ]
        try:
            sent = [(await alice.send(chat, f"send {i}"))["id"] for i in range(20)]
            for ws in sockets:
                got = await frames(ws, 20)
                assert [f["message"]["id"] for f in got] == sent
                assert seqs(got) == list(range(1, 21))
        finally:
            for ws in sockets:
                await ws.close()
