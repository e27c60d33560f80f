"""The OpenAPI 3.1 document of the HTTP API, built with apispec from the definitions the
adapter itself routes and parses with: the operation table (method, path, summary, tag,
body, query and response classes, whether credentials are needed, the handler's
docstring) and the attrs classes it names, read field by field from their type hints.

A field added to a wire class, or an operation added to the table, changes the document
with no other edit. :mod:`.openapi_notes` only adds words, limits and examples; the
examples themselves are built from the same classes, so they always have every field.
"""

from __future__ import annotations

import collections.abc
import enum
import inspect
import re
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import datetime
from http import HTTPStatus
from importlib import metadata
from typing import Any

import attrs
from apispec import APISpec

from chatcore.errors import NON_FIELD, ValidationFailed

from . import openapi_notes as notes
from .auth import SAFE_METHODS
from .routes import Operation
from .wire import (
    REQUIRED,
    Detail,
    QueryInt,
    converter,
    ignores_unknown_fields,
    refuses_null,
)
from .ws.endpoint import CHAT_SOCKET, Socket
from .ws.frames import fixed_type

OPENAPI_VERSION = "3.1.0"
TITLE = "chatcore"
JSON = "application/json"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
VALIDATION_ERROR = "ValidationError"
SECURITY: list[dict[str, list[str]]] = [{name: []} for name in notes.SECURITY_SCHEMES]

Schema = dict[str, Any]

_PRIMITIVES: tuple[tuple[type, Schema, object], ...] = (
    (bool, {"type": "boolean"}, False),  # before int: a bool is an int to Python
    (int, {"type": "integer"}, 1),
    (float, {"type": "number"}, 1.5),
    (str, {"type": "string"}, "text"),
    (datetime, {"type": "string", "format": "date-time"}, notes.SENT),
)
_SEQUENCES = (list, tuple, collections.abc.Sequence)

VALIDATION_SCHEMA: Schema = {
    "type": "object",
    "description": "DRF's validation error: for each field at fault, its messages; "
    f"`{NON_FIELD}` holds the messages not tied to one field.",
    "minProperties": 1,
    "additionalProperties": {"type": "array", "items": {"type": "string"}, "minItems": 1},
}


def package_version() -> str:
    try:
        return metadata.version(TITLE)
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def component_name(cls: type) -> str:
    """``UserOut`` is documented as ``User``: the suffix is how the code tells wire
    classes apart from the domain's, which the reader of the document never sees."""
    name = cls.__name__
    return name.removesuffix("Out") or name


def build_document(
    operations: Sequence[Operation],
    extra_paths: Mapping[str, Mapping[str, Any]] | None = None,
    socket: Socket = CHAT_SOCKET,
) -> dict[str, Any]:
    """The OpenAPI document of ``operations``, plus ``extra_paths`` (path items written
    out by other routes of the app, such as the documentation pages themselves), and the
    WebSocket endpoint ``socket`` as the ``x-websocket`` extension."""
    return _Builder().build(operations, extra_paths or {}, socket)


def _strip_none(kind: Any) -> Any:
    """``X | None`` as ``X``: a query parameter is absent, never null, and so is a body
    field that refuses null (wire.refuses_null)."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(options) == 1:
            return options[0]
    return kind


def _merge(base: Schema, extra: Mapping[str, Any]) -> Schema:
    """``extra`` over ``base``, nested objects (``items``) merged too."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _nullable(schema: Schema) -> Schema:
    kind = schema.get("type")
    if isinstance(kind, str) and "enum" not in schema:
        return {**schema, "type": [kind, "null"]}
    options = schema["anyOf"] if set(schema) == {"anyOf"} else [schema]
    return {"anyOf": [*options, {"type": "null"}]}


