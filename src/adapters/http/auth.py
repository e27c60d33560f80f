"""Who is calling: a token in the Authorization header (``Token`` or ``Bearer``), a
``?token=`` (WebSockets only), or the session cookie, which for state-changing requests
also needs the CSRF header (Django's double-submit convention)."""

from __future__ import annotations

import hmac
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


@attrs.frozen
class Credential:
    """An authenticated caller and the one credential they presented."""

    user: User
    token: str
    via_cookie: bool


def header_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Token|Bearer <key>`` header; None for no header
    or another scheme. A malformed header of our schemes fails outright."""
    value = headers.get("authorization")
    if not value:
        return None
    parts = value.split()
    if parts[0].lower() not in SCHEMES:
        return None
    if len(parts) != 2:
        raise AuthenticationFailed("Invalid token header. Token string should not contain spaces.")
    return parts[1]


async def authenticate(
    conn: HTTPConnection, accounts: Accounts, query_token: bool = False
) -> Credential:
    token = header_token(conn.headers)
    if token is None and query_token:
        token = conn.query_params.get("token")
    via_cookie = False
    if token is None:
        token = conn.cookies.get(SESSION_COOKIE)
        via_cookie = token is not None
    if not token:
        raise AuthenticationFailed(NOT_PROVIDED)
    if len(token) > TOKEN_MAX:
        raise AuthenticationFailed("Invalid token.")
    user = await accounts.authenticate(token)
    return Credential(user, token, via_cookie)


def check_csrf(conn: HTTPConnection, method: str) -> None:
    """A cookie-authenticated request that changes state must echo the CSRF cookie in
    the X-CSRFToken header, which another site's page cannot read."""
    if method in SAFE_METHODS:
        return
    cookie = conn.cookies.get(CSRF_COOKIE, "")
    header = conn.headers.get(CSRF_HEADER, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), header.encode()):
        raise Forbidden("CSRF Failed: CSRF token missing or incorrect.")


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
