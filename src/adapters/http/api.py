"""The REST endpoints of API.md: small handlers over the use cases, and the table of
operations that routes them and documents them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.responses import Response

from chatcore.accounts import AccountChange, Registration
from chatcore.admin import AccountEdit
from chatcore.chats import EVENTS_DEFAULT, ChatDraft
from chatcore.membership import ChatEdit, ChatMembers
from chatcore.model import Page, Session
from chatcore.paging import Window, chat_cursor

from .auth import clear_session_cookies, client_address, set_session_cookies
from .routes import Call, Operation, respond
from .wire import (
    AdminIn,
    AdminUserOut,
    ChatOut,
    ChatPutIn,
    ChatsQuery,
    Detail,
    EditIn,
    EventsQuery,
    ListQuery,
    LoginIn,
    MeOut,
    MessageOut,
    MessagesQuery,
    SendIn,
    SessionOut,
    UserOut,
    UsersQuery,
    WindowQuery,
    project,
)
from .ws.frames import EventsOut, event_wire


async def _session_reply(call: Call, session: Session, status: int) -> Response:
    """Me plus the token, and a separate session credential in cookies for browsers."""
    response = respond(project(SessionOut, session.user, token=session.token), status)
    cookie_token = await call.services.accounts.issue_token(session.user)
    ttl = int(call.services.deps.policy.token_ttl.total_seconds())
    set_session_cookies(response, cookie_token, ttl, call.config.secure_cookies)
    return response


def _window(query: WindowQuery) -> Window:
    return Window(limit=query.limit, before=query.before, after=query.after)


PAGING_PARAMS = ("after", "before", "cursor")


def _paged(call: Call, page: Page[Any], wire: type, limit: int | None) -> Response:
    """A page of an id-ordered list, with links to the pages on either side when there
    are any: ``before=<first id>`` back, ``after=<last id>`` forward."""
    before = getattr(call.query, "before", None)
    after = getattr(call.query, "after", None)
    links: dict[str, dict[str, object]] = {}
    if page.has_older:
        links["prev"] = {}  # lists without ``before`` go back by starting again
        if hasattr(call.query, "before"):  # message lists page back by id
            edge = page.items[0].id if page.items else (after + 1 if after else before)
            links["prev"] = {"before": edge}
    if page.has_newer:
        edge = page.items[-1].id if page.items else (before - 1 if before else after)
        links["next"] = {"after": edge}
    return _listed(call, page.items, wire, limit, links)


def _listed(
    call: Call,
    items: Sequence[Any],
    wire: type,
    limit: int | None,
    links: Mapping[str, Mapping[str, object]],
) -> Response:
    """A JSON array, with a Link header naming, for each relation of ``links``, this
    request's URL with its paging parameters replaced by that relation's (and the same
    ``limit``, when the client gave one)."""
    base = call.request.url.remove_query_params(PAGING_PARAMS)
    size = {"limit": limit} if limit is not None else {}
    header = ", ".join(
        f'<{base.include_query_params(**params, **size)}>; rel="{rel}"'
        for rel, params in links.items()
    )
    return respond(
        [project(wire, item) for item in items], headers={"Link": header} if header else None
    )


# Accounts


async def register(call: Call) -> Response:
    """Create an account; the reply carries the new user's API token."""
    session = await call.services.accounts.register(call.body, address=_address(call))
    return await _session_reply(call, session, 201)


async def login(call: Call) -> Response:
    """Exchange a username and password for a new API token (and a browser session)."""
    session = await call.services.accounts.login(
        call.body.username, call.body.password, _address(call)
    )
    return await _session_reply(call, session, 200)


def _address(call: Call) -> str | None:
    return client_address(call.request)


async def logout(call: Call) -> Response:
    """Revoke the token or session that made this request, and only that one."""
    assert call.credential is not None
    await call.services.accounts.logout(call.credential.token)
    response = respond(Detail("Successfully logged out."))
    if call.credential.via_cookie:
        clear_session_cookies(response)
    return response


async def me(call: Call) -> Response:
    """The authenticated user."""
    return respond(project(MeOut, call.user))


async def update_me(call: Call) -> Response:
    """Change the authenticated user's email, or password (with ``current_password``):
    a new password logs out every other token and session of the user."""
    assert call.credential is not None
    user = await call.services.accounts.update_me(
        call.user, call.credential.token, call.body, _address(call)
    )
    return respond(project(MeOut, user))


async def list_users(call: Call) -> Response:
    """Users, to find whom to add to a chat: ``search`` matches usernames ignoring case."""
    q: UsersQuery = call.query
    page = await call.services.accounts.list_users(q.search, q.after, q.limit)
    return _paged(call, page, UserOut, q.limit)


