"""Declarative operations: each endpoint is an :class:`Operation` naming its method,
path, handler, body and query shapes and responses. One generic wrapper does the work
every endpoint shares (authentication, CSRF, parsing, size and type checks); the OpenAPI
document is generated from the same table."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Message, Receive, Scope, Send

from chatcore.admin import require_admin
from chatcore.errors import AuthenticationFailed, NotFound
from chatcore.model import User
from chatcore.services import Services

from .auth import Credential, authenticate, check_csrf
from .ids import id_pattern
from .wire import form_fields, render, structure, structure_body

JSON_TYPES = ("application/json",)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
FORM_FIELDS_MAX = 2000  # repeated keys of a participant list included


@attrs.frozen
class Config:
    """The HTTP adapter's own settings."""

    max_body_bytes: int = 256 * 1024
    secure_cookies: bool = False


@attrs.frozen
class Call:
    """One parsed request, as a handler sees it."""

    request: Request
    services: Services
    config: Config
    credential: Credential | None
    path: Mapping[str, int]
    query: Any
    body: Any

    @property
    def user(self) -> User:
        assert self.credential is not None, "operation declared auth=False"
        return self.credential.user


Handler = Callable[[Call], Awaitable[Response]]


@attrs.frozen
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    responses: Mapping[int, Any]
    body: type | None = None
    query: type | None = None
    auth: bool = True
    admin_only: bool = False  # to anyone but an admin, the path does not exist (404)
    description: str = ""

    @property
    def name(self) -> str:
        return self.handler.__name__

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)


def respond(value: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(render(value), status, headers, media_type="application/json")


async def read_body(request: Request, limit: int) -> bytes:
    """The raw request body, refused (413) past ``limit`` bytes, declared or sent."""
    declared = request.headers.get("content-length", "").lstrip("0")
    if declared.isascii() and declared.isdigit() and int(declared[:20]) > limit:
        raise HTTPException(413)  # (20 digits are more than any limit: no long int())
    raw = bytearray()
    try:
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                raise HTTPException(413)
    except ClientDisconnect:  # gone, or cut off by the server's body deadline: nobody reads
        raise HTTPException(400, "The connection closed before the body was complete.") from None
    return bytes(raw)


async def read_fields(request: Request, limit: int, cls: type) -> object:
    """The request body as the JSON-like value to structure into ``cls``: JSON, or an
    HTML form (urlencoded or multipart, lists as repeated keys), as DRF's default
    parsers took them. Checked for size (413) and media type (415). An empty body reads
    as ``{}``, so missing fields get their own "required" messages."""
    raw = await read_body(request, limit)
    if not raw.strip():
        return {}
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media in FORM_TYPES:
        return form_fields(await _form(request, raw), cls)
    if media not in JSON_TYPES and not media.endswith("+json"):
        raise HTTPException(415, f'Unsupported media type "{media}" in request.')
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise HTTPException(400, f"JSON parse error - {exc}") from None


async def _form(request: Request, raw: bytes) -> FormData:
    """Parse the body already read (and size-checked) as a form; a file part is no
    field of ours (400), and neither is a field past the limits."""

    async def replay() -> Message:
        return {"type": "http.request", "body": raw, "more_body": False}

    form = await Request(request.scope, replay).form(max_files=0, max_fields=FORM_FIELDS_MAX)
    return form


def _path_ints(request: Request, names: Sequence[str]) -> dict[str, int]:
    # Already ids: the route only matched numerals 1..MAX_ID (see ids.py).
    return {name: request.path_params[name] for name in names}


async def _caller(request: Request, services: Services, admin_only: bool) -> Credential:
    """Who is calling, with the CSRF check for cookie writes. On an admin path, anyone
    but an admin gets what an unknown path answers, before anything else is looked at,
    so not even the status tells them the path exists."""
    try:
        credential = await authenticate(request, services.accounts)
    except AuthenticationFailed:
        if admin_only:
            raise NotFound from None
        raise
    if admin_only:
        require_admin(credential.user)
    if credential.via_cookie:
        check_csrf(request, request.method)
    return credential


def endpoint(
    op: Operation, services: Services, config: Config
) -> Callable[[Request], Awaitable[Response]]:
    # What the table says, read once here rather than on every request.
    auth, names, query_cls, body_cls, handler = (
        op.auth,
        op.path_params,
        op.query,
        op.body,
        op.handler,
    )

    async def handle(request: Request) -> Response:
        credential = None
        if auth:
            credential = await _caller(request, services, op.admin_only)
        path = _path_ints(request, names) if names else {}
        query = structure(dict(request.query_params), query_cls) if query_cls else None
        body: object = None
        if body_cls:
            fields = await read_fields(request, config.max_body_bytes, body_cls)
            body = structure_body(fields, body_cls)
        return await handler(Call(request, services, config, credential, path, query, body))

    handle.__name__ = op.name
    return handle


def starlette_routes(
    operations: Sequence[Operation], services: Services, config: Config
) -> list[BaseRoute]:
    """Each operation at its path and at the same path without the trailing slash (no
    redirect, which would drop a POST body), both spellings matched by one route: the
    router tries routes in turn, and every request pays for each one tried before its
    own. Operations sharing a path share a route."""
    by_path: dict[str, dict[str, Operation]] = {}
    for op in operations:
        by_path.setdefault(op.path, {})[op.method] = op
    routes: list[BaseRoute] = []
    for path, ops in by_path.items():
        handlers = {m: endpoint(op, services, config) for m, op in ops.items()}
        hidden = all(op.admin_only for op in ops.values())
        allow = ", ".join(sorted({*handlers, *(["HEAD"] if "GET" in handlers else [])}))

        async def dispatch(
            request: Request,
            handlers: dict[str, Any] = handlers,
            hidden: bool = hidden,
            allow: str = allow,
        ) -> Response:
            handler = handlers.get(request.method if request.method != "HEAD" else "GET")
            if handler is None:
                if hidden:  # a method an admin path lacks is a 405 only to an admin
                    await _caller(request, services, admin_only=True)
                raise HTTPException(405, headers={"Allow": allow})
            response: Response = await handler(request)
            return response

        # One route matches both spellings (the router tries routes in turn, and every
        # request pays for each one tried before its own).
        route = _EveryMethod(id_pattern(path), dispatch, methods=list(handlers))
        if path.endswith("/"):
            route.path_regex = re.compile(route.path_regex.pattern.removesuffix("/$") + "/?$")
        routes.append(route)
    return routes


class _EveryMethod(Route):
    """A route that hands every method to its endpoint, which answers one it lacks (405,
    or 404 on an admin path) where Starlette would answer 405 before our code could say
    404 instead. ``methods`` still lists those it serves."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        return (Match.FULL if match is Match.PARTIAL else match), child

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