def _without_null(schema: Any) -> Any:
    """``schema`` with every ``null`` alternative taken out, at any depth."""
    if isinstance(schema, list):
        return [_without_null(item) for item in schema if item != {"type": "null"}]
    if not isinstance(schema, Mapping):
        return schema
    stripped = {key: _without_null(value) for key, value in schema.items()}
    kind = stripped.get("type")
    if isinstance(kind, list) and "null" in kind:
        kinds = [k for k in kind if k != "null"]
        stripped["type"] = kinds[0] if len(kinds) == 1 else kinds
    if "anyOf" in stripped and len(stripped["anyOf"]) == 1 and set(stripped) == {"anyOf"}:
        return stripped["anyOf"][0]
    return stripped


def _required(field: attrs.Attribute[Any]) -> bool:
    """Whether the field is always there: no default, or fixed by its class."""
    return field.default is attrs.NOTHING or not field.init


def _fixed(field: attrs.Attribute[Any]) -> bool:
    """A field its class fixes (``init=False``), such as a frame's ``type``."""
    return not field.init and field.default is not attrs.NOTHING


def _default(field: attrs.Attribute[Any]) -> tuple[bool, object]:
    """Whether the field has a default worth showing (not None, not a factory), and it."""
    default = field.default
    factory = isinstance(default, attrs.Factory)  # type: ignore[arg-type]  # a class at run time
    if default is attrs.NOTHING or default is None or factory:
        return False, None
    return True, converter.unstructure(default)


def _markdown(docstring: str | None) -> str:
    """A docstring as OpenAPI's Markdown: reST's ``literal`` becomes `literal`."""
    return re.sub(r"``(.+?)``", r"`\1`", inspect.cleandoc(docstring or ""))


def _own_doc(cls: type) -> str:
    """The class's own docstring; ``inspect.getdoc`` would inherit ``object``'s."""
    doc = cls.__dict__.get("__doc__")
    return _markdown(doc if isinstance(doc, str) else None)


def _is_page(op: Operation, kind: Any) -> bool:
    """Paged lists take ``after`` or ``cursor`` and answer with a Link header (see
    api._listed)."""
    return (
        typing.get_origin(kind) is list
        and op.query is not None
        and not attrs.fields_dict(op.query).keys().isdisjoint({"after", "cursor"})
    )


