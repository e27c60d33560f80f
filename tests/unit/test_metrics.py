"""The metrics seam: the domain reports login failures through its Telemetry port (a
recording fake here), adapters report through the Metrics object bootstrap builds once
per app, and PrometheusMetrics turns those calls into the figures GET /metrics shows,
read back with prometheus-client's own parser, in a registry of its own."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import prometheus_client
import pytest

from adapters.clock import ManualClock
from adapters.hashing import Argon2Hasher
from adapters.http.auth import Credential
from adapters.http.ws.codes import CLOSE_TRY_LATER
from adapters.http.ws.hub import Connection, Hub
from adapters.memory import LocalNotifier
from adapters.metrics import NO_METRICS, CountingNotifier
from adapters.prometheus import LAG_BUCKETS, PrometheusMetrics
from chatcore import ChatDraft, Registration, Services, User
from chatcore.accounts import AccountChange
from chatcore.deps import Policy
from chatcore.errors import AuthenticationFailed, Throttled, ValidationFailed
from chatcore.events import ChatDeleted, EventKind
from chatcore.model import Chat
from entrypoints.bootstrap import adapters_from, bootstrap
from entrypoints.settings import Settings
from metrics_support import scrape

GUARD = 5.0  # a hang guard, not a speed requirement
PASSWORD = "correct horse battery"
README = Path(__file__).resolve().parents[2] / "README.md"


class RecordingTelemetry:
    """The domain's Telemetry port, recording each call."""

    def __init__(self) -> None:
        self.login_failures: list[bool] = []

    def login_failed(self, throttled: bool) -> None:
        self.login_failures.append(throttled)


