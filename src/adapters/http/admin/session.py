"""Who is using the admin console, and the checks every console request passes.

The console has a session cookie of its own (``adminsession``: HttpOnly, SameSite=Strict,
scoped to ``/admin/``, Secure behind HTTPS), holding a token of the same token store as
the API's sessions: stored only as its digest, expiring after the token TTL, revoked by
logging out, by a new password and by deactivation. Its login is the use case
:meth:`chatcore.admin.Admin.login`, behind the login throttle.

CSRF: every form of a logged-in page carries a token derived from the session (an HMAC
keyed by the session's secret, so it needs no storage, differs per session and says
nothing of the secret); every POST must echo it. The login form, before any session,
is a double submit: a random value in a cookie of its own and in the form.

Visibility: a visitor without a session is sent to the login page (whatever the path,
so nothing tells which console pages exist); a session of an account without the admin
flag gets the very answer of an unknown path (the app's 404).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import attrs
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from chatcore.errors import AuthenticationFailed
from chatcore.model import User
from chatcore.services import Services

from ..auth import TOKEN_MAX, cookie

CONSOLE_PATH = "/admin"  # pages for a person (README "Admin console"), not API operations
SESSION_COOKIE = "adminsession"
LOGIN_CSRF_COOKIE = "adminlogincsrf"
CSRF_FIELD = "csrf_token"
_CSRF_CONTEXT = b"chatcore admin console csrf"


@attrs.frozen
class Viewer:
    """A logged-in administrator, the session's secret, and its CSRF token."""

    user: User
    token: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


def csrf_token(session_token: str) -> str:
    return hmac.new(session_token.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def same(given: str, expected: str) -> bool:
    """Constant-time equality of two form or cookie values (any text)."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def console_root(request: Request) -> str:
    """Where the console lives, under the ASGI root path when mounted below one."""
    return str(request.scope.get("root_path", "")) + CONSOLE_PATH


async def viewer(request: Request, services: Services) -> Viewer | None:
    """The administrator whose session the request carries; None without a valid one.
    Raises the app's 404 for a session of anyone else."""
    token = cookie(request.headers, SESSION_COOKIE)
    if not token or len(token) > TOKEN_MAX:
        return None
    try:
        user = await services.accounts.authenticate(token)
    except AuthenticationFailed:
        return None
    if not user.is_admin:
        raise HTTPException(404)
    return Viewer(user, token)


def set_session(response: Response, request: Request, token: str, ttl: int, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ttl,
        path=console_root(request) + "/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=console_root(request) + "/login/")


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path=console_root(request) + "/", httponly=True, samesite="strict"
    )


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def set_login_csrf(response: Response, request: Request, value: str, secure: bool) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        value,
        path=console_root(request) + "/login/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def login_csrf_ok(request: Request, given: str) -> bool:
    expected = cookie(request.headers, LOGIN_CSRF_COOKIE) or ""
    return bool(expected) and same(given, expected)