class _Builder:
    def __init__(self) -> None:
        self.spec = APISpec(TITLE, package_version(), OPENAPI_VERSION)
        self._classes: dict[str, type] = {}
        self._bodies: set[type] = set()

    # the document -----------------------------------------------------------------------

    def build(
        self,
        operations: Sequence[Operation],
        extra_paths: Mapping[str, Mapping[str, Any]],
        socket: Socket,
    ) -> dict[str, Any]:
        for name, scheme in notes.SECURITY_SCHEMES.items():
            self.spec.components.security_scheme(name, scheme)
        self.spec.components.schema(VALIDATION_ERROR, VALIDATION_SCHEMA)
        self.schema(Detail)
        self._bodies = {op.body for op in operations if op.body is not None}
        paths: dict[str, dict[str, Any]] = {}
        for op in operations:
            paths.setdefault(op.path, {})[op.method.lower()] = self.operation(op)
        for path, item in extra_paths.items():
            paths.setdefault(path, {}).update(item)
        tags = dict.fromkeys(
            tag for item in paths.values() for op_doc in item.values() for tag in op_doc["tags"]
        )
        for tag in tags:
            self.spec.tag({"name": tag, "description": notes.TAGS.get(tag, "")})
        for path, item in paths.items():
            self.spec.path(path=path, operations=item)
        websocket = self.websocket(socket)
        built = self.spec.to_dict()
        info = built.pop("info")
        return {
            "openapi": built.pop("openapi"),
            "info": {
                "title": info["title"],
                "version": info["version"],
                "description": notes.INTRO + "\n" + _websocket_markdown(websocket, socket),
            },
            "security": SECURITY,
            "tags": built.pop("tags"),
            "paths": built.pop("paths"),
            **built,
            "x-websocket": websocket,
        }

    # operations -------------------------------------------------------------------------

    def operation(self, op: Operation) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "operationId": op.name,
            "summary": op.summary,
            "description": _markdown(op.description or op.handler.__doc__),
            "tags": [op.tag],
        }
        parameters = self.path_parameters(op.path_params) + self.query_parameters(op.query)
        if parameters:
            doc["parameters"] = parameters
        if op.body is not None:
            example = self.example(op.body)
            form_example = {k: v for k, v in example.items() if v is not None}
            doc["requestBody"] = {
                "required": any(_required(f) for f in attrs.fields(op.body)),
                # One schema in each encoding DRF's parsers took; in a form a list is a
                # repeated key (OpenAPI's default "form" style with explode).
                "content": {
                    JSON: {"schema": self.schema(op.body), "example": self.example(op.body)},
                    **{
                        media: {"schema": self.form_schema(op.body), "example": form_example}
                        for media in FORM_TYPES
                    },
                },
            }
        doc["responses"] = self.responses(op)
        if not op.auth:
            doc["security"] = []
        return doc

    def path_parameters(self, names: Sequence[str]) -> list[dict[str, Any]]:
        """routes.py turns every ``{name}`` into an integer, so each is one."""
        parameters = []
        for name in names:
            note = notes.field_note(object, name)
            parameter: dict[str, Any] = {
                "name": name,
                "in": "path",
                "required": True,
                "schema": _merge({"type": "integer"}, note.keywords()),
            }
            self._describe(parameter, note, int)
            parameters.append(parameter)
        return parameters

    def query_parameters(self, cls: type | None) -> list[dict[str, Any]]:
        if cls is None:
            return []
        hints = typing.get_type_hints(cls)
        parameters = []
        for field in attrs.fields(cls):
            note = notes.field_note(cls, field.name)
            kind = _strip_none(note.as_type or hints[field.name])
            schema = _merge(self.schema(kind), note.keywords())
            has_default, default = _default(field)
            if has_default:
                schema["default"] = default
            parameter: dict[str, Any] = {
                "name": field.name,
                "in": "query",
                "required": _required(field),
                "schema": schema,
            }
            self._describe(parameter, note, kind)
            parameters.append(parameter)
        return parameters

    def _describe(self, target: dict[str, Any], note: notes.Note, kind: Any) -> None:
        if note.description:
            target["description"] = note.description
        target["example"] = self.field_example(note, kind)

    def responses(self, op: Operation) -> dict[str, Any]:
        """The declared responses, and those the adapter gives any such operation: 401
        without credentials, 403 for a cookie without its CSRF header on a write, 413 and
        415 for a body too large or not JSON (see routes.endpoint and auth), and 503 while
        the database cannot be reached (problems.EXCEPTION_HANDLERS)."""
        implied: dict[int, Any] = {}
        if op.auth and not op.admin_only:  # admin paths answer a stranger 404, never 401
            implied[401] = Detail
            if op.method.upper() not in SAFE_METHODS:
                implied[403] = Detail
        if op.body is not None:
            implied.update({413: Detail, 415: Detail})
        implied[503] = Detail
        statuses = {**implied, **op.responses}
        return {
            str(status): self.response(op, status, statuses[status]) for status in sorted(statuses)
        }

    def response(self, op: Operation, status: int, kind: Any) -> dict[str, Any]:
        description = (
            notes.RESPONSE_TEXT.get((op.name, status))
            or notes.STATUS_TEXT.get(status)
            or HTTPStatus(status).phrase
        )
        if status == 400:
            description += notes.domain_rules_text(op.name)
        response: dict[str, Any] = {"description": description}
        if kind is None:
            return response
        if kind is dict:
            schema = ref(VALIDATION_ERROR)
            if op.body is not None:  # a body that is not JSON at all: {"detail": ...}
                schema = {"anyOf": [schema, self.schema(Detail)]}
            example: Any = self.invalid_example(op)
        else:
            schema = self.schema(kind)
            example = self.example(kind)
            if kind is Detail:
                text = notes.OPERATION_DETAILS.get((op.name, status)) or notes.DETAILS.get(status)
                example = {**example, "detail": text or example["detail"]}
        response["content"] = {JSON: {"schema": schema, "example": example}}
        headers = {}
        if status == 401:
            headers["WWW-Authenticate"] = notes.HEADERS["WWW-Authenticate"]
        if status in (429, 503):
            headers["Retry-After"] = notes.HEADERS["Retry-After"]
        if _is_page(op, kind):
            headers["Link"] = notes.HEADERS["Link"]
        if headers:
            response["headers"] = headers
        return response

    def invalid_example(self, op: Operation) -> dict[str, list[str]]:
        """A realistic 400 body: from the notes, else a required body field left out, else
        a query integer that is not one."""
        if op.name in notes.INVALID_EXAMPLES:
            return notes.INVALID_EXAMPLES[op.name]
        if op.body is not None:
            missing = [f.name for f in attrs.fields(op.body) if _required(f)]
            if missing:
                return {missing[0]: [REQUIRED]}
        if op.query is not None:
            hints = typing.get_type_hints(op.query)
            numbers = [
                f.name for f in attrs.fields(op.query) if _strip_none(hints[f.name]) is QueryInt
            ]
            if numbers:
                return {numbers[0]: [notes.QUERY_INVALID]}
        return {NON_FIELD: [ValidationFailed.default_message]}

    # schemas ----------------------------------------------------------------------------

    def schema(self, kind: Any) -> Schema:
        """The JSON Schema of a type hint; attrs classes and enums become components."""
        if kind is QueryInt:
            return {"type": "integer"}
        origin, args = typing.get_origin(kind), typing.get_args(kind)
        if origin is typing.Literal:
            return {"const": args[0]} if len(args) == 1 else {"enum": list(args)}
        if origin in (typing.Union, types.UnionType):
            options = [a for a in args if a is not type(None)]
            inner = [self.schema(a) for a in options]
            schema = inner[0] if len(inner) == 1 else {"anyOf": inner}
            return _nullable(schema) if len(options) < len(args) else schema
        if origin in _SEQUENCES or kind in _SEQUENCES:
            items = [a for a in args if a is not Ellipsis]
            return {"type": "array", "items": self.schema(items[0]) if items else {}}
        if kind is dict or origin is dict:
            return {"type": "object"}
        if attrs.has(kind):
            return self.component(kind)
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            return self.enum(kind)
        for python, schema, _ in _PRIMITIVES:
            if kind is python:
                return dict(schema)
        raise TypeError(f"no JSON Schema for {kind!r}")

    def form_schema(self, cls: type) -> Schema:
        """A body class as an HTML form carries it: its JSON schema without ``null``,
        which a form cannot spell (a field left out is what a form sends instead)."""
        self.component(cls)
        schema: Schema = _without_null(self.spec.components.schemas[component_name(cls)])
        return schema

    def component(self, cls: type) -> Schema:
        name = component_name(cls)
        known = self._classes.get(name)
        if known is None:
            self._classes[name] = cls  # before the fields: a class may refer to itself
            hints = typing.get_type_hints(cls)
            fields = attrs.fields(cls)
            schema: Schema = {
                "type": "object",
                "properties": {f.name: self.field(cls, f, hints[f.name]) for f in fields},
            }
            required = [f.name for f in fields if _required(f)]
            if required:
                schema["required"] = required
            if cls in self._bodies:  # say what the parser does with fields it lacks
                schema["additionalProperties"] = ignores_unknown_fields()
            if _own_doc(cls):
                schema["description"] = _own_doc(cls)
            self.spec.components.schema(name, schema)
        elif known is not cls:
            raise ValueError(f"{known!r} and {cls!r} would both be documented as {name!r}")
        return ref(name)

    def field(self, owner: type, field: attrs.Attribute[Any], hint: Any) -> Schema:
        """A field's schema: from its type hint (null left out where the parser refuses
        it), with the notes' keywords."""
        if _fixed(field):
            return {"const": converter.unstructure(field.default)}
        note = notes.field_note(owner, field.name)
        kind = note.as_type or hint
        if refuses_null(owner, field.name):
            kind = _strip_none(kind)
        schema = _merge(self.schema(kind), note.keywords())
        if note.description:
            schema["description"] = note.description
        has_default, default = _default(field)
        if has_default:
            schema["default"] = default
        return schema

    def enum(self, kind: type[enum.Enum]) -> Schema:
        name = kind.__name__
        if name not in self._classes:
            self._classes[name] = kind
            values = [member.value for member in kind]
            self.spec.components.schema(name, {"type": "string", "enum": values})
        return ref(name)

    # examples ---------------------------------------------------------------------------

    def example(self, kind: Any) -> Any:
        """A JSON value of type ``kind``: the notes' examples where they have one, a
        plain value of the right type elsewhere."""
        if kind is QueryInt:
            return 1
        origin, args = typing.get_origin(kind), typing.get_args(kind)
        if origin is typing.Literal:
            return args[0]
        if origin in (typing.Union, types.UnionType):
            return self.example(next(a for a in args if a is not type(None)))
        if origin in _SEQUENCES or kind in _SEQUENCES:
            items = [a for a in args if a is not Ellipsis]
            return [self.example(items[0])] if items else []
        if kind is dict or origin is dict:
            return {}
        if attrs.has(kind):
            return self.object_example(kind)
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            return next(iter(kind)).value
        for python, _, value in _PRIMITIVES:
            if kind is python:
                return converter.unstructure(value)
        raise TypeError(f"no example for {kind!r}")

    def object_example(self, cls: type) -> dict[str, Any]:
        """Every required field, and the optional ones the notes give an example for."""
        hints = typing.get_type_hints(cls)
        example = {}
        for field in attrs.fields(cls):
            if _fixed(field):
                example[field.name] = converter.unstructure(field.default)
                continue
            note = notes.field_note(cls, field.name)
            if note.example is notes.NO_EXAMPLE and not _required(field):
                continue
            example[field.name] = self.field_example(note, note.as_type or hints[field.name])
        return example

    def field_example(self, note: notes.Note, kind: Any) -> Any:
        generated = self.example(kind)
        if note.example is notes.NO_EXAMPLE:
            return generated
        value = converter.unstructure(note.example)
        if (
            isinstance(value, list)
            and all(isinstance(item, dict) for item in value)
            and generated
            and isinstance(generated[0], dict)
        ):
            # a list of objects given as changes to the generated item: new fields of the
            # item's class still appear in every element
            return [{**generated[0], **item} for item in value]
        return value

    # the WebSocket ----------------------------------------------------------------------

    def websocket(self, socket: Socket) -> dict[str, Any]:
        """The ``x-websocket`` extension: OpenAPI has no words for a WebSocket. Its frames
        are components generated from their wire classes, its codes from their tables."""
        client = self.client_frame(socket.client_frame)
        servers = [self.server_frame(cls) for cls in socket.server_frames]
        error = self.spec.components.schemas[component_name(socket.error_frame)]
        codes = [row.code for row in socket.error_codes]
        error["properties"]["code"] = {"enum": codes}
        chat_id, *_ = self.path_parameters(["chat_id"])
        token = {
            "name": "token",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "An API token, for clients that cannot set headers (browsers).",
            "example": notes.TOKEN,
        }
        resume = {p["name"]: p for p in self.query_parameters(_Resume)}
        since = {**resume["since"], "description": notes.WS_SINCE, "example": 42}
        after = {**resume["after"], "description": notes.WS_AFTER}
        events = {fixed_type(cls): self.server_frame(cls) for cls in socket.event_frames}
        return {
            "path": socket.path,
            "summary": socket.summary,
            "parameters": [chat_id, token, since, after],
            "credentials": notes.WS_CREDENTIALS,
            "resume": notes.WS_RESUME,
            "clientFrame": client,
            "eventFrames": events,
            "serverFrames": [*events.values(), *servers],
            "errorCodes": {row.code: row.meaning for row in socket.error_codes},
            "closeCodes": {str(row.code): row.meaning for row in socket.close_codes},
            "maxFrameBytes": socket.max_frame_bytes,
        }

    def client_frame(self, cls: type) -> Schema:
        """A client frame: the request body class it extends (the same fields as over
        REST), and the fields it adds beside."""
        base = next((b for b in cls.__mro__[1:] if b in self._bodies), None)
        if base is None:
            return self.server_frame(cls)  # nothing shared with REST: its own component
        inherited = {f.name for f in attrs.fields(base)}
        hints = typing.get_type_hints(cls)
        own = [f for f in attrs.fields(cls) if f.name not in inherited]
        schema: Schema = {
            "description": _own_doc(cls),
            "allOf": [
                self.schema(base),
                {
                    "type": "object",
                    "properties": {f.name: self.field(cls, f, hints[f.name]) for f in own},
                },
            ],
            "examples": [self.object_example(cls)],
        }
        name = component_name(cls)
        self._classes[name] = cls
        self.spec.components.schema(name, schema)
        return ref(name)

    def server_frame(self, cls: type) -> Schema:
        """A frame as its class's component, with an example."""
        reference = self.component(cls)
        schema = self.spec.components.schemas[component_name(cls)]
        schema["examples"] = [self.object_example(cls)]
        return reference


