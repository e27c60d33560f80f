"""What the OpenAPI document says that no type hint can: descriptions, limits, examples.

Documentation only. Every shape (which fields, their types, which are required) comes
from the wire classes and the operation table; this module adds words and numbers to
them, keyed by ``(class, field)``. A key ``(object, name)`` applies to a field of that
name in any class (every class derives from ``object``); a more specific class wins.
Limits are read from :mod:`chatcore.rules`, messages from the modules that send them,
so the document cannot drift from what the server enforces.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import attrs

from chatcore import paging, rules
from chatcore.accounts import (
    REQUIRED,
    USERNAME_TAKEN,
    WRONG_PASSWORD,
    AccountChange,
    Registration,
)
from chatcore.admin import AccountEdit
from chatcore.chats import EVENTS_DEFAULT, EVENTS_MAX, UNKNOWN_ID, UNKNOWN_NAME, ChatDraft
from chatcore.errors import NON_FIELD, AuthenticationFailed, NotFound, Unavailable
from chatcore.membership import ChatEdit, ChatMembers
from chatcore.model import UserType
from chatcore.roster import LAST_ADMIN

from .auth import CSRF_COOKIE, NOT_PROVIDED, SESSION_COOKIE
from .problems import AUTH_SCHEME, HTTP_DETAILS
from .wire import (
    NOT_AN_INTEGER,
    ChatOut,
    ChatPutIn,
    EventsQuery,
    LoginIn,
    MessageOut,
    MessagesQuery,
    SendIn,
)
from .ws.codes import RATE_LIMITED, RATE_LIMITED_MESSAGE
from .ws.frames import WsChatUpdatedFrame, WsErrorFrame, WsEventFrame


class _NoExample:
    def __repr__(self) -> str:
        return "NO_EXAMPLE"


NO_EXAMPLE: Final = _NoExample()


@attrs.frozen
class Derived:
    """A keyword value computed when the document is built, not on import (it costs a
    scan of every Unicode character)."""

    compute: Callable[[], Any]


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
    # Not on top of the generic entries of the same name (a frame's ``chat`` is a Chat,
    # not the ``?chat=`` id of a query).
    alone: bool = False

    def over(self, base: Note) -> Note:
        """This note on top of a more general one."""
        if self.alone:
            return self
        return Note(
            self.description or base.description,
            base.example if self.example is NO_EXAMPLE else self.example,
            {**base.schema, **self.schema},
            base.as_type if self.as_type is None else self.as_type,
        )

    def keywords(self) -> dict[str, Any]:
        """``schema`` with its derived values computed."""
        return {k: v.compute() if isinstance(v, Derived) else v for k, v in self.schema.items()}


# Every integer the API takes (ids, page sizes) is a 64-bit positive one: a larger one
# is a 400 in a query or body and a 404 in a path (rules.check_positive, check_limit).
ID: Final = {"format": "int64", "minimum": 1, "maximum": rules.MAX_ID}

# Patterns are written in the syntax Python and ECMA-262 (JSON Schema's) share, and say
# what the server's own test says: each character class is read off the predicate the
# server applies, character by character, over all of Unicode. Python's \w is Unicode,
# ECMA's ASCII; Python's whitespace (str.strip, str.isspace) is not ECMA's \s.
_UNICODE: Final = range(0x110000)


def _runs(chars: Iterable[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for code in chars:
        if runs and runs[-1][1] == code - 1:
            runs[-1] = (runs[-1][0], code)
        else:
            runs.append((code, code))
    return runs


def _escape(code: int) -> str:
    if code > 0xFFFF:  # no escape for it both dialects read: the character itself
        return chr(code)
    return f"\\u{code:04x}"


def _char_class(runs: Iterable[tuple[int, int]], negate: bool = False) -> str:
    ranges = "".join(_escape(a) if a == b else f"{_escape(a)}-{_escape(b)}" for a, b in runs)
    return f"[{'^' if negate else ''}{ranges}]"


def _matching(pattern: re.Pattern[str]) -> list[tuple[int, int]]:
    """The characters a one-character-class pattern matches, as runs: a regex scan."""
    text = "".join(map(chr, _UNICODE))
    return [(m.start(), m.end() - 1) for m in pattern.finditer(text)]


# The whitespace check_text and check_email strip: Python's str.isspace, which is \s of
# Python's re for str patterns (a unit test sweeps every character for it).
_SPACE: Final = _matching(re.compile(r"\s+"))
WHITESPACE: Final = _char_class(_SPACE)
# Some character that trimming keeps: not blank.
NOT_BLANK: Final = _char_class(_SPACE, negate=True)
EMAIL_PATTERN: Final = f"^{WHITESPACE}*(?:{rules.EMAIL_PATTERN.pattern})?{WHITESPACE}*$"


@functools.cache
def username_pattern() -> str:
    return f"^{_char_class(_matching(re.compile(rules.USERNAME_PATTERN.pattern)))}+$"


@functools.cache
def not_all_digits() -> str:
    """Some character that is not a digit to str.isdigit (check_password's test)."""
    return _char_class(_runs(c for c in _UNICODE if chr(c).isdigit()), negate=True)


JOINED = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SENT = datetime(2026, 3, 1, 12, 5, 42, 123456, tzinfo=UTC)
PASSWORD = "correct horse 1"  # noqa: S105 - an example in the documentation
TOKEN = "kP3v9Qx2Lm8Zt4Rw7Yb1Nc6Hd0Fs5Ja2Ue9Gi3Ko8T"  # noqa: S105 - likewise

PASSWORD_SCHEMA: Final = {
    "minLength": rules.PASSWORD_MIN,
    "maxLength": rules.PASSWORD_MAX,
    "pattern": Derived(not_all_digits),
}

# The bodies that name participants, and what their lists do.
PARTICIPANT_LISTS: Final = (
    (ChatDraft, "to add"),
    (ChatEdit, "who are to be in the chat (you stay in); left out: as it is"),
    (ChatPutIn, "who are to be in the chat (you stay in); left out: as it is"),
    (ChatMembers, "to add (someone already in is no error)"),
)

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
        {"minLength": 1, "maxLength": rules.USERNAME_MAX},
    ),
    # Only where the server checks it (the class is long: every Unicode letter and digit).
    (Registration, "username"): Note(schema={"pattern": Derived(username_pattern)}),
    (LoginIn, "username"): Note("Any wrong one is a 401, as a wrong password is."),
    (object, "email"): Note("Empty when none was given.", "alice@example.com"),
    (Registration, "email"): Note(
        "Optional; well formed when given (surrounding whitespace is trimmed, blank is none).",
        schema={"maxLength": rules.EMAIL_MAX, "pattern": EMAIL_PATTERN},
    ),
    (object, "password"): Note(example=PASSWORD, schema={"format": "password"}),
    **{
        (cls, "password"): Note(
            f"{intro}{rules.PASSWORD_MIN} to {rules.PASSWORD_MAX} characters, not all digits, "
            "not a common password, not too similar to the username.",
            schema=PASSWORD_SCHEMA,
        )
        for cls, intro in (
            (Registration, ""),
            (
                AccountChange,
                "New password, with `current_password`: it logs out every other "
                "token and session of yours. ",
            ),
            (AccountEdit, "New password: it logs the account out everywhere. "),
        )
    },
    (AccountChange, "current_password"): Note(
        "Your password now, needed to set a new one (checked behind the login throttle).",
        PASSWORD,
        {"format": "password"},
    ),
    (AccountChange, "email"): Note(
        "New email; blank for none (surrounding whitespace is trimmed).",
        "alice@example.org",
        {"maxLength": rules.EMAIL_MAX, "pattern": EMAIL_PATTERN},
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
        {"minLength": 1, "maxLength": rules.CHAT_NAME_MAX, "pattern": NOT_BLANK},
    ),
    (object, "participants"): Note(
        "Everyone in the chat, the creator included.",
        [{}, {"id": 2, "username": "bob", "user_type": "student"}],
    ),
    **{
        (cls, "participant_ids"): Note(
            f"Ids of the users {verb}; duplicates are ignored, unknown ids are a 400 naming them.",
            schema={"items": ID},
        )
        for cls, verb in PARTICIPANT_LISTS
    },
    **{
        (cls, "participant_usernames"): Note(
            f"Usernames {verb} (case ignored), instead of or besides ids; unknown ones are a "
            "400 naming them.",
            ["bob"],
        )
        for cls, verb in PARTICIPANT_LISTS
    },
    (object, "admins"): Note("Ids of the chat's admins, ascending.", [1]),
    (object, "seq"): Note(
        "The seq of the chat's latest event: 1, 2, 3, ... per chat, no gap, no reuse; 0 "
        "for a chat nothing happened in since its creation.",
        12,
        {"minimum": 0, "format": "int64"},
    ),
    (object, "edited_at"): Note("When the message was last edited (UTC), or null.", SENT),
    (object, "by"): Note("Who made the change."),
    (object, "user"): Note("The participant the change is about."),
    (object, "events"): Note("The events, in seq order."),
    (WsEventFrame, "message"): Note("The message, as it is now."),
    (WsEventFrame, "chat"): Note("The chat, as it is now."),
    (MessagesQuery, "chat"): Note("Only the messages of this chat.", 7, ID),
    (EventsQuery, "since"): Note(
        "Only the events after this seq; 0 (the default) for all.",
        0,
        {"format": "int64", "minimum": 0, "maximum": rules.MAX_ID},
    ),
    (EventsQuery, "limit"): Note(
        f"At most this many events: {EVENTS_DEFAULT} by default, {EVENTS_MAX} at most.",
        100,
        {"maximum": EVENTS_MAX},
    ),
    (object, "created_at"): Note("When the chat was created (UTC).", CREATED),
    (object, "last_message"): Note("The newest message, or null for a chat without any."),
    (object, "sender"): Note("Who sent the message."),
    (object, "content"): Note(
        f"1 to {rules.CONTENT_MAX:,} characters after trimming; whitespace alone is refused.",
        "Hello, team!",
        {"minLength": 1, "maxLength": rules.CONTENT_MAX, "pattern": NOT_BLANK},
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
        ID,
    ),
    (object, "cursor"): Note(
        'Where the chat list goes on: copy it from the `rel="next"` link, do not build '
        "it. Chats that get a message while you page move to the top, so later pages skip "
        "them: read the first page again to see them.",
        "63907185600000000.42",
        {"pattern": f"^{paging.CURSOR_PATTERN.pattern}$", "maxLength": paging.CURSOR_MAX},
    ),
    (object, "before"): Note("Page back: only items with a smaller id than this one.", 128, ID),
    (object, "after"): Note("Page forward: only items with a greater id than this one.", 100, ID),
    (object, "search"): Note(
        "Part of a username, case ignored.", "ali", {"maxLength": rules.SEARCH_MAX}
    ),
    # WebSocket frames
    (WsErrorFrame, "message"): Note(example=RATE_LIMITED_MESSAGE),
    (WsErrorFrame, "code"): Note(example=RATE_LIMITED.code),
    (WsEventFrame, "seq"): Note(
        "The event's place in its chat's stream: 1, 2, 3, ... with no gap and no reuse.",
        42,
        {"minimum": 1, "maximum": rules.MAX_ID},
    ),
    (WsChatUpdatedFrame, "chat"): Note("The chat as it stands after the change.", alone=True),
    (WsErrorFrame, "retry_after_ms"): Note(
        "With `rate_limited`: milliseconds until a send may go.", 350, {"minimum": 1}, int
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
    "operations": "For load balancers, orchestrators and Prometheus: liveness, readiness "
    "and metrics, each turned on or off by a setting (only those on are listed here).",
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
    503: "The database cannot be reached for now (down or restarting): try again after the "
    "seconds `Retry-After` gives. A send retried with the same `client_id` is stored once.",
}