# Chats and messages


async def list_chats(call: Call) -> Response:
    """The caller's chats, most recent activity first, each with its last message: the
    top ``limit``, and a ``rel="next"`` link with a ``cursor`` while more follow. A chat
    that gets a message while a client pages moves to the top, above the cursor: later
    pages skip it rather than show it twice (read the top again to see it)."""
    q: ChatsQuery = call.query
    page = await call.services.chats.list_chats(call.user, q.limit, q.cursor)
    links = {"next": {"cursor": chat_cursor(page.items[-1])}} if page.has_older else {}
    return _listed(call, page.items, ChatOut, q.limit, links)


async def create_chat(call: Call) -> Response:
    """Start a chat; the creator is always a participant."""
    chat = await call.services.chats.create_chat(call.user, call.body)
    return respond(project(ChatOut, chat), 201)


async def get_chat(call: Call) -> Response:
    """One chat the caller is in."""
    chat = await call.services.chats.get_chat(call.user, call.path["chat_id"])
    return respond(project(ChatOut, chat))


async def send_message(call: Call) -> Response:
    """Post to a chat; delivered at once to every WebSocket open on it. Repeating a
    ``client_id`` returns the original message with 200 and stores nothing."""
    body: SendIn = call.body
    message, created = await call.services.chats.send_message(
        call.user, call.path["chat_id"], body.content, body.client_id
    )
    return respond(project(MessageOut, message), 201 if created else 200)


async def chat_messages(call: Call) -> Response:
    """A page of one chat's messages, oldest first (the newest ``limit`` by default)."""
    q: WindowQuery = call.query
    page = await call.services.chats.chat_messages(call.user, call.path["chat_id"], _window(q))
    return _paged(call, page, MessageOut, q.limit)


async def list_messages(call: Call) -> Response:
    """A page of the messages of every chat the caller is in (or of ``chat``)."""
    q: MessagesQuery = call.query
    page = await call.services.chats.my_messages(call.user, _window(q), q.chat)
    return _paged(call, page, MessageOut, q.limit)


async def get_message(call: Call) -> Response:
    """One message of a chat the caller is in."""
    message = await call.services.chats.get_message(call.user, call.path["message_id"])
    return respond(project(MessageOut, message))


# Chats that change


def _chat_reply(chat: Any) -> Response:
    return respond(project(ChatOut, chat))


def _done() -> Response:
    return Response(status_code=204)


async def update_chat(call: Call) -> Response:
    """Rename the chat and/or replace its participants (admins only): given lists
    replace the membership (you stay in), lists left out leave it as it is."""
    body: ChatEdit = call.body
    return _chat_reply(await call.services.membership.update_chat(call.user, _chat(call), body))


async def replace_chat(call: Call) -> Response:
    """As PATCH, with ``name`` required."""
    body: ChatPutIn = call.body
    chat = await call.services.membership.update_chat(call.user, _chat(call), body.edit())
    return _chat_reply(chat)


async def delete_chat(call: Call) -> Response:
    """Delete the chat with its history, for everyone (admins only)."""
    await call.services.membership.delete_chat(call.user, _chat(call))
    return _done()


async def add_participants(call: Call) -> Response:
    """Add people to the chat (admins only); someone already in is no error. New
    participants see the whole history."""
    body: ChatMembers = call.body
    chat = await call.services.membership.add_participants(call.user, _chat(call), body)
    return _chat_reply(chat)


async def remove_participant(call: Call) -> Response:
    """An admin removes someone, or anyone removes themselves (leaving). When the
    last admin goes, the longest-standing participant becomes admin; when the last
    participant goes, the chat is deleted."""
    user_id = call.path["user_id"]
    await call.services.membership.remove_participant(call.user, _chat(call), user_id)
    return _done()


async def leave_chat(call: Call) -> Response:
    """Leave the chat: as removing yourself."""
    await call.services.membership.leave(call.user, _chat(call))
    return _done()


async def promote(call: Call) -> Response:
    """Make a participant an admin of the chat too (admins only)."""
    body: AdminIn = call.body
    chat = await call.services.membership.promote(call.user, _chat(call), body.user_id)
    return _chat_reply(chat)


async def demote(call: Call) -> Response:
    """Make an admin (yourself too) a member again (admins only); never the last one."""
    user_id = call.path["user_id"]
    return _chat_reply(await call.services.membership.demote(call.user, _chat(call), user_id))


def _chat(call: Call) -> int:
    return call.path["chat_id"]


async def edit_message(call: Call) -> Response:
    """The sender replaces a message's content (the rules of a send); ``edited_at``
    is set."""
    body: EditIn = call.body
    message = await call.services.chats.edit_message(
        call.user, call.path["message_id"], body.content
    )
    return respond(project(MessageOut, message))