class RecordingSocket:
    """Stands where the ASGI send is: keeps every frame the connection sends."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.grew = asyncio.Event()

    async def _send(self, message: dict[str, Any]) -> None:
        self.frames.append(json.loads(message["text"]))
        self.grew.set()


async def register(app: Services, name: str) -> User:
    return (await app.accounts.register(Registration(name, PASSWORD, PASSWORD))).user


# --- the domain's port ----------------------------------------------------------------------


async def test_every_failed_password_guess_is_reported_and_nothing_else(
    hasher: Argon2Hasher, clock: ManualClock
) -> None:
    telemetry = RecordingTelemetry()
    policy = Policy(login_free_failures=2, login_backoff=timedelta(minutes=1))
    app = bootstrap(hasher=hasher, clock=clock, policy=policy, telemetry=telemetry)
    alice = await register(app, "alice")
    await app.accounts.login("alice", PASSWORD, "10.0.0.1")
    assert telemetry.login_failures == []  # a success is no failure
    for attempt in ("wrong", "also wrong"):
        with pytest.raises(AuthenticationFailed):
            await app.accounts.login("alice", attempt, "10.0.0.1")
    with pytest.raises(AuthenticationFailed):
        await app.accounts.login("nobody", PASSWORD, "10.0.0.2")  # unknown user: the same
    assert telemetry.login_failures == [False, False, False]
    with pytest.raises(Throttled):
        await app.accounts.login("alice", "third", "10.0.0.1")
    assert telemetry.login_failures == [False, False, False, True]
    # A password change's current password is a guess behind the same throttle.
    change = AccountChange(password="new horse battery", current_password="not it")
    with pytest.raises(ValidationFailed):
        await app.accounts.update_me(alice, "token", change, "10.0.0.3")
    assert telemetry.login_failures == [False, False, False, True, False]


# --- what PrometheusMetrics shows -----------------------------------------------------------


def test_each_call_moves_its_own_figure() -> None:
    metrics = PrometheusMetrics()
    metrics.socket_opened()
    metrics.socket_opened()
    metrics.socket_closed()
    metrics.event_published(ChatDeleted(1, 9))
    metrics.slow_consumer_closed()
    metrics.storage_batch(3, 0.002)
    metrics.notifier_reconnected()
    metrics.login_failed(throttled=False)
    metrics.login_failed(throttled=False)
    metrics.login_failed(throttled=True)
    figures = scrape(metrics.exposition())
    assert figures["chatcore_websockets_open"] == 1
    assert figures['chatcore_events_published_total{kind="chat_deleted"}'] == 1
    assert figures['chatcore_events_published_total{kind="message"}'] == 0
    assert figures["chatcore_slow_consumer_closes_total"] == 1
    assert figures["chatcore_storage_write_batch_size_sum"] == 3
    assert figures['chatcore_storage_write_batch_size_bucket{le="2.0"}'] == 0
    assert figures['chatcore_storage_write_batch_size_bucket{le="4.0"}'] == 1
    assert figures["chatcore_storage_write_batch_seconds_sum"] == pytest.approx(0.002)
    assert figures["chatcore_notifier_reconnects_total"] == 1
    assert figures['chatcore_login_failures_total{reason="bad_credentials"}'] == 2
    assert figures['chatcore_login_failures_total{reason="throttled"}'] == 1
    assert figures["process_cpu_seconds_total"] > 0


def test_delivery_lag_is_observed_for_live_events_only_in_cumulative_buckets() -> None:
    metrics = PrometheusMetrics()
    now = time.monotonic()
    metrics.event_delivered(now)  # just arrived
    metrics.event_delivered(now - 60)  # a minute late: above every bound
    metrics.event_delivered(None)  # read back from storage: delivered, no lag
    figures = scrape(metrics.exposition())
    assert figures["chatcore_events_delivered_total"] == 3
    assert figures["chatcore_delivery_lag_seconds_count"] == 2
    assert figures['chatcore_delivery_lag_seconds_bucket{le="+Inf"}'] == 2
    assert figures[f'chatcore_delivery_lag_seconds_bucket{{le="{LAG_BUCKETS[-1]}"}}'] == 1
    counts = [figures[f'chatcore_delivery_lag_seconds_bucket{{le="{b}"}}'] for b in LAG_BUCKETS]
    assert counts == sorted(counts)  # cumulative
    assert figures["chatcore_delivery_lag_seconds_sum"] >= 60


def test_each_app_counts_in_a_registry_of_its_own() -> None:
    first, second = PrometheusMetrics(), PrometheusMetrics()
    first.slow_consumer_closed()
    assert scrape(first.exposition())["chatcore_slow_consumer_closes_total"] == 1
    assert scrape(second.exposition())["chatcore_slow_consumer_closes_total"] == 0
    global_names = {f.name for f in prometheus_client.REGISTRY.collect()}
    assert not any(name.startswith("chatcore") for name in global_names)


def test_no_label_can_take_a_value_from_outside() -> None:
    """Labels are an event kind or a failure reason, all present from the start: the
    label sets are fixed, whatever the traffic."""
    figures = scrape(PrometheusMetrics().exposition())
    labelled = {key for key in figures if key.startswith("chatcore") and "{" in key}
    kinds = {f'chatcore_events_published_total{{kind="{k.value}"}}' for k in EventKind}
    assert kinds <= labelled
    kind = "|".join(k.value for k in EventKind)
    fixed = re.compile(
        rf'chatcore_(events_published_(total|created)\{{kind="({kind})"\}}'
        r'|login_failures_(total|created)\{reason="(bad_credentials|throttled)"\}'
        r'|\w+_bucket\{le="[^"]+"\})'
    )
    for key in labelled:
        assert fixed.fullmatch(key), key


def test_the_readme_lists_every_metric_and_no_other() -> None:
    exposed = {
        family.name
        for family in prometheus_client.parser.text_string_to_metric_families(
            PrometheusMetrics().exposition().decode()
        )
        # (the classic text format has no "created": its timestamps read as families)
        if family.name.startswith("chatcore") and not family.name.endswith("_created")
    }
    section = README.read_text(encoding="utf-8").split("## Operations", 1)[1].split("\n## ")[0]
    documented = set(re.findall(r"`(chatcore_\w+?)(?:_total)?`", section))
    assert documented == exposed


# --- adapters report through it -------------------------------------------------------------


def test_the_factory_builds_one_metrics_object_per_app_and_none_when_off() -> None:
    off = adapters_from(Settings(storage="memory"))
    assert off.metrics is NO_METRICS
    assert off.exposition is None
    assert isinstance(off.notifier, LocalNotifier)  # nothing in the way when off
    on, again = (adapters_from(Settings(storage="memory", metrics=True)) for _ in range(2))
    assert on.metrics is not again.metrics
    assert isinstance(on.notifier, CountingNotifier)
    assert on.services().deps.telemetry is on.metrics


async def _room(app: Services) -> tuple[User, User, Chat]:
    alice, bob = await register(app, "alice"), await register(app, "bob")
    return alice, bob, await app.chats.create_chat(alice, ChatDraft("room", [bob.id]))


def _connection(app: Services, chat: Chat, user: User, limit: int, hub: Hub) -> Connection:
    socket: Any = RecordingSocket()
    source = app.deps.storage.chats.events
    credential = Credential(user, "t", False)
    return Connection(socket, chat.id, credential, "d", limit, source, chat.seq, hub.metrics)


async def test_the_hub_counts_open_sockets_publications_and_deliveries(
    hasher: Argon2Hasher,
) -> None:
    metrics = PrometheusMetrics()
    app = bootstrap(hasher=hasher, notifier=CountingNotifier(LocalNotifier(), metrics))
    alice, bob, chat = await _room(app)
    hub = Hub(
        app.deps.notifier, app.deps.tokens.digest, app.deps.storage.chats.events, 1.0, metrics
    )
    conns = [_connection(app, chat, user, 1 << 20, hub) for user in (alice, bob, bob)]
    for conn in conns:
        await hub.join(conn)
    assert scrape(metrics.exposition())["chatcore_websockets_open"] == 3
    writers = [asyncio.create_task(conn.drain()) for conn in conns]
    for n in range(4):
        await app.chats.send_message(alice, chat.id, f"m{n}", None)
    async with asyncio.timeout(GUARD):
        for conn in conns:
            while len(conn.ws.frames) < 4:  # type: ignore[attr-defined]
                conn.ws.grew.clear()  # type: ignore[attr-defined]
                await conn.ws.grew.wait()  # type: ignore[attr-defined]
    figures = scrape(metrics.exposition())
    assert figures['chatcore_events_published_total{kind="message"}'] == 4
    assert figures["chatcore_events_delivered_total"] == 12
    assert figures["chatcore_delivery_lag_seconds_count"] == 12  # all live
    for writer in writers:
        writer.cancel()
    for conn in conns:
        hub.leave(conn)
        hub.leave(conn)  # a second leave changes nothing
    assert scrape(metrics.exposition())["chatcore_websockets_open"] == 0
    hub.stop()


async def test_a_reader_that_falls_behind_is_closed_with_1013_and_counted_once(
    hasher: Argon2Hasher,
) -> None:
    metrics = PrometheusMetrics()
    app = bootstrap(hasher=hasher)
    alice, bob, chat = await _room(app)
    hub = Hub(
        app.deps.notifier, app.deps.tokens.digest, app.deps.storage.chats.events, 1.0, metrics
    )
    stalled = _connection(app, chat, bob, 600, hub)  # no writer drains it
    await hub.join(stalled)
    for n in range(5):  # ~300 bytes a frame
        await app.chats.send_message(alice, chat.id, f"message {n}", None)
    assert stalled.closing == CLOSE_TRY_LATER
    assert scrape(metrics.exposition())["chatcore_slow_consumer_closes_total"] == 1
    hub.leave(stalled)
    hub.stop()
