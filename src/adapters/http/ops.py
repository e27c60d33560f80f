"""The operations endpoints, for load balancers, orchestrators and Prometheus rather than
for chat clients: ``GET /healthz`` (the process is up), ``GET /readyz`` (its storage and
notifier answer) and ``GET /metrics`` (Prometheus text). Each is turned on or off by a
setting (:class:`OpsConfig`); one that is off is not routed (404) and not documented.

They are in the OpenAPI document (API.md's "Operations" is part of the contract), as
path items written out here beside their routes, tagged ``operations``, the way
:mod:`.docs` documents its own pages: they take no credentials, bodies or parameters,
and ``/metrics`` answers text, not a wire class of the API.

``/metrics`` tells whoever reads it how busy the server is and how many logins fail: it
is off by default and, when on, answered only to loopback and private addresses (what
a Prometheus inside the deployment scrapes from); anyone else gets the 404 of a path
that does not exist. Behind a reverse proxy the peer is the proxy unless uvicorn
trusts it for ``X-Forwarded-For`` (``--forwarded-allow-ips``), so do not route
``/metrics`` through a public proxy (README, "Operations").
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .openapi import JSON, component_name, ref
from .ops_config import OpsConfig
from .problems import json_error
from .routes import respond
from .wire import Detail

log = logging.getLogger("chatcore.ops")

HEALTHZ_PATH = "/healthz"
READYZ_PATH = "/readyz"
METRICS_PATH = "/metrics"
READY_TIMEOUT = 2.0  # seconds a probe may take before its component counts as down
RETRY_AFTER = 5  # seconds, in a 503's Retry-After: about a probe period
TEXT = "text/plain"

Probe = Callable[[], Awaitable[None]]


class Readiness:
    """Pings every component at once and says which are down (one that takes over
    ``timeout`` seconds is). A change of state is logged, with the cause, once (not at
    every probe of a load balancer); the cause never goes to the client."""

    def __init__(self, probes: Mapping[str, Probe], timeout: float = READY_TIMEOUT) -> None:
        self._probes = dict(probes)
        self._timeout = timeout
        self._down: set[str] = set()

    async def down(self) -> list[str]:
        names = list(self._probes)
        outcomes = await asyncio.gather(
            *(self._check(self._probes[name]) for name in names), return_exceptions=True
        )
        down = []
        for name, outcome in zip(names, outcomes, strict=True):
            if isinstance(outcome, asyncio.CancelledError):
                raise outcome
            if outcome is None:
                if name in self._down:
                    log.warning("ready: %s is reachable again", name)
                    self._down.discard(name)
                continue
            down.append(name)
            if name not in self._down:
                cause = (
                    f"no answer within {self._timeout:g}s"
                    if isinstance(outcome, TimeoutError)
                    else f"{type(outcome).__name__}: {outcome}"
                )
                log.warning("not ready: %s is unreachable (%s)", name, cause)
                self._down.add(name)
        return down

    async def _check(self, probe: Probe) -> None:
        async with asyncio.timeout(self._timeout):
            await probe()


def from_private_network(request: Request) -> bool:
    """Whether the peer is this host or a private network (RFC 1918, unique local,
    link-local); a peer over a Unix socket is local. Anything else, a name included,
    is not."""
    if request.client is None:
        return True
    try:
        address = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_private


def ops_routes(
    config: OpsConfig,
    probes: Mapping[str, Probe],
    exposition: Callable[[], bytes] | None,
    content_type: str = TEXT,
) -> list[BaseRoute]:
    """The routes ``config`` turns on. ``probes`` are what ``/readyz`` pings, by the
    name a 503 reports; ``exposition`` renders the metrics (None: no ``/metrics``,
    whatever ``config`` says, since nothing is counted)."""
    routes: list[BaseRoute] = []

    if config.healthz:

        async def healthz(request: Request) -> Response:
            return respond({"status": "ok"})

        routes.append(Route(HEALTHZ_PATH, healthz, methods=["GET"]))

    if config.readyz:
        readiness = Readiness(probes)

        async def readyz(request: Request) -> Response:
            down = await readiness.down()
            if not down:
                return respond({"status": "ready"})
            detail = f"Not ready: {' and '.join(down)} unreachable."
            return json_error(503, {"detail": detail}, {"Retry-After": str(RETRY_AFTER)})

        routes.append(Route(READYZ_PATH, readyz, methods=["GET"]))

    if config.metrics and exposition is not None:
        render = exposition

        async def metrics(request: Request) -> Response:
            if not from_private_network(request):
                raise HTTPException(404)
            return Response(render(), media_type=content_type)

        routes.append(Route(METRICS_PATH, metrics, methods=["GET"]))
    return routes


def ops_paths(config: OpsConfig) -> dict[str, dict[str, Any]]:
    """The OpenAPI path items of the endpoints ``config`` turns on."""

    def status(value: str) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"status": {"const": value}},
            "required": ["status"],
            "additionalProperties": False,
        }

    def get(operation_id: str, summary: str, description: str, responses: Any) -> Any:
        return {
            "get": {
                "operationId": operation_id,
                "summary": summary,
                "description": description,
                "tags": ["operations"],
                "security": [],
                "responses": responses,
            }
        }

    paths: dict[str, dict[str, Any]] = {}
    if config.healthz:
        paths[HEALTHZ_PATH] = get(
            "healthz",
            "Liveness",
            "The process is up and its event loop answers: checks nothing else, so that "
            "an orchestrator restarts only a process that is stuck. Off with "
            "`CHATCORE_HEALTHZ=false`.",
            {
                "200": {
                    "description": "Up.",
                    "content": {JSON: {"schema": status("ok"), "example": {"status": "ok"}}},
                }
            },
        )
    if config.readyz:
        paths[READYZ_PATH] = get(
            "readyz",
            "Readiness",
            "The storage and the notifier both answer a ping (each within "
            f"{READY_TIMEOUT:g} seconds): send this process traffic. Otherwise 503, "
            "naming what is unreachable. Off with `CHATCORE_READYZ=false`.",
            {
                "200": {
                    "description": "Ready.",
                    "content": {JSON: {"schema": status("ready"), "example": {"status": "ready"}}},
                },
                "503": {
                    "description": "Not ready: the storage, the notifier, or both, did not answer.",
                    "headers": {
                        "Retry-After": {
                            "description": "Seconds before asking again.",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 1},
                            "example": RETRY_AFTER,
                        }
                    },
                    "content": {
                        JSON: {
                            "schema": ref(component_name(Detail)),
                            "example": {"detail": "Not ready: storage unreachable."},
                        }
                    },
                },
            },
        )
    if config.metrics:
        paths[METRICS_PATH] = get(
            "metrics",
            "Metrics",
            "This process's metrics in the Prometheus text format (version 0.0.4): open "
            "sockets, events published and delivered, delivery lag, slow-consumer "
            "closes, storage write batches, login failures, notifier reconnects (the "
            "README lists them). Each worker process counts its own. Served only to "
            "loopback and private addresses; on with `CHATCORE_METRICS=true`.",
            {
                "200": {
                    "description": "The metrics.",
                    "content": {
                        TEXT: {
                            "schema": {"type": "string"},
                            "example": "# TYPE chatcore_websockets_open gauge\n"
                            "chatcore_websockets_open 3.0\n",
                        }
                    },
                },
                "404": {
                    "description": "Asked from a public address: as if there were no such path.",
                    "content": {
                        JSON: {
                            "schema": ref(component_name(Detail)),
                            "example": {"detail": "Not found."},
                        }
                    },
                },
            },
        )
    return paths
