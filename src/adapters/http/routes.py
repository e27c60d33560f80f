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
from starlette.routing import BaseRoute, Route
from starlette.types import Message

from chatcore.errors import NotFound
from chatcore.model import User
from chatcore.rules import MAX_ID
from chatcore.services import Services

from .auth import Credential, authenticate, check_csrf
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
    declared = request.headers.get("content-length", "")
    if declared.isdecimal() and len(declared) < 20 and int(declared) > limit:
        raise HTTPException(413)
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
    values = {name: int(request.path_params[name]) for name in names}
    if any(v > MAX_ID for v in values.values()):
        raise NotFound  # no object has such an id
    return values


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
            credential = await authenticate(request, services.accounts)
            if credential.via_cookie:
                check_csrf(request, request.method)
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

        async def dispatch(request: Request, handlers: dict[str, Any] = handlers) -> Response:
            handler = handlers[request.method if request.method != "HEAD" else "GET"]
            response: Response = await handler(request)
            return response

        route = Route(re.sub(r"{(\w+)}", r"{\1:int}", path), dispatch, methods=list(handlers))
        if path.endswith("/"):
            route.path_regex = re.compile(route.path_regex.pattern.removesuffix("/$") + "/?$")
        routes.append(route)
    return routes
