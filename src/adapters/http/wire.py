"""The wire shapes: one attrs class per JSON object of the contract, and the one cattrs
converter that parses request bodies and query strings into them (or into the domain's
own command classes) and renders responses from them. The OpenAPI document is generated
from these same classes, so a field added here changes the API and its documentation.
"""

from __future__ import annotations

import collections.abc
import functools
import json
import operator
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NewType, TypeVar

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError
from cattrs.gen import make_dict_unstructure_fn

from chatcore.accounts import AccountChange
from chatcore.admin import AccountEdit
from chatcore.errors import NON_FIELD, ValidationFailed
from chatcore.membership import ChatEdit
from chatcore.model import UserType
from chatcore.rules import MAX_ID

T = TypeVar("T")

QueryInt = NewType("QueryInt", int)
"""An integer that arrives as text in a query string."""

REQUIRED = "This field is required."
NOT_A_STRING = "Not a valid string."
NOT_AN_INTEGER = "A valid integer is required."
NOT_A_BOOLEAN = "Must be a valid boolean."
NOT_A_LIST = 'Expected a list of items but got type "{}".'
NOT_AN_OBJECT = "Invalid data. Expected a dictionary, but got {}."
NOT_A_CHOICE = '"{}" is not a valid choice.'  # DRF's ChoiceField's words
CHOICE_ECHO_MAX = 64  # characters of a refused choice echoed back
NULL = "This field may not be null."
UNKNOWN_FIELD = "Unknown field."
FORM_IGNORED = frozenset({"csrfmiddlewaretoken"})  # Django forms' CSRF field; ours is a header
TRUE_TEXTS = frozenset({"true", "1", "on", "yes"})  # what DRF's BooleanField reads from forms
FALSE_TEXTS = frozenset({"false", "0", "off", "no"})

NOT_NULL: dict[type, tuple[str, ...]] = {
    # Optional fields whose None means "leave unchanged": a JSON null is a mistake there
    # (DRF's answer to a null for a field without allow_null).
    AccountEdit: ("user_type", "is_active", "is_admin", "password"),
    AccountChange: ("email", "password", "current_password"),
    ChatEdit: ("name", "participant_ids", "participant_usernames"),
}


def refuses_null(cls: type, name: str) -> bool:
    """Whether :func:`structure` refuses a JSON null for this field although its type
    allows None. The OpenAPI document asks the same question of each field, so it calls
    nullable exactly the fields that take null."""
    return name in NOT_NULL.get(cls, ())


BODIES_IGNORE_UNKNOWN_FIELDS = False  # one rule for every body: see structure_body


def ignores_unknown_fields() -> bool:
    """Whether a body may carry fields its class lacks (ignored) or not (a 400 naming
    them): :func:`structure_body` does it and the document says ``additionalProperties``
    accordingly."""
    return BODIES_IGNORE_UNKNOWN_FIELDS


@attrs.frozen
class UserOut:
    """A user as anyone sees them."""

    id: int
    username: str
    user_type: UserType


@attrs.frozen
class MeOut:
    """The authenticated user's own account."""

    id: int
    username: str
    email: str
    user_type: UserType
    date_joined: datetime
    is_admin: bool


@attrs.frozen
class SessionOut(MeOut):
    """An account with a fresh API token, as register and login return it."""

    token: str


@attrs.frozen
class AdminUserOut(MeOut):
    """An account as administrators see it."""

    is_active: bool


@attrs.frozen
class MessageOut:
    """A stored message; ``chat`` is its chat's id."""

    id: int
    chat: int = attrs.field(metadata={"source": "chat_id"})  # the domain's Message.chat_id
    sender: UserOut
    content: str
    timestamp: datetime
    client_id: str | None
    edited_at: datetime | None


@attrs.frozen
class ChatOut:
    """A chat as its participants see it, with its latest message (or null)."""

    id: int
    name: str
    participants: list[UserOut]
    created_at: datetime
    last_message: MessageOut | None
    admins: list[int]
    seq: int


