"""The WebSocket's codes and which domain error is which: the counterpart of
:mod:`..problems` for sockets. An error frame's ``code`` says what was wrong with one
client frame (the socket stays open); a close code ends the socket. The endpoint raises
and catches domain errors; only these tables turn them into codes. The ``meaning`` of
each row is what the OpenAPI document says of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, TypeVar

import attrs

from chatcore.errors import (
    NON_FIELD,
    AuthenticationFailed,
    NotFound,
    Throttled,
    Unavailable,
    ValidationFailed,
)

from .config import RealtimeConfig
from .frames import CLIENT_FRAME_TYPES, FrameNotJson, WsErrorFrame

V = TypeVar("V")


@attrs.frozen
class ErrorCode:
    code: str
    meaning: str


@attrs.frozen
class CloseCode:
    code: int
    meaning: str


INVALID_JSON: Final = ErrorCode("invalid_json", "The frame is not JSON.")
INVALID_FRAME: Final = ErrorCode(
    "invalid_frame",
    "The frame is not a JSON object, or `client_id` is not a string (or is refused).",
)
INVALID_CONTENT: Final = ErrorCode(
    "invalid_content", "`content` is missing, not a string, blank or too long."
)
UNKNOWN_TYPE: Final = ErrorCode(
    "unknown_type", f"`type` is neither of {', '.join(CLIENT_FRAME_TYPES)}."
)
RATE_LIMITED: Final = ErrorCode(
    "rate_limited",
    "Sending faster than the socket's rate limit allows (a deployment setting: a few tens "
    "a second, with bursts); `retry_after_ms` says when to try again.",
)
UNAVAILABLE: Final = ErrorCode(
    "unavailable",
    "The database cannot be reached for now: nothing was stored. Send the frame again "
    "(with the same `client_id`) after `retry_after_ms`.",
)
ERROR_CODES: Final = (
    INVALID_JSON,
    INVALID_FRAME,
    INVALID_CONTENT,
    UNKNOWN_TYPE,
    RATE_LIMITED,
    UNAVAILABLE,
)

CLOSE_NORMAL: Final = 1000  # the socket's tasks ended with no reason to give
CLOSE_GOING_AWAY: Final = 1001
CLOSE_POLICY: Final = 1008
CLOSE_TOO_BIG: Final = 1009
CLOSE_TRY_LATER: Final = 1013
CLOSE_UNAUTHORIZED: Final = 4401
CLOSE_NOT_FOUND: Final = 4404

CLOSE_CODES: Final = (  # every close code the server gives a reason for
    CloseCode(
        CLOSE_UNAUTHORIZED, "No credentials, or bad ones (or a cookie from a foreign `Origin`)."
    ),
    CloseCode(
        CLOSE_NOT_FOUND,
        "No such chat, or the caller is not in it; also once they are removed from it or "
        "it is deleted (after the `member_removed` or `chat_deleted` frame).",
    ),
    CloseCode(CLOSE_TOO_BIG, f"A frame over {RealtimeConfig().max_frame_bytes // 1024} KiB."),
    CloseCode(
        CLOSE_TRY_LATER,
        "Slow consumer: the socket's outbound queue is full; or, at the handshake, the "
        "database cannot be reached for now. Reconnect with `?since=<last seq seen>` to "
        "miss nothing.",
    ),
    CloseCode(CLOSE_GOING_AWAY, "The server is shutting down."),
    CloseCode(
        CLOSE_POLICY,
        "The user was deactivated, or the token or session was revoked or expired.",
    ),
)

NOT_JSON_MESSAGE: Final = "The frame is not valid JSON."
RATE_LIMITED_MESSAGE: Final = "Too many messages; slow down."
UNAVAILABLE_MESSAGE: Final = "The service is temporarily unavailable; try again shortly."

Answer = WsErrorFrame | int
"""What a socket does about an error: send this error frame, or close with this code."""

# The error code of a ValidationFailed, by the first field at fault in this order; any
# other field (client_id, non_field_errors) is invalid_frame.
FIELD_CODES: Final = {"type": UNKNOWN_TYPE, "content": INVALID_CONTENT}


def _invalid(exc: Exception) -> Answer:
    assert isinstance(exc, ValidationFailed)
    field = next((name for name in FIELD_CODES if name in exc.fields), next(iter(exc.fields)))
    code = FIELD_CODES.get(field, INVALID_FRAME)
    messages = " ".join(exc.fields[field])
    return _error(code, messages if field == NON_FIELD else f"{field}: {messages}")


def _throttled(exc: Exception) -> Answer:
    assert isinstance(exc, Throttled)
    wait_ms = max(1, round(exc.retry_after * 1000))
    return _error(RATE_LIMITED, RATE_LIMITED_MESSAGE, retry_after_ms=wait_ms)


def _unavailable(exc: Exception) -> Answer:
    assert isinstance(exc, Unavailable)
    wait_ms = max(1, round(exc.retry_after * 1000))
    return _error(UNAVAILABLE, UNAVAILABLE_MESSAGE, retry_after_ms=wait_ms)


def _not_json(_: Exception) -> Answer:
    return _error(INVALID_JSON, NOT_JSON_MESSAGE)


def _error(code: ErrorCode, message: str, retry_after_ms: int | None = None) -> WsErrorFrame:
    return WsErrorFrame(message=message, code=code.code, retry_after_ms=retry_after_ms)


def _close(code: int) -> Callable[[Exception], Answer]:
    return lambda _: code


# Refusing a socket before it opens: always a close code (nothing of the chat is sent).
ON_HANDSHAKE: Final[Mapping[type[Exception], int]] = {
    AuthenticationFailed: CLOSE_UNAUTHORIZED,
    NotFound: CLOSE_NOT_FOUND,
    Unavailable: CLOSE_TRY_LATER,
}

# While a socket is open, handling a client frame or re-checking its credential.
WHILE_OPEN: Final[Mapping[type[Exception], Callable[[Exception], Answer]]] = {
    FrameNotJson: _not_json,
    ValidationFailed: _invalid,
    Throttled: _throttled,
    Unavailable: _unavailable,
    NotFound: _close(CLOSE_NOT_FOUND),  # the chat was deleted, or the caller removed from it
    AuthenticationFailed: _close(CLOSE_POLICY),  # revoked, expired or deactivated since
}
ANSWERED: Final = tuple(WHILE_OPEN)


def refusal(exc: Exception) -> int:
    """The close code refusing a handshake that raised ``exc`` (raised again if none)."""
    return _lookup(ON_HANDSHAKE, exc)


def answer(exc: Exception) -> Answer:
    """What an open socket does about ``exc`` (raised again if the table has no row)."""
    return _lookup(WHILE_OPEN, exc)(exc)


def _lookup(table: Mapping[type[Exception], V], exc: Exception) -> V:
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    raise exc
