"""The admin console's pages at ``/admin/``: HTML rendered by Jinja2 (autoescaping
everything), forms posting back to the page they came from, every change made by the
use cases the REST API calls (:mod:`chatcore.admin`), so it is checked and announced
(events, closed sockets) exactly as over the API.

No page runs a script or carries a style of its own: the one style sheet is a file of
this package, and the Content-Security-Policy says so (nothing inline, nothing from
elsewhere, no framing).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources
from typing import Any
from urllib.parse import urlencode, urlsplit

import jinja2
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from chatcore.admin import AccountEdit, MessageFilter, UserFilter
from chatcore.errors import (
    AuthenticationFailed,
    DomainError,
    NotFound,
    Throttled,
    ValidationFailed,
)
from chatcore.membership import ChatMembers
from chatcore.model import UserType
from chatcore.services import Services

from ..auth import client_address
from ..ids import id_pattern
from ..routes import Config
from . import forms
from .forms import BadInput, Fields
from .session import (
    CONSOLE_PATH,
    CSRF_FIELD,
    Viewer,
    clear_session,
    console_root,
    login_csrf_ok,
    new_login_csrf,
    same,
    set_login_csrf,
    set_session,
    viewer,
)

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
PER_PAGE = 50
LATEST = 20  # messages on a chat's page
USER_SORTS = (
    ("id", "Id, oldest first"),
    ("-id", "Id, newest first"),
    ("username", "Username, A to Z"),
    ("-username", "Username, Z to A"),
    ("date_joined", "Joined, earliest first"),
    ("-date_joined", "Joined, latest first"),
    ("user_type", "User type"),
)
# What a redirect after a change says on the page it lands on (?done=KEY): fixed
# messages, so no query string puts text of its own on a page.
DONE = {
    "user_saved": "The account was saved.",
    "password_set": "The password was set; the account's sessions and tokens were revoked.",
    "user_deleted": "The account was deleted.",
    "chat_renamed": "The chat was renamed.",
    "added": "The participants were added.",
    "removed": "The participant was removed.",
    "chat_deleted": "The chat was deleted.",
    "message_deleted": "The message was deleted.",
    "logged_out": "You are logged out.",
}
LOGIN_FAILED = "Please enter the correct username and password of an admin account."

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("adapters.http.admin", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_STYLE = resources.files("adapters.http.admin").joinpath("static/admin.css")


class Console:
    """The pages, over the use cases of ``services``."""

    def __init__(self, services: Services, config: Config) -> None:
        self.services = services
        self.admin = services.admin
        self.config = config
        self.style = _STYLE.read_bytes()

    # responses -------------------------------------------------------------------------

    def render(
        self,
        request: Request,
        template: str,
        who: Viewer | None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        page = _TEMPLATES.get_template(template).render(
            base=console_root(request),
            viewer=who,
            notice=DONE.get(_quietly(request, "done")),
            errors=context.pop("errors", {}),
            csrf_field=CSRF_FIELD,
            **context,
        )
        return HTMLResponse(page, status, {**SECURITY_HEADERS, **(headers or {})})

    def problem(
        self, request: Request, who: Viewer | None, status: int, title: str, errors: object = None
    ) -> HTMLResponse:
        return self.render(request, "problem.html", who, status, title=title, errors=errors or {})

    def redirect(self, request: Request, path: str, **params: str) -> Response:
        query = f"?{urlencode(params)}" if params else ""
        return RedirectResponse(console_root(request) + path + query, 303, SECURITY_HEADERS)

    # the gate ----------------------------------------------------------------------------

    def page(
        self,
        get: Callable[[Request, Viewer], Awaitable[Response]] | None = None,
        post: Callable[[Request, Viewer, Fields], Awaitable[Response]] | None = None,
    ) -> Callable[[Request], Awaitable[Response]]:
        """An endpoint for a logged-in administrator: anyone else goes to the login page
        (no session) or gets the app's 404 (a session without the admin flag) whatever
        the method; a POST must carry the session's CSRF token; domain errors and bad
        input become pages with their status."""

        async def endpoint(request: Request) -> Response:
            who = await viewer(request, self.services)
            if who is None:
                return self.to_login(request)
            try:
                if request.method in ("GET", "HEAD") and get is not None:
                    return await get(request, who)
                if request.method == "POST" and post is not None:
                    fields = await forms.form(request, self.config.max_body_bytes)
                    if not same(fields.text(CSRF_FIELD), who.csrf):
                        return self.csrf_refused(request, who)
                    return await post(request, who, fields)
                return self.problem(request, who, 405, "Method not allowed")
            except BadInput as bad:
                return self.problem(request, who, bad.status, "Invalid input", bad.fields)
            except ValidationFailed as invalid:
                return self.problem(request, who, 400, "Invalid input", invalid.fields)
            except NotFound:
                return self.not_found(request, who)
            except DomainError as refused:  # Forbidden, and nothing else a change raises
                return self.problem(request, who, 403, refused.message)

        return endpoint

    def to_login(self, request: Request) -> Response:
        path = request.url.path
        params = {"next": path} if request.method == "GET" and path != self.home(request) else {}
        return self.redirect(request, "/login/", **params)

    def home(self, request: Request) -> str:
        return console_root(request) + "/"

    def not_found(self, request: Request, who: Viewer) -> HTMLResponse:
        return self.problem(request, who, 404, "Not found")

    def csrf_refused(self, request: Request, who: Viewer | None) -> HTMLResponse:
        message = "The form is out of date or came from elsewhere: reload the page and try again."
        return self.problem(request, who, 403, "CSRF check failed", {"csrf_token": [message]})

    # log in and out --------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        who = await viewer(request, self.services)
        if who is not None and request.method in ("GET", "HEAD"):
            return self.redirect(request, "/")
        if request.method in ("GET", "HEAD"):
            return self.login_form(request, 200)
        if request.method != "POST":
            return self.to_login(request)
        try:
            fields = await forms.form(request, self.config.max_body_bytes)
            username, password = fields.text("username"), fields.text("password")
            following = fields.text("next")
        except BadInput as bad:
            return self.login_form(request, bad.status, bad.fields)
        if not login_csrf_ok(request, fields.text(CSRF_FIELD)):
            return self.login_form(
                request, 403, {"csrf_token": ["Reload the page and log in again."]}
            )
        try:
            session = await self.admin.login(username, password, client_address(request))
        except AuthenticationFailed:
            return self.login_form(request, 400, {"login": [LOGIN_FAILED]}, username)
        except Throttled as throttled:
            wait = math.ceil(throttled.retry_after)
            message = f"Too many failed logins: try again in {wait} seconds."
            headers = {"Retry-After": str(wait)}
            return self.login_form(request, 429, {"login": [message]}, username, headers)
        except NotFound:  # right password, no admin flag: as an unknown path
            raise HTTPException(404) from None
        response = RedirectResponse(_inside(request, following), 303, SECURITY_HEADERS)
        ttl = int(self.services.deps.policy.token_ttl.total_seconds())
        set_session(response, request, session.token, ttl, self.config.secure_cookies)
        return response

    def login_form(
        self,
        request: Request,
        status: int,
        errors: Mapping[str, list[str]] | None = None,
        username: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        following = _quietly(request, "next") if request.method == "GET" else ""
        token = new_login_csrf()
        response = self.render(
            request,
            "login.html",
            None,
            status,
            headers,
            title="Log in",
            errors=errors or {},
            username=username,
            next=following,
            login_csrf=token,
        )
        set_login_csrf(response, request, token, self.config.secure_cookies)
        return response

    async def logout(self, request: Request, who: Viewer, fields: Fields) -> Response:
        await self.services.accounts.logout(who.token)
        response = self.redirect(request, "/login/", done="logged_out")
        clear_session(response, request)
        return response

    # dashboard -------------------------------------------------------------------------

    async def dashboard(self, request: Request, who: Viewer) -> Response:
        counts = await self.admin.counts(who.user)
        return self.render(request, "dashboard.html", who, title="Dashboard", counts=counts)

    # users -----------------------------------------------------------------------------

    async def users(self, request: Request, who: Viewer) -> Response:
        q = forms.query(request)
        wanted = UserFilter(
            search=q.text("search"),
            user_type=q.text("user_type") or None,
            is_active=q.choice("active"),
            is_admin=q.choice("admin"),
            sort=q.text("sort") or "id",
            page=q.page(),
            per_page=PER_PAGE,
        )
        found = await self.admin.find_users(who.user, wanted)
        params = {
            "search": wanted.search,
            "user_type": q.text("user_type"),
            "active": q.text("active"),
            "admin": q.text("admin"),
            "sort": wanted.sort,
        }
        return self.render(
            request,
            "users.html",
            who,
            title="Users",
            found=found,
            params=params,
            user_types=[t.value for t in UserType],
            sorts=USER_SORTS,
            pages=_pages(request, found.page, found.pages, params),
        )

    async def user(self, request: Request, who: Viewer) -> Response:
        user = await self.admin.get_user(who.user, _id(request, "user_id"))
        return self.render(
            request, "user.html", who, title=user.username, user=user, user_types=list(UserType)
        )

    async def edit_user(self, request: Request, who: Viewer, fields: Fields) -> Response:
        user_id = _id(request, "user_id")
        edit = AccountEdit(
            user_type=fields.text("user_type"),
            is_active=fields.flag("is_active"),
            is_admin=fields.flag("is_admin"),
        )
        await self.admin.edit_user(who.user, user_id, edit)
        return self.redirect(request, f"/users/{user_id}/", done="user_saved")

    async def set_password(self, request: Request, who: Viewer, fields: Fields) -> Response:
        user_id = _id(request, "user_id")
        await self.admin.edit_user(who.user, user_id, AccountEdit(password=fields.text("password")))
        return self.redirect(request, f"/users/{user_id}/", done="password_set")

    async def confirm_user_deletion(self, request: Request, who: Viewer) -> Response:
        user = await self.admin.get_user(who.user, _id(request, "user_id"))
        return self.render(
            request, "confirm.html", who, title="Delete user", what="user", user=user
        )

    async def delete_user(self, request: Request, who: Viewer, fields: Fields) -> Response:
        await self.admin.delete_user(who.user, _id(request, "user_id"))
        return self.redirect(request, "/users/", done="user_deleted")

    # chats -----------------------------------------------------------------------------

    async def chats(self, request: Request, who: Viewer) -> Response:
        q = forms.query(request)
        search = q.text("search")
        found = await self.admin.find_chats(who.user, search, q.page(), PER_PAGE)
        params = {"search": search}
        return self.render(
            request,
            "chats.html",
            who,
            title="Chats",
            found=found,
            params=params,
            pages=_pages(request, found.page, found.pages, params),
        )

    async def chat(self, request: Request, who: Viewer) -> Response:
        chat = await self.admin.get_chat(who.user, _id(request, "chat_id"))
        latest = await self.admin.find_messages(
            who.user, MessageFilter(chat_id=chat.id, per_page=LATEST)
        )
        return self.render(
            request, "chat.html", who, title=chat.name, chat=chat, messages=latest.items
        )

    async def rename_chat(self, request: Request, who: Viewer, fields: Fields) -> Response:
        chat_id = _id(request, "chat_id")
        await self.admin.rename_chat(who.user, chat_id, fields.text("name"))
        return self.redirect(request, f"/chats/{chat_id}/", done="chat_renamed")

    async def add_participants(self, request: Request, who: Viewer, fields: Fields) -> Response:
        chat_id = _id(request, "chat_id")
        members = ChatMembers(participant_usernames=fields.names("usernames"))
        await self.admin.add_participants(who.user, chat_id, members)
        return self.redirect(request, f"/chats/{chat_id}/", done="added")

    async def remove_participant(self, request: Request, who: Viewer, fields: Fields) -> Response:
        chat_id = _id(request, "chat_id")
        chat = await self.admin.remove_participant(who.user, chat_id, _id(request, "user_id"))
        if chat is None:  # the last one: the chat went with them
            return self.redirect(request, "/chats/", done="chat_deleted")
        return self.redirect(request, f"/chats/{chat_id}/", done="removed")

    async def confirm_chat_deletion(self, request: Request, who: Viewer) -> Response:
        chat = await self.admin.get_chat(who.user, _id(request, "chat_id"))
        return self.render(
            request, "confirm.html", who, title="Delete chat", what="chat", chat=chat
        )

    async def delete_chat(self, request: Request, who: Viewer, fields: Fields) -> Response:
        await self.admin.delete_chat(who.user, _id(request, "chat_id"))
        return self.redirect(request, "/chats/", done="chat_deleted")

    # messages --------------------------------------------------------------------------

    async def messages(self, request: Request, who: Viewer) -> Response:
        q = forms.query(request)
        wanted = MessageFilter(
            search=q.text("search"),
            chat_id=q.id("chat"),
            sender_id=q.id("sender"),
            before=q.id("before"),
            per_page=PER_PAGE,
        )
        scan = await self.admin.find_messages(who.user, wanted)
        params = {"search": wanted.search, "chat": q.text("chat"), "sender": q.text("sender")}
        older = None
        if scan.older is not None:
            older = _with(request, {**params, "before": str(scan.older)})
        return self.render(
            request,
            "messages.html",
            who,
            title="Messages",
            scan=scan,
            params=params,
            older=older,
            newest=_with(request, params) if wanted.before else None,
        )

    async def confirm_message_deletion(self, request: Request, who: Viewer) -> Response:
        message = await self.admin.get_message(who.user, _id(request, "message_id"))
        return self.render(
            request, "confirm.html", who, title="Delete message", what="message", message=message
        )

    async def delete_message(self, request: Request, who: Viewer, fields: Fields) -> Response:
        message = await self.admin.get_message(who.user, _id(request, "message_id"))
        await self.admin.delete_message(who.user, message.id)
        if fields.text("back") == "chat":
            return self.redirect(request, f"/chats/{message.chat_id}/", done="message_deleted")
        return self.redirect(request, "/messages/", done="message_deleted")

    # the rest --------------------------------------------------------------------------

    async def style_sheet(self, request: Request) -> Response:
        headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=3600"}
        return Response(self.style, 200, headers, media_type="text/css")

    async def to_home(self, request: Request, who: Viewer) -> Response:
        return self.redirect(request, "/")

    async def unknown(self, request: Request, who: Viewer) -> Response:
        return self.not_found(request, who)


def _quietly(request: Request, name: str) -> str:
    """A query value that only adds to a page (the notice after a change, where to go
    after logging in): a bad query string, which the page itself reports when it reads
    its own values, leaves it out here rather than failing the page twice."""
    try:
        return forms.query(request).text(name)
    except BadInput:
        return ""


def _id(request: Request, name: str) -> int:
    value: int = request.path_params[name]  # the route matched ids only (ids.py)
    return value


def _with(request: Request, params: Mapping[str, str]) -> str:
    kept = {k: v for k, v in params.items() if v}
    return request.url.path + (f"?{urlencode(kept)}" if kept else "")


def _pages(request: Request, page: int, pages: int, params: Mapping[str, str]) -> dict[str, Any]:
    def at(number: int) -> str:
        return _with(request, {**params, "page": str(number) if number > 1 else ""})

    return {
        "page": page,
        "pages": pages,
        "previous": at(page - 1) if page > 1 else None,
        "next": at(page + 1) if page < pages else None,
    }


def _inside(request: Request, path: str) -> str:
    """Where to go after logging in: ``path`` if it is a console page of this server,
    else the dashboard (no open redirect)."""
    home = console_root(request) + "/"
    parts = urlsplit(path)
    if (
        path.startswith(home)
        and not parts.scheme
        and not parts.netloc
        and "\\" not in path
        and "//" not in path
        and path.isascii()
        and path.isprintable()
    ):
        return path
    return home


def admin_routes(services: Services, config: Config) -> list[BaseRoute]:
    """The console's routes, the catch-all last: every path under ``/admin/`` is the
    console's, known or not, so none answers differently to a visitor."""
    c = Console(services, config)
    every = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    def route(path: str, endpoint: Callable[[Request], Awaitable[Response]]) -> Route:
        return Route(id_pattern(CONSOLE_PATH + path), endpoint, methods=every)

    return [
        route("/", c.page(get=c.dashboard)),
        route("/login/", c.login),
        route("/logout/", c.page(post=c.logout)),
        Route(CONSOLE_PATH + "/static/admin.css", c.style_sheet, methods=["GET", "HEAD"]),
        route("/users/", c.page(get=c.users)),
        route("/users/{user_id}/", c.page(get=c.user, post=c.edit_user)),
        route("/users/{user_id}/password/", c.page(post=c.set_password)),
        route("/users/{user_id}/delete/", c.page(get=c.confirm_user_deletion, post=c.delete_user)),
        route("/chats/", c.page(get=c.chats)),
        route("/chats/{chat_id}/", c.page(get=c.chat)),
        route("/chats/{chat_id}/rename/", c.page(post=c.rename_chat)),
        route("/chats/{chat_id}/participants/", c.page(post=c.add_participants)),
        route(
            "/chats/{chat_id}/participants/{user_id}/remove/",
            c.page(post=c.remove_participant),
        ),
        route("/chats/{chat_id}/delete/", c.page(get=c.confirm_chat_deletion, post=c.delete_chat)),
        route("/messages/", c.page(get=c.messages)),
        route(
            "/messages/{message_id}/delete/",
            c.page(get=c.confirm_message_deletion, post=c.delete_message),
        ),
        Route(CONSOLE_PATH, c.page(get=c.to_home), methods=every),
        Route(
            CONSOLE_PATH + "/{rest:path}",
            c.page(get=c.unknown, post=_unknown_post(c)),
            methods=every,
        ),
    ]


def _unknown_post(c: Console) -> Callable[[Request, Viewer, Fields], Awaitable[Response]]:
    async def post(request: Request, who: Viewer, fields: Fields) -> Response:
        return c.not_found(request, who)

    return post
