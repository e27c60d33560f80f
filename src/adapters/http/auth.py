"""Who is calling: a token in the Authorization header (``Token`` or ``Bearer``), a
``?token=`` (WebSockets only), or the session cookie, which for state-changing requests
also needs the CSRF header (Django's double-submit convention)."""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Mapping

import attrs
from starlette.requests import HTTPConnection
from starlette.responses import Response

from chatcore.accounts import Accounts
from chatcore.errors import AuthenticationFailed, Forbidden
from chatcore.model import User

SESSION_COOKIE = "sessionid"
CSRF_COOKIE = "csrftoken"
CSRF_HEADER = "x-csrftoken"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SCHEMES = frozenset({"token", "bearer"})
TOKEN_MAX = 256  # ours are 43 characters; anything far longer is not one of ours

NOT_PROVIDED = "Authentication credentials were not provided."
# What separates the scheme from the key: ASCII whitespace only, as DRF splits the
# header's bytes. str.split() would also split on U+0085 and U+00A0, which a latin-1
# decoded header can hold, and leave nothing at all of a header made only of them.
_SPACES = re.compile(r"[ \t\n\r\x0b\x0c]+")


@attrs.frozen
class Credential:
    """An authenticated caller and the one credential they presented."""

    user: User
    token: str
    via_cookie: bool


def header_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Token|Bearer <key>`` header; None for no header
    or another scheme. A malformed header of our schemes fails outright. Total: any
    string gives a token, None or AuthenticationFailed, never another exception."""
    parts = [part for part in _SPACES.split(headers.get("authorization") or "") if part]
    if not parts or parts[0].lower() not in SCHEMES:
        return None
    if len(parts) == 1:
        raise AuthenticationFailed("Invalid token header. No credentials provided.")
    if len(parts) > 2:
        raise AuthenticationFailed("Invalid token header. Token string should not contain spaces.")
    return parts[1]


def cookie(headers: Mapping[str, str], name: str) -> str | None:
    """The value of cookie ``name`` in the Cookie header (the last one, as Starlette
    reads it). Ours are URL-safe and never quoted, so no unquoting: http.cookies's takes
    time quadratic in the backslashes of a value, which anyone can send."""
    found = None
    for chunk in (headers.get("cookie") or "").split(";"):
        key, equals, value = chunk.partition("=")
        if equals and key.strip() == name:
            found = value.strip()
    return found


async def authenticate(
    conn: HTTPConnection, accounts: Accounts, query_token: bool = False
) -> Credential:
    token = header_token(conn.headers)
    if token is None and query_token:
        token = conn.query_params.get("token")
    via_cookie = False
    if token is None:
        token = cookie(conn.headers, SESSION_COOKIE)
        via_cookie = token is not None
    if not token:
        raise AuthenticationFailed(NOT_PROVIDED)
    if len(token) > TOKEN_MAX:
        raise AuthenticationFailed("Invalid token.")
    user = await accounts.authenticate(token)
    return Credential(user, token, via_cookie)


def client_address(conn: HTTPConnection) -> str | None:
    """The client's address as the server sees it, what the throttles key on: behind a
    proxy, the one uvicorn took from X-Forwarded-For when the proxy is trusted
    (--forwarded-allow-ips)."""
    client = conn.client
    return client.host if client else None


def check_csrf(conn: HTTPConnection, method: str) -> None:
    """A cookie-authenticated request that changes state must echo the CSRF cookie in
    the X-CSRFToken header, which another site's page cannot read."""
    if method in SAFE_METHODS:
        return
    expected = cookie(conn.headers, CSRF_COOKIE) or ""
    header = conn.headers.get(CSRF_HEADER, "")
    if not expected or not hmac.compare_digest(_bytes(expected), _bytes(header)):
        raise Forbidden("CSRF Failed: CSRF token missing or incorrect.")


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def set_session_cookies(response: Response, session_token: str, max_age: int, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE, session_token, max_age, httponly=True, samesite="lax", secure=secure
    )
    response.set_cookie(
        CSRF_COOKIE,
        secrets.token_urlsafe(32),
        max_age,
        httponly=False,
        samesite="lax",
        secure=secure,
    )


def clear_session_cookies(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax")
    response.delete_cookie(CSRF_COOKIE, samesite="lax")