# The operations of a chat's admins.
ADMINS_ONLY: Final = (
    "update_chat",
    "replace_chat",
    "delete_chat",
    "add_participants",
    "remove_participant",
    "promote",
    "demote",
)

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
    **{
        (operation, 403): "You are in the chat but not one of its admins (or a request "
        "authenticated by the session cookie lacks its `X-CSRFToken` header)."
        for operation in ADMINS_ONLY
    },
    ("edit_message", 403): "You are in the chat but did not send the message (or a request "
    "authenticated by the session cookie lacks its `X-CSRFToken` header).",
    ("delete_message", 403): "You are in the chat but neither sent the message nor are an "
    "admin of it (or a request authenticated by the session cookie lacks its `X-CSRFToken` "
    "header).",
    ("remove_participant", 204): "Removed (or left): they lose the chat at once, everywhere.",
    ("delete_chat", 204): "Deleted, with its history, for everyone.",
    ("delete_message", 204): "Deleted: from now on in no response, list or replay.",
}

DETAILS: Final = {
    401: NOT_PROVIDED,
    403: "CSRF Failed: CSRF token missing or incorrect.",
    404: NotFound.default_message,
    413: HTTP_DETAILS[413],
    415: 'Unsupported media type "text/plain" in request.',
    429: "Request was throttled. Expected available in 42 seconds.",
    503: Unavailable.default_message,
}