async def delete_message(call: Call) -> Response:
    """The sender, or an admin of the chat, deletes a message: from then on it is in no
    response, list or replay, to anyone."""
    await call.services.chats.delete_message(call.user, call.path["message_id"])
    return _done()


async def chat_events(call: Call) -> Response:
    """The chat's events after ``since``, in seq order, each as the frame a socket is
    sent, and the chat's latest seq: how a client without a socket catches up. Events
    show things as they are now: an edited message its latest content, and every event
    of a message deleted since reads as `message_deleted` at its own seq."""
    q: EventsQuery = call.query
    since = 0 if q.since is None else q.since
    limit = EVENTS_DEFAULT if q.limit is None else q.limit
    events, seq = await call.services.chats.chat_events(call.user, _chat(call), since, limit)
    return respond(EventsOut([event_wire(e) for e in events], seq))


# Administration


async def admin_list_users(call: Call) -> Response:
    """Every account, inactive ones too."""
    q: UsersQuery = call.query
    page = await call.services.admin.list_users(call.user, q.search, q.after, q.limit)
    return _paged(call, page, AdminUserOut, q.limit)


async def admin_edit_user(call: Call) -> Response:
    """Change an account's type, admin flag, active flag or password (deactivating it or
    setting its password revokes its tokens and closes its sockets)."""
    user = await call.services.admin.edit_user(call.user, call.path["user_id"], call.body)
    return respond(project(AdminUserOut, user))


async def admin_delete_user(call: Call) -> Response:
    """Delete an account with its tokens, memberships and messages."""
    await call.services.admin.delete_user(call.user, call.path["user_id"])
    return Response(status_code=204)


async def admin_list_chats(call: Call) -> Response:
    """Every chat, in id order."""
    q: ListQuery = call.query
    page = await call.services.admin.list_chats(call.user, q.after, q.limit)
    return _paged(call, page, ChatOut, q.limit)


async def admin_delete_chat(call: Call) -> Response:
    """Delete a chat with its messages."""
    await call.services.admin.delete_chat(call.user, call.path["chat_id"])
    return Response(status_code=204)


async def admin_list_messages(call: Call) -> Response:
    """Messages of every chat (or of ``chat``), paged as the other message lists."""
    q: MessagesQuery = call.query
    page = await call.services.admin.list_messages(call.user, _window(q), q.chat)
    return _paged(call, page, MessageOut, q.limit)


async def admin_delete_message(call: Call) -> Response:
    """Delete one message."""
    await call.services.admin.delete_message(call.user, call.path["message_id"])
    return Response(status_code=204)


def _ok(wire: object, status: int = 200, *errors: Mapping[int, object]) -> dict[int, object]:
    responses: dict[int, object] = {status: wire}
    for extra in errors:
        responses.update(extra)
    return responses


AUTH = {401: Detail}
INVALID = {400: dict}
HIDDEN = {404: Detail}
FORBIDDEN = {403: Detail}  # a participant without the right (an outsider gets 404)
THROTTLED = {429: Detail}
ADMIN = {404: Detail}  # to anyone but an admin, with or without credentials