@attrs.frozen
class Detail:
    """A message about the request as a whole (errors other than validation)."""

    detail: str


@attrs.frozen
class LoginIn:
    """Credentials to exchange for a new token."""

    username: str
    password: str


@attrs.frozen
class SendIn:
    """A message to post; a repeated ``client_id`` returns the original."""

    content: str
    client_id: str | None = None


@attrs.frozen
class ChatPutIn:
    """A PUT of a chat: a PATCH (:class:`chatcore.membership.ChatEdit`) whose ``name``
    is required."""

    name: str
    participant_ids: Sequence[int] | None = None
    participant_usernames: Sequence[str] | None = None

    def edit(self) -> ChatEdit:
        return ChatEdit(self.name, self.participant_ids, self.participant_usernames)


NOT_NULL[ChatPutIn] = ("participant_ids", "participant_usernames")  # as ChatEdit's


@attrs.frozen
class AdminIn:
    """The participant to make an admin of the chat."""

    user_id: int


@attrs.frozen
class EditIn:
    """A message's new content."""

    content: str


@attrs.frozen
class EventsQuery:
    """Where a catch-up starts (``since``, a seq) and how many events it takes."""

    since: QueryInt | None = None
    limit: QueryInt | None = None


@attrs.frozen
class WindowQuery:
    limit: QueryInt | None = None
    before: QueryInt | None = None
    after: QueryInt | None = None


@attrs.frozen
class MessagesQuery(WindowQuery):
    chat: QueryInt | None = None


@attrs.frozen
class ChatsQuery:
    """The chat list: ``cursor`` is the opaque position a ``rel="next"`` link carries."""

    limit: QueryInt | None = None
    cursor: str | None = None


@attrs.frozen
class ListQuery:
    limit: QueryInt | None = None
    after: QueryInt | None = None


@attrs.frozen
class UsersQuery(ListQuery):
    search: str = ""


class WireError(ValueError):
    """A value of the wrong JSON type; its text is the message the client sees."""


def _structure_str(value: object, _: type) -> str:
    if value is None:
        raise WireError(NULL)
    if not isinstance(value, str):
        raise WireError(NOT_A_STRING)
    return value


def _structure_int(value: object, _: type) -> int:
    # JSON Schema's integer is any number with no fractional part, 7.0 included (and so
    # is DRF's IntegerField); bool is an int to Python, not to JSON.
    if type(value) is float and value.is_integer():
        return int(value)
    if type(value) is not int:
        raise WireError(NOT_AN_INTEGER)
    return value


# ASCII digits only (not "١٢"); no two quantifiers that could match the same character,
# so a long near-miss fails in linear time.
_QUERY_INT = re.compile(r"[ \t]*([-+]?)([0-9]+)[ \t]*")
_BEYOND = MAX_ID + 1  # what any longer numeral stands for: more than any limit allows


def query_int(text: str) -> int | None:
    """The integer a query-string value spells, or None. A numeral longer than MAX_ID's
    reads as MAX_ID + 1 (with its sign), which every rule on it refuses or clamps as it
    would the exact value: so no value costs more than 19 digits of int() to read."""
    match = _QUERY_INT.fullmatch(text)
    if match is None:
        return None
    sign, numeral = match.groups()
    digits = numeral.lstrip("0") or "0"
    value = _BEYOND if len(digits) > len(str(MAX_ID)) else min(int(digits), _BEYOND)
    return -value if sign == "-" else value


def _structure_query_int(value: object, _: type) -> int:
    number = query_int(value) if isinstance(value, str) else None
    if number is None:
        raise WireError(NOT_AN_INTEGER)
    return number


def _structure_bool(value: object, _: type) -> bool:
    if type(value) is not bool:
        raise WireError(NOT_A_BOOLEAN)
    return value