# (operation name, status) -> the `detail` of that operation's answer.
OPERATION_DETAILS: Final = {
    ("login", 401): AuthenticationFailed.default_message,
    ("logout", 200): "Successfully logged out.",
}

# Messages of the use cases that no module names (the table below is tested against them).
TOO_MANY_MEMBERS: Final = "A chat has at most {} participants."
SELF_LOCKOUT: Final = "You cannot deactivate yourself or drop your own admin rights."
SELF_DELETE: Final = "You cannot delete yourself."
NOT_IN_CHAT: Final = 'User "{}" is not in this chat.'
# The operations whose bodies name participants (by id or username).
NAMING_PARTICIPANTS: Final = ("create_chat", "update_chat", "replace_chat", "add_participants")


@attrs.frozen
class DomainRule:
    """A 400 that a request fitting this document can still get: a rule that depends on
    stored data, on who asks, or on several fields at once, which no JSON Schema states.
    The one list of them, read by the document (each operation's 400 says its own) and
    by the tests that hold the document and the parser to agreeing on everything else."""

    operations: tuple[str, ...]
    field: str
    message: str  # as the server words it; "{}" stands for the value it names
    why: str

    def matches(self, field: str, message: str) -> bool:
        parts = (re.escape(part) for part in self.message.split("{}"))
        return field == self.field and re.fullmatch(".*".join(parts), message, re.S) is not None


