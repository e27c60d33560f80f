"""Running the app under uvicorn: the WebSocket settings the contract needs, the
connection limits of :mod:`.connections`, credentials masked in the logs, and a goodbye
(1001) to every socket before uvicorn cuts connections at shutdown."""

from __future__ import annotations

import logging
import socket

import uvicorn
from uvicorn.supervisors import ChangeReload, Multiprocess

from .app import GOING_AWAY
from .connections import LimitedConfig
from .logs import log_config
from .settings import Settings

APP = "entrypoints.app:create_app"
MAX_FRAME_BYTES = 64 * 1024  # larger frames close the socket with 1009
PING_SECONDS = 20.0  # a peer that misses a pong for this long is dropped


log = logging.getLogger("uvicorn.error")  # where uvicorn says it is running
WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 - names, not a bind


def announce(sock: socket.socket) -> None:
    """One line with where a person finds the API, its documents and the home page, at
    the address actually bound (``--port 0`` included)."""
    host, port = sock.getsockname()[:2]
    shown = WILDCARDS.get(host, host)
    base = f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"
    where = " (listening on every address)" if host in WILDCARDS else ""
    log.info(
        "chatcore: API %s/api/ - docs %s/api/docs/ and %s/api/redoc/ - home page %s/%s",
        base,
        base,
        base,
        base,
        where,
    )


class Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, *, announce: bool = True) -> None:
        super().__init__(config)
        self._announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # Once listening, after the app's start-up (migrations) went well; a supervisor
        # of several workers says it once for all of them instead.
        if self._announce and self.started and self.servers and self.servers[0].sockets:
            announce(self.servers[0].sockets[0])

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn would fail open WebSockets with 1012; ours say "going away" first. The
        # app hands over the hook in its lifespan state: it reaches this server's own hub.
        going_away = self.lifespan.state.get(GOING_AWAY)
        if going_away is not None:
            await going_away()
        await super().shutdown(sockets)


def config(
    host: str,
    port: int,
    *,
    workers: int = 1,
    reload: bool = False,
    log_level: str = "info",
    settings: Settings | None = None,
    app: str = APP,
) -> uvicorn.Config:
    """chatcore's uvicorn settings; ``app`` names another factory to run under the very
    same ones (the benchmark's ceiling server does)."""
    settings = settings or Settings.from_env()
    return LimitedConfig(
        app,
        limits=settings.connection_limits(),
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        log_level=log_level,
        log_config=log_config(),
        ws_max_size=MAX_FRAME_BYTES,
        ws_ping_interval=PING_SECONDS,
        ws_ping_timeout=PING_SECONDS,
        timeout_graceful_shutdown=10,
    )


def serve(host: str, port: int, **options: object) -> None:
    """What ``uvicorn.run`` does, with our Server where uvicorn lets us choose it: one
    process, or --reload. uvicorn's --workers supervisor builds its own servers, whose
    sockets get uvicorn's 1012 ("service restart") at shutdown instead of 1001."""
    cfg = config(host, port, **options)  # type: ignore[arg-type]
    if not cfg.should_reload and cfg.workers == 1:
        Server(cfg).run()
        return
    server = Server(cfg, announce=False)
    sock = cfg.bind_socket()
    announce(sock)
    if cfg.should_reload:
        ChangeReload(cfg, target=server.run, sockets=[sock]).run()
    else:
        Multiprocess(cfg, sockets=[sock]).run()  # its workers run uvicorn.Server
