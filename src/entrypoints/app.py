"""The ASGI application factory: the one composition root of the server.

``create_app(settings)`` builds the adapters named in the settings and the routes;
resources (the database's threads, the hashing pool) open and close in the lifespan.
Nothing is done at import time. uvicorn calls it as a factory:
``uvicorn --factory entrypoints.app:create_app``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette

from adapters.hashing import Argon2Hasher
from adapters.http.api import OPERATIONS
from adapters.http.docs import doc_routes
from adapters.http.home import home_routes
from adapters.http.problems import EXCEPTION_HANDLERS
from adapters.http.realtime import Hub, realtime_routes
from adapters.http.routes import Config, starlette_routes
from adapters.memory import InMemoryStorage
from adapters.sqlite import SqliteStorage
from chatcore.ports import Storage

from .bootstrap import bootstrap
from .settings import Settings


def build_storage(settings: Settings) -> Storage:
    if settings.storage == "memory":
        return InMemoryStorage()
    return SqliteStorage(settings.database, migrate=settings.migrate)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    storage = build_storage(settings)
    hasher = Argon2Hasher()
    services = bootstrap(storage=storage, hasher=hasher, policy=settings.policy())
    config = Config(max_body_bytes=settings.max_body_bytes, secure_cookies=settings.secure_cookies)
    hub = Hub(services.deps.notifier, services.deps.tokens.digest)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if isinstance(storage, SqliteStorage):
                await stack.enter_async_context(storage)
            stack.callback(hasher.close)
            stack.callback(hub.stop)  # runs first: sockets close before the storage does
            yield

    app = Starlette(
        routes=[
            *starlette_routes(OPERATIONS, services, config),
            *realtime_routes(services, hub, settings.realtime()),
            *doc_routes(OPERATIONS),
            *home_routes(),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.settings = settings
    app.state.hub = hub
    return app