DOMAIN_RULES: Final = (
    DomainRule(
        ("register",),
        "username",
        USERNAME_TAKEN,
        "Depends on the accounts that exist; usernames are compared ignoring case.",
    ),
    DomainRule(
        ("register", "update_me", "admin_edit_user"),
        "password",
        rules.PASSWORD_COMMON,
        "A list of 20,000 common passwords, not a pattern.",
    ),
    DomainRule(
        ("register", "update_me", "admin_edit_user"),
        "password",
        rules.PASSWORD_SIMILAR,
        "Compares two values (the password with the account's username).",
    ),
    DomainRule(
        ("update_me",),
        "current_password",
        WRONG_PASSWORD,
        "Depends on the stored password.",
    ),
    *(
        DomainRule(
            ("update_me",),
            field,
            REQUIRED,
            "A new password and the current one come together: one needs the other.",
        )
        for field in ("password", "current_password")
    ),
    DomainRule(
        ("register",),
        "password_confirm",
        rules.PASSWORD_MISMATCH,
        "Compares two fields: JSON Schema cannot say that two values are equal.",
    ),
    *(
        DomainRule(
            NAMING_PARTICIPANTS,
            field,
            template,
            "Depends on the accounts that exist and are active.",
        )
        for field, template in (
            ("participant_ids", UNKNOWN_ID),
            ("participant_usernames", UNKNOWN_NAME),
        )
    ),
    *(
        DomainRule(
            NAMING_PARTICIPANTS,
            field,
            rules.TOO_MANY,
            "Counts distinct users (duplicates are ignored), up to a deployment setting.",
        )
        for field in ("participant_ids", "participant_usernames")
    ),
    DomainRule(
        NAMING_PARTICIPANTS,
        NON_FIELD,
        TOO_MANY_MEMBERS,
        "Counts the users both lists and the creator (or those in the chat) name, up to a "
        "deployment setting.",
    ),
    DomainRule(
        ("promote",),
        "user_id",
        NOT_IN_CHAT,
        "Depends on who is in the chat.",
    ),
    DomainRule(
        ("demote",),
        NON_FIELD,
        LAST_ADMIN,
        "Depends on who else is an admin: a chat keeps at least one.",
    ),
    *(
        DomainRule(
            operations,
            field,
            rules.INVALID_TEXT,
            "JSON text can carry a lone surrogate (\\ud800), which no UTF-8 store takes; "
            "JSON Schema strings cannot exclude it.",
        )
        for field, operations in (
            ("content", ("send_message", "edit_message")),
            ("client_id", ("send_message",)),
            ("name", ("create_chat", "update_chat", "replace_chat")),
            ("participant_usernames", NAMING_PARTICIPANTS),
            ("password", ("register",)),
            ("search", ("list_users", "admin_list_users")),
        )
    ),
    DomainRule(
        ("admin_edit_user",),
        NON_FIELD,
        SELF_LOCKOUT,
        "Depends on who asks: an administrator may not lock themselves out.",
    ),
    DomainRule(
        ("admin_delete_user",),
        NON_FIELD,
        SELF_DELETE,
        "Depends on who asks: an administrator may not delete themselves.",
    ),
)