@attrs.frozen
class _Resume:
    """The WebSocket's query, documented as the REST ones are (ws/endpoint.py reads it)."""

    since: QueryInt | None = None
    after: QueryInt | None = None


def _shape(cls: type) -> str:
    """A frame class as the one-line JSON outline the pages show: its constant ``type``,
    then its fields by name."""
    fields = [f'"{f.name}"' for f in attrs.fields(cls) if f.name != "type"]
    return "{" + ", ".join([f'"type": "{fixed_type(cls)}"', *fields]) + "}"


def _websocket_markdown(ws: Mapping[str, Any], socket: Socket) -> str:
    """The ``x-websocket`` extension as a section of the description, for the pages."""
    credentials = "\n".join(f"- {line}" for line in ws["credentials"])
    codes = "\n".join(f"| `{code}` | {text} |" for code, text in ws["errorCodes"].items())
    closes = "\n".join(f"| {code} | {text} |" for code, text in ws["closeCodes"].items())
    events = "\n".join(f"- `{_shape(cls)}`" for cls in socket.event_frames)
    return f"""\
## WebSocket

`{ws["path"]}`: {ws["summary"].lower()}, described in machine-readable form by this \
document's `x-websocket` extension.

**Credentials**, any one of:
{credentials}

Refusals are close codes a browser can read (below); nothing of the chat is sent before \
the check passes.

**Resume**: {ws["resume"]}

**Client frames**: `{{"content": "...", "client_id": "..."}}` (`client_id` optional, as \
for `POST /api/chats/{{chat_id}}/send_message/`). The message is stored, then every socket \
open on the chat, the sender's included, receives it. A repeated `client_id` stores \
nothing and is answered, to that socket only, with the original message. Frames over \
{ws["maxFrameBytes"] // 1024} KiB close the socket.

**Event frames**: every change of the chat, in the order of its `seq` (1, 2, 3, ... per \
chat), each once, whichever process stored it or delivered it. A message sent over REST \
or WebSocket alike is a `message` event.

{events}

A participant removed (`member_removed` naming them) or whose chat is deleted \
(`chat_deleted`) gets the frame, then the socket is closed with 4404.

**Other server frames**: `{{"type": "message", "message": Message}}` with no `seq` for a \
`?after=` replay and for the answer to a repeated `client_id` (not events), and \
`{{"type": "error", "message": "...", "code": "...", "retry_after_ms": 350}}` for a frame \
the server could not take (`retry_after_ms` only with `rate_limited`); the socket stays \
open.

| error code | meaning |
|---|---|
{codes}

| close code | meaning |
|---|---|
{closes}
"""
