"""The WebSocket's frames: one wire class per JSON object a socket carries, parsed and
rendered by the one converter of :mod:`..wire`, and documented from these same classes
(``x-websocket``). A server frame's ``type`` is a field fixed by its class (``init=False``):
always sent, never passed in, documented as a constant.

The event frames, one class per :class:`chatcore.events.EventKind`, are the v2 shapes
(``{"type": kind, "chat_id", "seq", ...}``), rendered from the domain's events with
:func:`..wire.project`: what the chat socket sends of every change. The REST catch-up
(:class:`EventsOut`) lists the same frames.
"""

from __future__ import annotations

import json
import typing
from typing import Literal

import attrs
from cattrs.gen import override

from chatcore.events import Event, EventKind
from chatcore.model import Message

from ..wire import (
    ChatOut,
    MessageOut,
    SendIn,
    UserOut,
    converter,
    project,
    render,
    structure,
    unstructure_fn,
)

ClientFrameType = Literal["message", "chat_message"]
CLIENT_FRAME_TYPES: tuple[str, ...] = typing.get_args(ClientFrameType)


@attrs.frozen
class WsClientFrame(SendIn):
    """What a client sends: a message to store and deliver."""

    type: ClientFrameType = "message"


@attrs.frozen
class WsMessageFrame:
    """A stored message outside the seq stream (no ``seq``): the v1 ``?after=`` replay,
    and the answer to a repeated ``client_id``, to the sender only."""

    type: str = attrs.field(default="message", init=False)
    message: MessageOut


@attrs.frozen
class WsErrorFrame:
    """A frame the server could not take; the socket stays open."""

    type: str = attrs.field(default="error", init=False)
    message: str
    code: str  # one of codes.ERROR_CODES
    retry_after_ms: int | None = None  # with rate_limited only; left out otherwise


converter.register_unstructure_hook(
    WsErrorFrame, unstructure_fn(WsErrorFrame, retry_after_ms=override(omit_if_default=True))
)


class FrameNotJson(ValueError):
    """A client frame that is not JSON at all."""


def parse_client_frame(raw: str | bytes) -> WsClientFrame:
    """A client frame's text as its wire class; ``ValidationFailed`` naming the fields at
    fault (``non_field_errors`` for a frame that is not an object), or FrameNotJson."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested ~1,000 deep
        raise FrameNotJson from None
    return structure(data, WsClientFrame)


def text(frame: object) -> str:
    """A server frame as the text a socket sends."""
    return render(frame).decode()


def message_frame(message: Message) -> str:
    return text(WsMessageFrame(project(MessageOut, message)))


# The v2 event frames -----------------------------------------------------------------------


@attrs.frozen
class WsEventFrame:
    """Base of every event frame: which chat, and where in its stream."""

    chat_id: int
    seq: int


@attrs.frozen
class WsMessagePostedFrame(WsEventFrame):
    """A message was sent (over REST or WebSocket alike): the v1 frame, with the chat's
    id and seq."""

    type: str = attrs.field(default=EventKind.MESSAGE.value, init=False)
    message: MessageOut


@attrs.frozen
class WsMessageEditedFrame(WsEventFrame):
    """Its sender edited a message: the message as it is now."""

    type: str = attrs.field(default=EventKind.MESSAGE_EDITED.value, init=False)
    message: MessageOut


@attrs.frozen
class WsMessageDeletedFrame(WsEventFrame):
    """A message was deleted (by its sender, an admin of the chat, or with its sender's
    account); a replay shows every earlier event of it so, at its own seq."""

    type: str = attrs.field(default=EventKind.MESSAGE_DELETED.value, init=False)
    message_id: int


@attrs.frozen
class WsMemberAddedFrame(WsEventFrame):
    """``by`` added ``user`` to the chat."""

    type: str = attrs.field(default=EventKind.MEMBER_ADDED.value, init=False)
    user: UserOut
    by: UserOut


@attrs.frozen
class WsMemberRemovedFrame(WsEventFrame):
    """``user`` left (``by`` is ``user``), was removed by ``by``, or their account was
    deleted by ``by``. Their own sockets on the chat are closed (4404) after it."""

    type: str = attrs.field(default=EventKind.MEMBER_REMOVED.value, init=False)
    user: UserOut
    by: UserOut


@attrs.frozen
class WsChatUpdatedFrame(WsEventFrame):
    """A rename or a change of admins: the chat as it stands after it."""

    type: str = attrs.field(default=EventKind.CHAT_UPDATED.value, init=False)
    chat: ChatOut


@attrs.frozen
class WsChatDeletedFrame(WsEventFrame):
    """The chat's last event: it is gone for everyone, and its sockets are closed (4404)
    after it."""

    type: str = attrs.field(default=EventKind.CHAT_DELETED.value, init=False)


def fixed_type(cls: type) -> str:
    """The ``type`` a server frame class always renders."""
    return str(attrs.fields_dict(cls)["type"].default)


AnyEventFrame = (
    WsMessagePostedFrame
    | WsMessageEditedFrame
    | WsMessageDeletedFrame
    | WsMemberAddedFrame
    | WsMemberRemovedFrame
    | WsChatUpdatedFrame
    | WsChatDeletedFrame
)


EVENT_FRAMES: dict[EventKind, type[AnyEventFrame]] = {
    EventKind(fixed_type(cls)): cls
    for cls in (
        WsMessagePostedFrame,
        WsMessageEditedFrame,
        WsMessageDeletedFrame,
        WsMemberAddedFrame,
        WsMemberRemovedFrame,
        WsChatUpdatedFrame,
        WsChatDeletedFrame,
    )
}


def event_wire(event: Event) -> AnyEventFrame:
    """An event as its frame's wire object: the one shape of an event, on a socket and
    in the REST catch-up (:class:`EventsOut`) alike."""
    return project(EVENT_FRAMES[event.kind], event)


def event_frame(event: Event) -> str:
    """An event as the frame every socket of its chat is sent (render it once per event,
    not once per socket)."""
    return text(event_wire(event))


@attrs.frozen
class EventsOut:
    """A chat's events after ``since``, in seq order, each as the frame a socket is sent,
    and the chat's latest seq now (GET /api/chats/{chat_id}/events/)."""

    events: list[AnyEventFrame]
    seq: int
