"""The WebSocket protocol's tables: client frames parsed by the wire converter, each
domain error answered by its row, and one frame class per event kind."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from adapters.http.ws import codes
from adapters.http.ws.config import RealtimeConfig
from adapters.http.ws.frames import (
    EVENT_FRAMES,
    WsClientFrame,
    WsErrorFrame,
    event_frame,
    parse_client_frame,
    text,
)
from chatcore.errors import (
    AuthenticationFailed,
    Conflict,
    NotFound,
    Throttled,
    Unavailable,
    ValidationFailed,
)
from chatcore.events import (
    ChatDeleted,
    ChatUpdated,
    Event,
    EventKind,
    MemberAdded,
    MemberRemoved,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
)
from chatcore.model import Chat, Message, User, UserType
from entrypoints.settings import Settings

WHEN = datetime(2026, 3, 1, 12, tzinfo=UTC)
ALICE = User(1, "alice", "alice@example.com", next(iter(UserType)), WHEN)
MESSAGE = Message(5, 7, ALICE, "hi", WHEN)


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ('{"content": "hi"}', WsClientFrame("hi")),
        ('{"type": "message", "content": "hi"}', WsClientFrame("hi")),
        ('{"type": "chat_message", "content": "hi"}', WsClientFrame("hi", None, "chat_message")),
        ('{"content": "hi", "client_id": null}', WsClientFrame("hi")),
        ('{"content": "hi", "client_id": "k", "extra": [1]}', WsClientFrame("hi", "k")),
    ],
)
def test_client_frames_are_taken_as_before(raw: str, parsed: WsClientFrame) -> None:
    assert parse_client_frame(raw) == parsed


def _answer_to(raw: str) -> codes.Answer:
    try:
        parse_client_frame(raw)
    except codes.ANSWERED as exc:
        return codes.answer(exc)
    raise AssertionError(f"{raw!r} was taken")


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_frame"),
        ('"text"', "invalid_frame"),
        ('{"type": "typing"}', "unknown_type"),  # before the missing content
        ('{"type": null, "content": "hi"}', "unknown_type"),
        ('{"type": ["message"], "content": "hi"}', "unknown_type"),
        ("{}", "invalid_content"),
        ('{"content": null}', "invalid_content"),
        ('{"content": 7, "client_id": 5}', "invalid_content"),  # before client_id
        ('{"content": "hi", "client_id": 5}', "invalid_frame"),
    ],
)
def test_a_bad_frame_is_answered_with_its_code_and_a_message(raw: str, code: str) -> None:
    answer = _answer_to(raw)
    assert isinstance(answer, WsErrorFrame)
    assert answer.code == code
    assert answer.message
    assert answer.retry_after_ms is None
    assert "retry_after_ms" not in json.loads(text(answer))


def test_domain_errors_while_open_map_to_their_rows() -> None:
    rule = codes.answer(ValidationFailed({"client_id": ["Too long."]}))
    assert rule == WsErrorFrame(message="client_id: Too long.", code="invalid_frame")
    throttled = codes.answer(Throttled(0.3456))
    assert isinstance(throttled, WsErrorFrame)
    assert json.loads(text(throttled)) == {
        "type": "error",
        "message": codes.RATE_LIMITED_MESSAGE,
        "code": "rate_limited",
        "retry_after_ms": 346,
    }
    assert codes.answer(Throttled(0.0001)) == WsErrorFrame(
        message=codes.RATE_LIMITED_MESSAGE, code="rate_limited", retry_after_ms=1
    )
    # the database away: the frame is refused, the socket stays; try again later
    assert json.loads(text(codes.answer(Unavailable(2)))) == {
        "type": "error",
        "message": codes.UNAVAILABLE_MESSAGE,
        "code": "unavailable",
        "retry_after_ms": 2000,
    }
    assert codes.answer(NotFound()) == codes.CLOSE_NOT_FOUND
    assert codes.answer(AuthenticationFailed()) == codes.CLOSE_POLICY
    with pytest.raises(Conflict):  # no row: raised again, not guessed
        codes.answer(Conflict())


def test_a_refused_handshake_is_a_close_code() -> None:
    assert codes.refusal(AuthenticationFailed()) == codes.CLOSE_UNAUTHORIZED
    assert codes.refusal(NotFound()) == codes.CLOSE_NOT_FOUND
    assert codes.refusal(Unavailable(2)) == codes.CLOSE_TRY_LATER
    with pytest.raises(ValidationFailed):
        codes.refusal(ValidationFailed.on("x", "y"))


def test_every_code_of_the_tables_is_distinct() -> None:
    assert len({row.code for row in codes.ERROR_CODES}) == len(codes.ERROR_CODES)
    assert len({row.code for row in codes.CLOSE_CODES}) == len(codes.CLOSE_CODES)


CHAT = Chat(7, "team", WHEN, (ALICE,))
EVENTS: list[tuple[Event, dict[str, object]]] = [
    (MessagePosted(7, 1, MESSAGE), {"message": {"id": 5, "content": "hi"}}),
    (MessageEdited(7, 2, MESSAGE), {"message": {"id": 5, "content": "hi"}}),
    (MessageDeleted(7, 3, 5), {"message_id": 5}),
    (MemberAdded(7, 4, ALICE, ALICE), {"user": {"id": 1}, "by": {"id": 1}}),
    (MemberRemoved(7, 5, ALICE, ALICE), {"user": {"id": 1}, "by": {"id": 1}}),
    (ChatUpdated(7, 6, CHAT), {"chat": {"id": 7, "name": "team"}}),
    (ChatDeleted(7, 7), {}),
]


def test_every_event_kind_has_a_frame() -> None:
    assert set(EVENT_FRAMES) == set(EventKind)
    assert {type(event).kind for event, _ in EVENTS} == set(EventKind)


@pytest.mark.parametrize(("event", "carries"), EVENTS, ids=lambda v: type(v).__name__)
def test_an_event_frame_is_its_kind_chat_seq_and_what_it_carries(
    event: Event, carries: dict[str, object]
) -> None:
    frame = json.loads(event_frame(event))
    assert list(frame)[:3] == ["type", "chat_id", "seq"]
    assert (frame["type"], frame["chat_id"], frame["seq"]) == (
        event.kind.value,
        event.chat_id,
        event.seq,
    )
    assert set(frame) == {"type", "chat_id", "seq", *carries}
    for key, expected in carries.items():
        if isinstance(expected, dict):
            assert expected.items() <= frame[key].items(), (key, frame[key])
        else:
            assert frame[key] == expected


def test_the_deployment_defaults_are_the_adapters_own() -> None:
    assert Settings().realtime() == RealtimeConfig()