def _structure_literal(value: object, kind: Any) -> object:
    # equality, not hashing: a list or an object is refused like any other wrong value
    if any(type(value) is type(choice) and value == choice for choice in typing.get_args(kind)):
        return value
    raise WireError(NOT_A_CHOICE.format(str(value)[:CHOICE_ECHO_MAX]))


def _structure_sequence(value: object, kind: type) -> Any:
    if not isinstance(value, list):
        raise WireError(NOT_A_LIST.format(type(value).__name__))
    (item,) = typing.get_args(kind) or (Any,)
    return tuple(converter.structure(v, item) for v in value)


def _origin(kind: object) -> object:
    return typing.get_origin(kind)


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


converter = cattrs.Converter(forbid_extra_keys=False)
converter.register_structure_hook(str, _structure_str)
converter.register_structure_hook(int, _structure_int)
converter.register_structure_hook(QueryInt, _structure_query_int)
converter.register_structure_hook(bool, _structure_bool)
converter.register_structure_hook_func(lambda t: _origin(t) is typing.Literal, _structure_literal)
converter.register_structure_hook_func(
    lambda t: _origin(t) in (collections.abc.Sequence, list, tuple),
    _structure_sequence,
)
converter.register_unstructure_hook(datetime, _time)


def _fixes_a_field(cls: Any) -> bool:
    """A wire class with a field it sets itself (``init=False``: a frame's ``type``)."""
    return attrs.has(cls) and any(not f.init for f in attrs.fields(cls))


def unstructure_fn(cls: Any, **overrides: Any) -> Callable[[Any], dict[str, Any]]:
    """The function rendering ``cls``: every field, those its class fixes included, and
    those first (a frame's ``type`` leads, even below fields inherited from a base)."""
    render = make_dict_unstructure_fn(cls, converter, _cattrs_include_init_false=True, **overrides)
    names = [f.name for f in attrs.fields(cls)]
    fixed = [f.name for f in attrs.fields(cls) if not f.init]
    if names[: len(fixed)] == fixed:
        return render

    def fixed_first(value: Any) -> dict[str, Any]:
        rendered = render(value)
        return {**{name: rendered.pop(name) for name in fixed}, **rendered}

    return fixed_first


converter.register_unstructure_hook_factory(_fixes_a_field, lambda cls: unstructure_fn(cls))


def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return REQUIRED
    if isinstance(exc, WireError):
        return str(exc)
    return "Invalid value."


def structure(data: object, cls: type[T]) -> T:
    """Parse untrusted JSON (or a query dict) into ``cls``; any mismatch becomes one
    ValidationFailed with DRF's per-field messages, never another exception."""
    if not isinstance(data, Mapping):
        raise ValidationFailed.on(NON_FIELD, NOT_AN_OBJECT.format(type(data).__name__))
    nulls = [name for name in NOT_NULL.get(cls, ()) if name in data and data[name] is None]
    if nulls:
        raise ValidationFailed({name: [NULL] for name in nulls})
    try:
        return converter.structure(data, cls)
    except (ClassValidationError, IterableValidationError, ForbiddenExtraKeysError) as exc:
        raise ValidationFailed(_fields(exc)) from None


def structure_body(data: object, cls: type[T]) -> T:
    """Parse a request body into ``cls``, as :func:`structure` does, refusing any key
    ``cls`` does not take (one rule for every body: a field the server would drop is a
    400 naming it, never a silent 200)."""
    if isinstance(data, Mapping) and not ignores_unknown_fields():
        names = _field_names(typing.cast(Any, cls))
        unknown = [key for key in data if key not in names]
        if unknown:
            raise ValidationFailed({str(key): [UNKNOWN_FIELD] for key in unknown})
    return structure(data, cls)


@functools.cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in attrs.fields(typing.cast(Any, cls)))


