"""GET /healthz, /readyz and /metrics on the app in this process (ASGI, no socket): what
each answers, to whom, and that a setting turns each off. The live server's figures and
a real storage fault are in tests/integration/test_operations.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from adapters.http.ops import Readiness
from entrypoints.app import create_app
from entrypoints.settings import Settings
from metrics_support import scrape

MEMORY = Settings(storage="memory")


async def get(settings: Settings, path: str, peer: str = "127.0.0.1") -> httpx.Response:
    """A GET from ``peer``; no lifespan is run, so SQLite storage stays closed."""
    transport = httpx.ASGITransport(app=create_app(settings), client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(path)


async def test_health_and_readiness_are_on_by_default_and_metrics_off() -> None:
    health = await get(MEMORY, "/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = await get(MEMORY, "/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    assert (await get(MEMORY, "/metrics")).status_code == 404


@pytest.mark.parametrize(
    ("setting", "path"),
    [("healthz", "/healthz"), ("readyz", "/readyz"), ("metrics", "/metrics")],
)
async def test_each_endpoint_has_a_setting_that_turns_it_off(setting: str, path: str) -> None:
    on = Settings.from_env({"CHATCORE_STORAGE": "memory", "CHATCORE_METRICS": "true"})
    assert (await get(on, path)).status_code == 200
    off = Settings.from_env(
        {
            "CHATCORE_STORAGE": "memory",
            "CHATCORE_METRICS": "true",
            f"CHATCORE_{setting.upper()}": "0",
        }
    )
    response = await get(off, path)
    assert (response.status_code, response.json()) == (404, {"detail": "Not found."})


async def test_a_storage_that_is_not_open_makes_the_process_not_ready(tmp_path: Path) -> None:
    """Without its lifespan the SQLite storage never opened: a real storage that cannot
    answer. The process is still alive."""
    closed = Settings(database=str(tmp_path / "chat.db"))
    ready = await get(closed, "/readyz")
    assert ready.status_code == 503
    assert ready.json() == {"detail": "Not ready: storage unreachable."}
    assert ready.headers["retry-after"] == "5"
    assert (await get(closed, "/healthz")).status_code == 200


ON = Settings(storage="memory", metrics=True)


@pytest.mark.parametrize(
    "peer",
    [
        "127.0.0.1",
        "::1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.20",
        "fd00::5",
        "::ffff:192.168.1.20",
    ],
)
async def test_metrics_are_served_to_this_host_and_private_networks(peer: str) -> None:
    response = await get(ON, "/metrics", peer)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert scrape(response.text)["chatcore_websockets_open"] == 0


@pytest.mark.parametrize(
    "peer", ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "testclient"]
)
async def test_metrics_are_no_path_at_all_to_anyone_else(peer: str) -> None:
    response = await get(ON, "/metrics", peer)
    assert (response.status_code, response.json()) == (404, {"detail": "Not found."})


async def test_a_probe_that_hangs_counts_as_down_within_the_bound() -> None:
    async def hangs() -> None:
        await asyncio.Event().wait()

    async def fine() -> None:
        return None

    async def fails() -> None:
        raise OSError("no route to host")

    readiness = Readiness({"storage": fine, "notifier": hangs}, timeout=0.05)
    assert await asyncio.wait_for(readiness.down(), 5.0) == ["notifier"]
    readiness = Readiness({"storage": fails, "notifier": hangs}, timeout=0.05)
    assert await asyncio.wait_for(readiness.down(), 5.0) == ["storage", "notifier"]
