"""The notifier contract runs once per adapter: every test taking ``open_notifier`` is a
test of every notifier. A new adapter joins by adding a parameter here (opening and
closing it on the test's own event loop), and is not done until the suite passes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import pytest

from adapters.memory import LocalNotifier
from adapters.metrics import CountingNotifier
from adapters.prometheus import PrometheusMetrics
from chatcore.ports import Notifier

OpenNotifier = Callable[[], AbstractAsyncContextManager[Notifier]]


@contextlib.asynccontextmanager
async def _local() -> AsyncIterator[Notifier]:
    yield LocalNotifier()


@contextlib.asynccontextmanager
async def _counted() -> AsyncIterator[Notifier]:
    """The wrapper that counts published events (CHATCORE_METRICS) must keep every
    promise of the notifier it wraps."""
    yield CountingNotifier(LocalNotifier(), PrometheusMetrics())


@pytest.fixture(params=["local", "counted-local"])
def open_notifier(request: pytest.FixtureRequest) -> OpenNotifier:
    return {"local": _local, "counted-local": _counted}[request.param]
