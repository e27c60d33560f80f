"""One table from exceptions to responses in API.md's (DRF's) shapes. Endpoints raise
domain errors; nothing else turns them into status codes."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from chatcore.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    Throttled,
    Unavailable,
    ValidationFailed,
)

from .wire import dumps

log = logging.getLogger("chatcore.http")

AUTH_SCHEME = 'Token realm="api"'

HTTP_DETAILS = {
    400: "Bad request.",
    401: "Authentication credentials were not provided.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    413: "Request body is too large.",
    415: "Unsupported media type in request.",
}


def json_error(status: int, body: object, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(body), status, headers, media_type="application/json")


def _validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationFailed)
    return json_error(400, exc.fields)


def _detail(status: int) -> Callable[[Request, Exception], Response]:
    def handle(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)
        headers = {"WWW-Authenticate": AUTH_SCHEME} if status == 401 else None
        return json_error(status, {"detail": exc.message}, headers)

    return handle


def _throttled(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, Throttled)
    wait = math.ceil(exc.retry_after)
    detail = f"Request was throttled. Expected available in {wait} seconds."
    return json_error(429, {"detail": detail}, {"Retry-After": str(wait)})


def _unavailable(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, Unavailable)
    wait = max(1, math.ceil(exc.retry_after))
    return json_error(503, {"detail": exc.message}, {"Retry-After": str(wait)})


def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        detail = f'Method "{request.method}" not allowed.'
    else:
        detail = exc.detail if exc.detail != _phrase(exc.status_code) else ""
        detail = detail or HTTP_DETAILS.get(exc.status_code, _phrase(exc.status_code))
    headers = dict(exc.headers or {})
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = AUTH_SCHEME
    return json_error(exc.status_code, {"detail": detail}, headers)


def _internal(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return json_error(500, {"detail": "A server error occurred."})


def _phrase(status: int) -> str:
    return HTTPStatus(status).phrase


Handler = Callable[[Request, Exception], Response | Awaitable[Response]]

EXCEPTION_HANDLERS: dict[int | type[Exception], Handler] = {
    ValidationFailed: _validation,
    AuthenticationFailed: _detail(401),
    Forbidden: _detail(403),
    NotFound: _detail(404),
    Conflict: _detail(409),
    Throttled: _throttled,
    Unavailable: _unavailable,
    HTTPException: _http,
    Exception: _internal,
}
