"""What the OpenAPI document says that no type hint can: descriptions, limits, examples.

Documentation only. Every shape (which fields, their types, which are required) comes
from the wire classes and the operation table; this module adds words and numbers to
them, keyed by ``(class, field)``. A key ``(object, name)`` applies to a field of that
name in any class (every class derives from ``object``); a more specific class wins.
Limits are read from :mod:`chatcore.rules`, messages from the modules that send them,
so the document cannot drift from what the server enforces.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import attrs

from chatcore import paging, rules
from chatcore.accounts import USERNAME_TAKEN, Registration
from chatcore.admin import AccountEdit
from chatcore.chats import UNKNOWN_NAME, ChatDraft
from chatcore.errors import NON_FIELD, AuthenticationFailed, NotFound
from chatcore.model import UserType

from .auth import CSRF_COOKIE, NOT_PROVIDED, SESSION_COOKIE
from .problems import AUTH_SCHEME, HTTP_DETAILS
from .realtime import (
    CLOSE_GOING_AWAY,
    CLOSE_NOT_FOUND,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    CLOSE_TRY_LATER,
    CLOSE_UNAUTHORIZED,
    FRAME_TYPES,
    RealtimeConfig,
)
from .wire import NOT_AN_INTEGER, ChatOut, MessageOut, SendIn


class _NoExample:
    def __repr__(self) -> str:
        return "NO_EXAMPLE"


NO_EXAMPLE: Final = _NoExample()


@attrs.frozen
class Note:
    """Documentation of one field. ``schema`` holds extra JSON Schema keywords (limits,
    formats), merged into the schema generated from the type hint; ``as_type`` documents
    the field as a narrower type than its hint (a ``str`` the server checks against an
    enum, say)."""

    description: str = ""
    example: object = NO_EXAMPLE
    schema: Mapping[str, Any] = attrs.field(factory=dict)
    as_type: Any = None

    def over(self, base: Note) -> Note:
        """This note on top of a more general one."""
        return Note(
            self.description or base.description,
            base.example if self.example is NO_EXAMPLE else self.example,
            {**base.schema, **self.schema},
            base.as_type if self.as_type is None else self.as_type,
        )


# Every id of the API is a 64-bit positive integer.
ID: Final = {"format": "int64", "minimum": 1, "maximum": rules.MAX_ID}
# rules keeps the username pattern private; this reads it so the two cannot differ.
USERNAME_PATTERN: Final = f"^{rules.USERNAME_PATTERN.pattern}$"

JOINED = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SENT = datetime(2026, 3, 1, 12, 5, 42, 123456, tzinfo=UTC)
PASSWORD = "correct horse 1"  # noqa: S105 - an example in the documentation
TOKEN = "kP3v9Qx2Lm8Zt4Rw7Yb1Nc6Hd0Fs5Ja2Ue9Gi3Ko8T"  # noqa: S105 - likewise

FIELDS: Final[dict[tuple[type, str], Note]] = {
    # ids and references
    (object, "id"): Note("Unique id.", 1, ID),
    (ChatOut, "id"): Note(example=7),
    (MessageOut, "id"): Note(example=128),
    (MessageOut, "chat"): Note("Id of the message's chat.", 7, ID),
    (object, "chat_id"): Note("Id of the chat.", 7, ID),
    (object, "message_id"): Note("Id of the message.", 128, ID),
    (object, "user_id"): Note("Id of the user.", 2, ID),
    # accounts
    (object, "username"): Note(
        f"1 to {rules.USERNAME_MAX} letters, digits and @ . + - _; unique ignoring case.",
        "alice",
        {"minLength": 1, "maxLength": rules.USERNAME_MAX, "pattern": USERNAME_PATTERN},
    ),
    (object, "email"): Note("Empty when none was given.", "alice@example.com"),
    (Registration, "email"): Note(
        "Optional; well formed when given.",
        schema={"format": "email", "maxLength": rules.EMAIL_MAX},
    ),
    (object, "password"): Note(example=PASSWORD, schema={"format": "password"}),
    (Registration, "password"): Note(
        f"{rules.PASSWORD_MIN} to {rules.PASSWORD_MAX} characters, not all digits, not a "
        "common password, not too similar to the username.",
        schema={"minLength": rules.PASSWORD_MIN, "maxLength": rules.PASSWORD_MAX},
    ),
    (Registration, "password_confirm"): Note(
        "The password again.", PASSWORD, {"format": "password"}
    ),
    (object, "user_type"): Note("The kind of account."),
    (Registration, "user_type"): Note(
        "The kind of account; `student` when left out.", "owner", as_type=UserType | None
    ),
    (AccountEdit, "user_type"): Note("New kind of account.", "staff", as_type=UserType | None),
    (AccountEdit, "is_active"): Note(
        "False deactivates the account and revokes all its tokens.", False
    ),
    (AccountEdit, "is_admin"): Note("Grant or withdraw administration rights."),
    (object, "is_active"): Note("Whether the account may log in.", True),
    (object, "is_admin"): Note("Whether the account may use the administration paths.", False),
    (object, "date_joined"): Note("When the account was created (UTC).", JOINED),
    (object, "token"): Note(
        "A new API token: send it as `Authorization: Token <key>` (or `Bearer <key>`). "
        "Shown only here.",
        TOKEN,
    ),
    # chats and messages
    (object, "name"): Note(
        f"1 to {rules.CHAT_NAME_MAX} characters after trimming.",
        "Project team",
        {"minLength": 1, "maxLength": rules.CHAT_NAME_MAX},
    ),
    (object, "participants"): Note(
        "Everyone in the chat, the creator included.",
        [{}, {"id": 2, "username": "bob", "user_type": "student"}],
    ),
    (ChatDraft, "participant_ids"): Note(
        "Ids of the users to add; duplicates are ignored, unknown ids are a 400 naming them.",
        schema={"items": {"minimum": 1}},
    ),
    (ChatDraft, "participant_usernames"): Note(
        "Usernames to add (case ignored), instead of or besides ids; unknown ones are a 400 "
        "naming them.",
        ["bob"],
    ),
    (object, "created_at"): Note("When the chat was created (UTC).", CREATED),
    (object, "last_message"): Note("The newest message, or null for a chat without any."),
    (object, "sender"): Note("Who sent the message."),
    (object, "content"): Note(
        f"1 to {rules.CONTENT_MAX:,} characters after trimming; whitespace alone is refused.",
        "Hello, team!",
        {"minLength": 1, "maxLength": rules.CONTENT_MAX},
    ),
    (object, "timestamp"): Note("When the message was stored (UTC).", SENT),
    (object, "client_id"): Note(
        f"The sender's own idempotency key (up to {rules.CLIENT_ID_MAX} characters): a send "
        "repeating one stores nothing and answers with the original message.",
        "c6f1d2e0-5b7a-4c1e-9d3f-2a8b7c6d5e4f",
        {"minLength": 1, "maxLength": rules.CLIENT_ID_MAX},
    ),
    (SendIn, "client_id"): Note(example="c6f1d2e0-5b7a-4c1e-9d3f-2a8b7c6d5e4f"),
    (object, "detail"): Note("What went wrong, or what was done, in words.", "Not found."),
    # query parameters
    (object, "limit"): Note(
        f"Page size: {rules.PAGE_DEFAULT} by default; values above {rules.PAGE_MAX} are "
        f"treated as {rules.PAGE_MAX}.",
        50,
        {"minimum": 1},
    ),
    (object, "before"): Note(
        "Page back: only items with a smaller id than this one.",
        128,
        {"minimum": 1, "maximum": rules.MAX_ID},
    ),
    (object, "after"): Note(
        "Page forward: only items with a greater id than this one.",
        100,
        {"minimum": 1, "maximum": rules.MAX_ID},
    ),
    (object, "cursor"): Note(
        'Where the chat list goes on: copy it from the `rel="next"` link, do not build '
        "it. Chats that get a message while you page move to the top, so later pages skip "
        "them: read the first page again to see them.",
        "63907185600000000.42",
        {"pattern": f"^{paging.CURSOR_PATTERN.pattern}$", "maxLength": paging.CURSOR_MAX},
    ),
    (object, "chat"): Note("Only the messages of this chat.", 7, ID),
    (object, "search"): Note(
        "Part of a username, case ignored.", "ali", {"maxLength": rules.SEARCH_MAX}
    ),
}


def field_note(cls: type, name: str) -> Note:
    """The note of field ``name`` of ``cls``: generic entries first, specific ones over."""
    note = Note()
    for klass in reversed(cls.__mro__):
        found = FIELDS.get((klass, name))
        if found is not None:
            note = found.over(note)
    return note


TAGS: Final = {
    "accounts": "Register, log in and out, and find other users.",
    "chats": "Group chats of the caller and sending messages to them.",
    "messages": "Message history of the caller's chats, paged by id.",
    "admin": "Administration, for accounts with the admin flag only: to anyone else "
    "these paths answer 404, as if they did not exist.",
    "documentation": "This document and the pages that show it.",
}

STATUS_TEXT: Final = {
    200: "OK.",
    201: "Created.",
    204: "Done; no content.",
    400: "Invalid input: a list of messages for each field at fault (`non_field_errors` for "
    "the rest).",
    401: "No credentials, or invalid, expired or revoked ones.",
    403: "A request authenticated by the session cookie that changes state lacks the "
    "`X-CSRFToken` header equal to the `csrftoken` cookie.",
    404: "No such object, or one the caller may not see: the two are never told apart.",
    413: "The request body is too large.",
    415: "The request body is not JSON.",
    429: "Too many attempts: wait the seconds `Retry-After` gives.",
}

# (operation name, status) -> what that answer means for that operation in particular.
RESPONSE_TEXT: Final = {
    ("send_message", 200): "A repeated `client_id`: the original message; nothing was stored.",
    ("send_message", 201): "Stored, and delivered to every WebSocket open on the chat.",
    ("register", 201): "The new account and its first API token; browsers also get the "
    f"`{SESSION_COOKIE}` and `{CSRF_COOKIE}` cookies.",
    ("login", 200): "The account and a new API token; browsers also get the "
    f"`{SESSION_COOKIE}` and `{CSRF_COOKIE}` cookies.",
    ("login", 401): "Wrong username or password (the two are not told apart).",
    ("login", 429): "Too many failed logins: of this account from this address (a few "
    "are free, then the pause doubles), of this account from addresses that have failed "
    "on it, or from this address. Wait the seconds `Retry-After` gives.",
    ("register", 429): "Too many sign-ups from this address in the last hour.",
    ("create_chat", 429): "You created too many chats in the last hour.",
    ("logout", 200): "That token or session no longer works; the others do.",
}

DETAILS: Final = {
    401: NOT_PROVIDED,
    403: "CSRF Failed: CSRF token missing or incorrect.",
    404: NotFound.default_message,
    413: HTTP_DETAILS[413],
    415: 'Unsupported media type "text/plain" in request.',
    429: "Request was throttled. Expected available in 42 seconds.",
}

# (operation name, status) -> the `detail` of that operation's answer.
OPERATION_DETAILS: Final = {
    ("login", 401): AuthenticationFailed.default_message,
    ("logout", 200): "Successfully logged out.",
}

# operation name -> a realistic 400 body; other operations get one derived from their
# body or query class.
INVALID_EXAMPLES: Final[dict[str, dict[str, list[str]]]] = {
    "register": {"username": [USERNAME_TAKEN], "password": ["This password is too common."]},
    "create_chat": {"participant_usernames": [UNKNOWN_NAME.format("carol")]},
    "send_message": {"content": [rules.BLANK]},
    "admin_edit_user": {"user_type": ['"admin" is not a valid choice.']},
    "admin_delete_user": {NON_FIELD: ["You cannot delete yourself."]},
    "list_users": {"search": [rules.too_long(rules.SEARCH_MAX)]},
}
QUERY_INVALID: Final = NOT_AN_INTEGER

HEADERS: Final = {
    "WWW-Authenticate": {
        "description": "How to authenticate: with an `Authorization` header.",
        "required": True,
        "schema": {"type": "string"},
        "example": AUTH_SCHEME,
    },
    "Retry-After": {
        "description": "Seconds until a login may be tried again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
        "example": 42,
    },
    "Link": {
        "description": 'Absolute URLs of the neighbouring pages, `rel="prev"` and `rel="next"`, '
        "each only when more items lie that way (same `limit`).",
        "required": False,
        "schema": {"type": "string"},
        "example": '<http://localhost:8000/api/chats/7/messages/?limit=50&before=79>; rel="prev"',
    },
}

SECURITY_SCHEMES: Final = {
    "Token": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "DRF style: the value is `Token <key>`, with the token that register "
        "or login returned. Every login issues a new token; logout revokes only the one "
        "it was called with.",
    },
    "Bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The same token as `Authorization: Bearer <key>`.",
    },
    "cookieAuth": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": f"The HttpOnly `{SESSION_COOKIE}` cookie login and register set, for "
        f"browsers. A request authenticated by it that changes state (POST, PATCH, DELETE) "
        f"must also send the `X-CSRFToken` header equal to the `{CSRF_COOKIE}` cookie, or "
        "it is refused with 403.",
    },
}

# The WebSocket endpoint, which OpenAPI cannot describe: documented as ``x-websocket``.
_REALTIME = RealtimeConfig()
WS_FRAME_TYPES: Final = FRAME_TYPES
WS_CREDENTIALS: Final = [
    "`?token=<key>` in the query string (browsers cannot set headers on a WebSocket)",
    "`Authorization: Token <key>` or `Authorization: Bearer <key>`",
    f"the `{SESSION_COOKIE}` cookie, only when the `Origin` header is the server's own or a "
    "configured allowed origin (no cross-site WebSocket hijacking)",
]
WS_ERROR_CODES: Final = {
    "invalid_json": "The frame is not JSON.",
    "invalid_frame": "The frame is not a JSON object, or `client_id` is not a string "
    "(or is refused).",
    "invalid_content": "`content` is missing, not a string, blank or too long.",
    "unknown_type": f"`type` is neither of {', '.join(WS_FRAME_TYPES)}.",
    "rate_limited": "Sending faster than the socket's rate limit allows (a deployment "
    "setting: a few tens a second, with bursts); `retry_after_ms` says when to try again.",
}
WS_CLOSE_CODES: Final = {
    CLOSE_UNAUTHORIZED: "No credentials, or bad ones (or a cookie from a foreign `Origin`).",
    CLOSE_NOT_FOUND: "No such chat, or the caller is not in it (also on a send to a chat "
    "deleted, or left, since connecting).",
    CLOSE_TOO_BIG: f"A frame over {_REALTIME.max_frame_bytes // 1024} KiB.",
    CLOSE_TRY_LATER: "Slow consumer: the socket's outbound queue is full. Reconnect with "
    "`?after=<last id seen>` to miss nothing.",
    CLOSE_GOING_AWAY: "The server is shutting down.",
    CLOSE_POLICY: "The user was deactivated, or the token or session was revoked or expired.",
}
WS_RESUME: Final = (
    "Connecting with `?after=<message id>` first sends every stored message of the chat "
    "after that id, then the live ones, with no gap and no duplicate even while new "
    "messages arrive during the replay."
)
WS_ERROR_EXAMPLE: Final = {
    "type": "error",
    "message": "Too many messages; slow down.",
    "code": "rate_limited",
    "retry_after_ms": 350,
}


def ws_close_codes() -> dict[str, str]:
    return {str(code): text for code, text in WS_CLOSE_CODES.items()}


INTRO: Final = """\
A multi-person chat backend: accounts, group chats, paged message history, and real-time \
delivery over a WebSocket.

- JSON in and out, UTF-8. Every path also works without its trailing slash.
- Times are ISO 8601 in UTC. Ids are positive integers, and message ids grow in the \
order messages are stored: id order is the one order of a chat.
- Errors use Django REST framework's shapes: `{"field": ["message", ...]}` for 400, \
`{"detail": "message"}` for the rest. A chat you are not in is a 404, never a 403.
- Authenticate with the token that register or login return, as `Authorization: Token \
<key>` (or `Bearer <key>`). In Swagger UI, **Authorize** takes `Token <key>` for *Token*, \
or the bare key for *Bearer*.
- Lists of messages and users are pages: `limit`, `before` and `after` (ids) move \
through them, and a `Link` header names the neighbouring pages. The chat list, most \
recent activity first, pages by `limit` and the `cursor` its `rel="next"` link carries.
"""
