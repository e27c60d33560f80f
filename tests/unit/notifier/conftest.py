"""The notifier contract runs once per adapter: every test taking ``open_notifier`` (or
``deployment``) is a test of every notifier. A new adapter joins by adding a parameter
here (opening and closing it on the test's own event loop), and is not done until the
suite passes.

A :class:`Deployment` is what several server processes share: each ``open()`` is one more
process of it (for the in-process notifier, which crosses no process, they are all the
one process it serves), and ``outage()`` takes away what carries its notifications
between them, for the duration of the block (nothing, for the in-process notifier)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager

import pytest
import redis

from adapters.memory import LocalNotifier
from adapters.metrics import CountingNotifier
from adapters.prometheus import PrometheusMetrics
from adapters.redis import RedisNotifier
from chatcore.ports import Notifier
from private_redis import PrivateRedis, fresh_prefix

OpenNotifier = Callable[[], AbstractAsyncContextManager[Notifier]]
CLEANUP_SECONDS = 5.0


class LocalDeployment:
    """One process: every "process" opened is the same notifier; nothing to lose."""

    can_lose_connection = False

    def __init__(self) -> None:
        self._notifier: Notifier = LocalNotifier()

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[Notifier]:
        yield self._notifier

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        yield


class CountedDeployment(LocalDeployment):
    """The wrapper that counts published events (CHATCORE_METRICS) must keep every
    promise of the notifier it wraps."""

    def __init__(self) -> None:
        self._notifier = CountingNotifier(LocalNotifier(), PrometheusMetrics())


class RedisDeployment:
    """Processes sharing one Redis (a private server, which an outage kills and starts
    again on the same port) under a key prefix of this test's own."""

    can_lose_connection = True

    def __init__(self, server: PrivateRedis) -> None:
        self.server = server
        self.prefix = fresh_prefix()

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[Notifier]:
        async with RedisNotifier(self.server.url, self.prefix) as notifier:
            yield notifier

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        self.server.kill()
        try:
            yield
        finally:
            self.server.start()

    def clean_up(self) -> None:
        """Nothing of the test may stay behind under its prefix: no channel still
        subscribed once its notifiers closed (Redis drops them as it notices the
        connections close), and no key (pub/sub makes none; any is deleted)."""
        with redis.Redis.from_url(self.server.url) as client:
            deadline = time.monotonic() + CLEANUP_SECONDS
            while client.pubsub_channels(self.prefix + "*"):
                assert time.monotonic() < deadline, client.pubsub_channels(self.prefix + "*")
                time.sleep(0.02)
            leftover = list(client.scan_iter(match=self.prefix + "*"))
            if leftover:
                client.delete(*leftover)
            assert leftover == []


@pytest.fixture(params=["local", "counted-local", "redis"])
def deployment(request: pytest.FixtureRequest) -> Iterator[LocalDeployment | RedisDeployment]:
    if request.param == "local":
        yield LocalDeployment()
        return
    if request.param == "counted-local":
        yield CountedDeployment()
        return
    server: PrivateRedis = request.getfixturevalue("private_redis")
    if server.process is None or server.process.poll() is not None:
        server.start()  # a test that failed inside an outage may have left it down
    redis_deployment = RedisDeployment(server)
    yield redis_deployment
    redis_deployment.clean_up()


@pytest.fixture
def open_notifier(deployment: LocalDeployment | RedisDeployment) -> OpenNotifier:
    return deployment.open