# One row an endpoint: method, path, handler, summary, tag, responses, then its shapes.
# fmt: off
OPERATIONS: list[Operation] = [
    Operation("POST", "/api/register/", register, "Register", "accounts",
              _ok(SessionOut, 201, INVALID, THROTTLED), body=Registration, auth=False),
    Operation("POST", "/api/login/", login, "Log in", "accounts",
              _ok(SessionOut, 200, INVALID, AUTH, THROTTLED), body=LoginIn, auth=False),
    Operation("POST", "/api/logout/", logout, "Log out", "accounts", _ok(Detail, 200, AUTH)),
    Operation("GET", "/api/me/", me, "Current user", "accounts", _ok(MeOut, 200, AUTH)),
    Operation("PATCH", "/api/me/", update_me, "Change my account", "accounts",
              _ok(MeOut, 200, INVALID, AUTH, THROTTLED), body=AccountChange),
    Operation("GET", "/api/users/", list_users, "List users", "accounts",
              _ok(list[UserOut], 200, INVALID, AUTH), query=UsersQuery),
    Operation("GET", "/api/chats/", list_chats, "List my chats", "chats",
              _ok(list[ChatOut], 200, INVALID, AUTH), query=ChatsQuery),
    Operation("POST", "/api/chats/", create_chat, "Create a chat", "chats",
              _ok(ChatOut, 201, INVALID, AUTH, THROTTLED), body=ChatDraft),
    Operation("GET", "/api/chats/{chat_id}/", get_chat, "Get a chat", "chats",
              _ok(ChatOut, 200, AUTH, HIDDEN)),
    Operation("POST", "/api/chats/{chat_id}/send_message/", send_message, "Send a message",
              "chats", _ok(MessageOut, 201, {200: MessageOut}, INVALID, AUTH, HIDDEN),
              body=SendIn),
    Operation("GET", "/api/chats/{chat_id}/messages/", chat_messages, "List a chat's messages",
              "chats", _ok(list[MessageOut], 200, INVALID, AUTH, HIDDEN), query=WindowQuery),
    Operation("GET", "/api/messages/", list_messages, "List my messages", "messages",
              _ok(list[MessageOut], 200, INVALID, AUTH), query=MessagesQuery),
    Operation("GET", "/api/messages/{message_id}/", get_message, "Get a message", "messages",
              _ok(MessageOut, 200, AUTH, HIDDEN)),
    Operation("PATCH", "/api/chats/{chat_id}/", update_chat, "Change a chat", "chats",
              _ok(ChatOut, 200, INVALID, AUTH, FORBIDDEN, HIDDEN), body=ChatEdit),
    Operation("PUT", "/api/chats/{chat_id}/", replace_chat, "Replace a chat", "chats",
              _ok(ChatOut, 200, INVALID, AUTH, FORBIDDEN, HIDDEN), body=ChatPutIn),
    Operation("DELETE", "/api/chats/{chat_id}/", delete_chat, "Delete a chat", "chats",
              _ok(None, 204, AUTH, FORBIDDEN, HIDDEN)),
    Operation("POST", "/api/chats/{chat_id}/participants/", add_participants,
              "Add participants", "chats",
              _ok(ChatOut, 200, INVALID, AUTH, FORBIDDEN, HIDDEN), body=ChatMembers),
    Operation("DELETE", "/api/chats/{chat_id}/participants/{user_id}/", remove_participant,
              "Remove a participant", "chats", _ok(None, 204, AUTH, FORBIDDEN, HIDDEN)),
    Operation("POST", "/api/chats/{chat_id}/leave/", leave_chat, "Leave a chat", "chats",
              _ok(None, 204, AUTH, HIDDEN)),
    Operation("POST", "/api/chats/{chat_id}/admins/", promote, "Make an admin", "chats",
              _ok(ChatOut, 200, INVALID, AUTH, FORBIDDEN, HIDDEN), body=AdminIn),
    Operation("DELETE", "/api/chats/{chat_id}/admins/{user_id}/", demote, "Remove an admin",
              "chats", _ok(ChatOut, 200, INVALID, AUTH, FORBIDDEN, HIDDEN)),
    Operation("GET", "/api/chats/{chat_id}/events/", chat_events, "List a chat's events",
              "chats", _ok(EventsOut, 200, INVALID, AUTH, HIDDEN), query=EventsQuery),
    Operation("PATCH", "/api/messages/{message_id}/", edit_message, "Edit a message",
              "messages", _ok(MessageOut, 200, INVALID, AUTH, FORBIDDEN, HIDDEN), body=EditIn),
    Operation("DELETE", "/api/messages/{message_id}/", delete_message, "Delete a message",
              "messages", _ok(None, 204, AUTH, FORBIDDEN, HIDDEN)),
    Operation("GET", "/api/admin/users/", admin_list_users, "List accounts", "admin",
              _ok(list[AdminUserOut], 200, INVALID, ADMIN), query=UsersQuery,
              admin_only=True),
    Operation("PATCH", "/api/admin/users/{user_id}/", admin_edit_user, "Edit an account",
              "admin", _ok(AdminUserOut, 200, INVALID, ADMIN), body=AccountEdit,
              admin_only=True),
    Operation("DELETE", "/api/admin/users/{user_id}/", admin_delete_user, "Delete an account",
              "admin", _ok(None, 204, INVALID, ADMIN), admin_only=True),
    Operation("GET", "/api/admin/chats/", admin_list_chats, "List all chats", "admin",
              _ok(list[ChatOut], 200, INVALID, ADMIN), query=ListQuery, admin_only=True),
    Operation("DELETE", "/api/admin/chats/{chat_id}/", admin_delete_chat, "Delete a chat",
              "admin", _ok(None, 204, ADMIN), admin_only=True),
    Operation("GET", "/api/admin/messages/", admin_list_messages, "List all messages", "admin",
              _ok(list[MessageOut], 200, INVALID, ADMIN), query=MessagesQuery,
              admin_only=True),
    Operation("DELETE", "/api/admin/messages/{message_id}/", admin_delete_message,
              "Delete a message", "admin", _ok(None, 204, ADMIN), admin_only=True),
]
# fmt: on