def form_fields(form: Any, cls: type) -> dict[str, object]:
    """An HTML form (a multi-dict of texts) as the JSON object it stands for, by the
    types of ``cls``'s fields: a list field takes every value of its repeated key, an
    integer or boolean field its text when the text spells one (else the text itself,
    which structuring then refuses with the field's own message), any other field the
    last value, as DRF's QueryDict does."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, object] = {}
    for key in form:
        if key in FORM_IGNORED:
            continue
        kind = _required(hints.get(key, str))
        values = form.getlist(key)
        if _origin(kind) in (collections.abc.Sequence, list, tuple):
            (item,) = typing.get_args(kind) or (str,)
            fields[key] = [_form_value(item, v) for v in values]
        else:
            fields[key] = _form_value(kind, values[-1])
    return fields


def _required(kind: Any) -> Any:
    """``X`` of ``X | None``."""
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    return args[0] if type(None) in typing.get_args(kind) and len(args) == 1 else kind


def _form_value(kind: Any, text: object) -> object:
    if not isinstance(text, str):
        return text
    if kind is int and text.isascii() and text.isdigit() and len(text) <= 20:
        return int(text)
    if kind is bool and text.lower() in TRUE_TEXTS | FALSE_TEXTS:
        return text.lower() in TRUE_TEXTS
    return text


def _fields(exc: BaseException) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for path, error in _walk(exc, ""):
        field = path.split(".")[0].split("[")[0] or NON_FIELD
        fields.setdefault(field, []).append(_message(error))
    return fields


def _walk(exc: BaseException, path: str) -> typing.Iterator[tuple[str, BaseException]]:
    if isinstance(exc, ClassValidationError | IterableValidationError):
        with_notes, _ = exc.group_exceptions()
        for inner, note in with_notes:
            yield from _walk(inner, path or str(getattr(note, "name", "")))
    else:
        yield path, exc


@functools.cache
def _plan(cls: Any) -> list[tuple[str, str, Any]]:
    """For each field of a wire class: its name, its source attribute, its type (not the
    fields the class fixes itself, ``init=False``)."""
    hints = typing.get_type_hints(cls)
    fields = [f for f in attrs.fields(cls) if f.init]
    return [(f.name, f.metadata.get("source", f.name), hints[f.name]) for f in fields]


Convert = typing.Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _converter_for(kind: Any) -> Convert:
    """How a domain value becomes the value of a wire field of type ``kind``: worked out
    once per field, not on every response (every reply and frame goes through here)."""
    if attrs.has(kind):
        build = _projector(kind)
        return lambda value: None if value is None else build(value, {})
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is list:
        item = _converter_for(args[0])
        return lambda value: None if value is None else [item(v) for v in value]
    if args and type(None) in args:  # X | None
        (inner,) = [a for a in args if a is not type(None)]
        return _converter_for(inner)
    return _same


@functools.cache
def _projector(cls: Any) -> typing.Callable[[object, Mapping[str, object]], Any]:
    fields = [
        (name, operator.attrgetter(src), _converter_for(kind)) for name, src, kind in _plan(cls)
    ]

    def build(obj: object, extra: Mapping[str, object]) -> Any:
        values = {
            name: extra[name] if name in extra else convert(get(obj))
            for name, get, convert in fields
        }
        return cls(**values)

    return build


def project(cls: type[T], obj: object, **extra: object) -> T:
    """Build the wire object ``cls`` from a domain object (fields by name or by their
    ``source``), nested wire objects included; ``extra`` supplies fields it lacks."""
    built: T = _projector(typing.cast(Any, cls))(obj, extra)
    return built


def render(value: object) -> bytes:
    """Wire object(s) to compact UTF-8 JSON."""
    return dumps(converter.unstructure(value))


# Built once: json.dumps with any option builds a new encoder on every call.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_COMPACT_ASCII = json.JSONEncoder(separators=(",", ":"))


def dumps(data: object) -> bytes:
    text = _COMPACT.encode(data)
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate echoed from input: escape it instead
        return _COMPACT_ASCII.encode(data).encode()