def domain_rule(operation: str, field: str, message: str) -> DomainRule | None:
    """The rule of ``DOMAIN_RULES`` this message of this operation's 400 comes from."""
    for rule in DOMAIN_RULES:
        if operation in rule.operations and rule.matches(field, message):
            return rule
    return None


def domain_rules_text(operation: str) -> str:
    """The operation's domain rules, as a sentence list for its 400's description."""
    lines = {
        f"`{rule.field}`: {rule.message.replace('{}', '…')} ({rule.why})": None
        for rule in DOMAIN_RULES
        if operation in rule.operations
    }
    if not lines:
        return ""
    listed = "\n".join(f"- {line}" for line in lines)
    return f" Besides what the schemas say, refused by rules they cannot state:\n\n{listed}"


# operation name -> a realistic 400 body; other operations get one derived from their
# body or query class.
INVALID_EXAMPLES: Final[dict[str, dict[str, list[str]]]] = {
    "register": {"username": [USERNAME_TAKEN], "password": ["This password is too common."]},
    "create_chat": {"participant_usernames": [UNKNOWN_NAME.format("carol")]},
    "send_message": {"content": [rules.BLANK]},
    "admin_edit_user": {"user_type": ['"admin" is not a valid choice.']},
    "admin_delete_user": {NON_FIELD: ["You cannot delete yourself."]},
    "list_users": {"search": [rules.too_long(rules.SEARCH_MAX)]},
    "update_chat": {"participant_usernames": [UNKNOWN_NAME.format("carol")]},
    "add_participants": {"participant_usernames": [UNKNOWN_NAME.format("carol")]},
    "promote": {"user_id": [NOT_IN_CHAT.format(5)]},
    "demote": {NON_FIELD: [LAST_ADMIN]},
    "chat_events": {"limit": [f"Ensure this value is between 1 and {EVENTS_MAX}."]},
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
        "description": "Seconds to wait before trying again.",
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

# The WebSocket endpoint, which OpenAPI cannot describe: documented as ``x-websocket``
# (its frames and codes are generated from ws.frames and ws.codes).
WS_CREDENTIALS: Final = [
    "`?token=<key>` in the query string (browsers cannot set headers on a WebSocket)",
    "`Authorization: Token <key>` or `Authorization: Bearer <key>`",
    f"the `{SESSION_COOKIE}` cookie, only when the `Origin` header is the server's own or a "
    "configured allowed origin (no cross-site WebSocket hijacking)",
]
WS_SINCE: Final = (
    "The last `seq` the client saw: every event of the chat after it is sent first, then "
    "the live ones, with no gap and no duplicate (0: the whole stream). Anything but an "
    "integer from 0 to 2^63-1 is ignored, as for `after`."
)
WS_AFTER: Final = (
    "The v1 resume, by message id: every stored message of the chat after that id, as "
    "`message` frames without `seq`, then the live events (without those messages again). "
    "Ignored when `since` is given."
)
WS_RESUME: Final = (
    "Connecting with `?since=<seq>` first sends every event of the chat after that seq, "
    "then the live ones, with no gap and no duplicate even while new events arrive during "
    "the replay: a client that reconnects with the last seq it saw misses nothing. The v1 "
    "`?after=<message id>` does the same for messages."
)
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
