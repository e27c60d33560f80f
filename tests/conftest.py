"""Shared test wiring: coroutine tests run on a fresh event loop each, and the domain
is built by the same bootstrap() the app uses, with fast Argon2 and a manual clock."""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from adapters.clock import ManualClock
from adapters.hashing import FAST_INSECURE, Argon2Hasher
from chatcore import Services
from entrypoints.bootstrap import bootstrap
from private_redis import PrivateRedis

# CI checks one fixed sample of every property (derandomize: the same examples each run,
# so a red CI is reproducible with `CI=true pytest`); a developer's runs explore fresh
# examples each time. Loaded here, before any test module decorates its tests.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests with asyncio.run: no plugin needed for plain coroutines."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs: dict[str, Any] = {name: pyfuncitem.funcargs[name] for name in names}
    asyncio.run(pyfuncitem.obj(**kwargs))
    return True


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def hasher() -> Iterator[Argon2Hasher]:
    hasher = Argon2Hasher(FAST_INSECURE)
    yield hasher
    hasher.close()


@pytest.fixture
def app(hasher: Argon2Hasher, clock: ManualClock) -> Services:
    return bootstrap(hasher=hasher, clock=clock)


@pytest.fixture(scope="session")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    """A redis-server of the session's own (started on first use): tests may kill it and
    start it again (each under a key prefix of its own); the machine's is never touched."""
    server = PrivateRedis(Path(tmp_path_factory.mktemp("redis")))
    try:
        yield server
    finally:
        server.stop()
