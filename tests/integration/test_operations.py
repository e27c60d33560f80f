"""The operations endpoints of a real `chatcore serve`: /metrics scraped and parsed with
prometheus-client's parser after real work (sockets, messages, failed logins, a reader
that stalls until it is closed with 1013), each counter moved by what was done; /readyz
503 while the database file is not where the server opened it, and 200 again once it
is back; each endpoint's setting turning it off."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import websockets
from raw_sockets import raw_upgrade, read_to_end

from metrics_support import scrape

GUARD = 20.0  # a hang guard, not a speed requirement
SETTLE_TRIES = 200  # scrapes, 0.05 s apart, for a figure a closing socket changes


def metrics(server: Any) -> dict[str, float]:
    with server.client() as client:
        response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return scrape(response.text)


def moved(before: dict[str, float], after: dict[str, float]) -> Callable[[str], float]:
    return lambda key: after.get(key, 0.0) - before.get(key, 0.0)


async def settled(server: Any, key: str, value: float) -> dict[str, float]:
    """Scrapes until ``key`` reads ``value`` (a socket's close is seen by the server a
    moment after the client's), failing after a bounded number of tries."""
    for _ in range(SETTLE_TRIES):
        figures = await asyncio.to_thread(metrics, server)
        if figures.get(key) == value:
            return figures
        await asyncio.sleep(0.05)
    raise AssertionError(f"{key} stayed at {figures.get(key)}, not {value}")


async def send(http: httpx.AsyncClient, token: str, chat: int, content: str) -> None:
    response = await http.post(
        f"/api/chats/{chat}/send_message/",
        json={"content": content},
        headers={"Authorization": f"Token {token}"},
    )
    assert response.status_code == 201, response.text


async def test_the_metrics_count_what_was_done(server_factory: Any, api: Any) -> None:
    server = server_factory(CHATCORE_METRICS="true", CHATCORE_WS_QUEUE_BYTES="65536")
    ws_base = server.url.replace("http://", "ws://")
    async with httpx.AsyncClient(base_url=server.url, timeout=GUARD) as http:
        with server.client() as client:
            alice, alice_token = api.register(client)
            bob, bob_token = api.register(client)
            chat = api.create_chat(client, alice_token, ids=[bob["id"]])["id"]
            start = metrics(server)
            assert start["chatcore_websockets_open"] == 0

            # Three sockets hear five messages sent over REST: 15 deliveries.
            url = f"{ws_base}/ws/chat/{chat}/?token="
            async with (
                websockets.connect(url + alice_token) as a,
                websockets.connect(url + bob_token) as b1,
                websockets.connect(url + bob_token) as b2,
            ):
                assert metrics(server)["chatcore_websockets_open"] == 3
                for n in range(5):
                    await send(http, alice_token, chat, f"hello {n}")
                for ws in (a, b1, b2):
                    got = [json.loads(await asyncio.wait_for(ws.recv(), GUARD)) for _ in range(5)]
                    assert [f["message"]["content"] for f in got] == [
                        f"hello {n}" for n in range(5)
                    ]
                after = metrics(server)
            delta = moved(start, after)
            assert delta('chatcore_events_published_total{kind="message"}') == 5
            assert delta("chatcore_events_delivered_total") == 15
            # Each live delivery's lag is observed (one read back from storage is not).
            assert 0 < delta("chatcore_delivery_lag_seconds_count") <= 15
            assert delta("chatcore_delivery_lag_seconds_sum") >= 0
            # Every write went in some batch; the five messages at least.
            batches = delta("chatcore_storage_write_batch_size_count")
            assert delta("chatcore_storage_write_batch_size_sum") >= max(batches, 5)
            assert delta("chatcore_storage_write_batch_seconds_count") == batches
            assert delta("chatcore_slow_consumer_closes_total") == 0
            await settled(server, "chatcore_websockets_open", 0)

            # Two wrong passwords, one of them for nobody: two failed logins.
            before = metrics(server)
            assert api.login(client, alice["username"], "not the password").status_code == 401
            assert api.login(client, api.unique("nobody")).status_code == 401
            assert api.login(client, alice["username"]).status_code == 200
            delta = moved(before, metrics(server))
            assert delta('chatcore_login_failures_total{reason="bad_credentials"}') == 2
            assert delta('chatcore_login_failures_total{reason="throttled"}') == 0

            # A reader that stops reading is closed with 1013 once its queue is full: one
            # slow-consumer close, while a reading socket gets every message.
            before = metrics(server)
            stalled = raw_upgrade(server.port, f"/ws/chat/{chat}/?token={bob_token}")
            try:
                async with websockets.connect(url + alice_token, max_size=None) as reader:
                    total = 600  # of 8 kB: ~5 MB, past the queue and the kernel's buffers
                    for n in range(total):
                        await send(http, alice_token, chat, f"{n} {'y' * 8000}")
                    for _ in range(total):
                        await asyncio.wait_for(reader.recv(), GUARD)
            except BaseException:
                stalled.close()
                raise
            received = await read_to_end(stalled, GUARD)  # the server ended it
            assert b"\x88\x02\x03\xf5" in received  # a close frame with code 1013
            after = await settled(server, "chatcore_websockets_open", 0)
            delta = moved(before, after)
            assert delta("chatcore_slow_consumer_closes_total") == 1
            assert delta('chatcore_events_published_total{kind="message"}') == total


async def test_not_ready_while_the_database_is_away_then_ready_again(
    server_factory: Any, tmp_path: Path
) -> None:
    home = tmp_path / "data"
    home.mkdir()
    server = server_factory(db=home / "chat.sqlite3")
    with server.client() as client:
        ready = client.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
        home.rename(tmp_path / "away")  # a directory renamed, a volume unmounted
        try:
            away = client.get("/readyz")
            assert away.status_code == 503
            assert away.json() == {"detail": "Not ready: storage unreachable."}
            assert int(away.headers["retry-after"]) > 0
            assert client.get("/healthz").status_code == 200  # up, just not ready
        finally:
            (tmp_path / "away").rename(home)
        assert client.get("/readyz").status_code == 200  # back, with no restart
    assert "not ready: storage is unreachable" in server.output()


def test_the_default_server_serves_health_and_readiness_but_no_metrics(
    client: httpx.Client,
) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    assert client.get("/metrics").status_code == 404


def test_settings_turn_each_endpoint_off(server_factory: Any, api: Any) -> None:
    server = server_factory(CHATCORE_HEALTHZ="false", CHATCORE_READYZ="false")
    with server.client() as client:
        for path in ("/healthz", "/readyz", "/metrics"):
            api.assert_detail(client.get(path), 404)
        document = client.get("/api/schema/").json()
        assert not {"/healthz", "/readyz", "/metrics"} & set(document["paths"])
        api.register(client)  # the API itself serves on
