"""The one codec of what travels over Redis: the domain's events and revocations as
JSON, encoded and decoded here, at the adapter's edge, by one cattrs converter from the
classes of :mod:`chatcore.events` and :mod:`chatcore.model` (nothing written twice).

An event is its class's fields plus ``"kind"``, which names the class on the way back
(:data:`chatcore.events.BY_KIND`). Times travel as ISO 8601 with their offset, enums by
value, tuples as arrays: decoding gives back an equal object. This is not the wire format
of the API (:mod:`adapters.http.ws.frames` is): it carries what the domain objects hold,
for the processes of one deployment.
"""

from __future__ import annotations

import json
from typing import Any

from cattrs.preconf.json import make_converter

from chatcore.events import BY_KIND, Event, EventKind
from chatcore.model import Revocation

converter = make_converter()
# ASCII: a lone surrogate (JSON allows one in a string) survives the trip too.
_encoder = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))
KIND = "kind"


class Undecodable(ValueError):
    """A payload that is not one of ours (another version, another program on the
    channel): the listener skips it, and storage fills whatever it carried."""


def encode_event(event: Event) -> bytes:
    fields: dict[str, Any] = converter.unstructure(event)
    return _encoder.encode({KIND: event.kind.value, **fields}).encode()


def decode_event(data: bytes) -> Event:
    try:
        fields = json.loads(data)
        event_type = BY_KIND[EventKind(fields.pop(KIND))]
        return converter.structure(fields, event_type)
    except Exception as exc:  # a malformed payload, whatever the way it is malformed
        raise Undecodable(f"not an event: {exc!r}") from None


def encode_revocation(revocation: Revocation) -> bytes:
    return _encoder.encode(converter.unstructure(revocation)).encode()


def decode_revocation(data: bytes) -> Revocation:
    try:
        return converter.structure(json.loads(data), Revocation)
    except Exception as exc:
        raise Undecodable(f"not a revocation: {exc!r}") from None
