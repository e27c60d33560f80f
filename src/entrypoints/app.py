"""The ASGI application factory: the one composition root of the server.

``create_app(settings)`` takes the adapters named in the settings from
:func:`~entrypoints.bootstrap.adapters_from` and builds the routes; the adapters open and
close in the lifespan. Nothing is done at import time. uvicorn calls it as a factory:
``uvicorn --factory entrypoints.app:create_app``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette

from adapters.http.admin import admin_routes
from adapters.http.api import OPERATIONS
from adapters.http.docs import doc_routes
from adapters.http.home import home_routes
from adapters.http.ops import ops_paths, ops_routes
from adapters.http.problems import EXCEPTION_HANDLERS
from adapters.http.routes import Config, starlette_routes
from adapters.http.ws.codes import CLOSE_GOING_AWAY
from adapters.http.ws.endpoint import realtime_routes
from adapters.http.ws.hub import Hub
from adapters.prometheus import CONTENT_TYPE as METRICS_TYPE

from .bootstrap import adapters_from
from .settings import Settings

# The lifespan state key under which the app hands the server its "close every socket
# with 1001" hook: uvicorn cuts connections before the lifespan's shutdown runs, so the
# server has to call it first (see server.Server.shutdown).
GOING_AWAY = "chatcore.going_away"
GoingAway = Callable[[], Awaitable[None]]


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    adapters = adapters_from(settings)
    services = adapters.services(settings.policy())
    config = Config(max_body_bytes=settings.max_body_bytes, secure_cookies=settings.secure_cookies)
    realtime = settings.realtime()
    deps = services.deps
    hub = Hub(
        deps.notifier,
        deps.tokens.digest,
        deps.storage.chats.events,
        realtime.poll_seconds,
        adapters.metrics,
    )
    operations = settings.operations()
    probes = {"storage": adapters.storage.ping, "notifier": adapters.notifier.ping}

    async def going_away() -> None:
        await hub.close_and_wait(CLOSE_GOING_AWAY)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, GoingAway]]:
        async with adapters:
            try:
                yield {GOING_AWAY: going_away}
            finally:
                hub.stop()  # sockets close before the storage does

    app = Starlette(
        routes=[
            *starlette_routes(OPERATIONS, services, config),
            *realtime_routes(services, hub, realtime),
            *ops_routes(operations, probes, adapters.exposition, METRICS_TYPE),
            *doc_routes(OPERATIONS, ops_paths(operations)),
            *admin_routes(services, config),
            *home_routes(),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.settings = settings
    app.state.hub = hub
    return app
