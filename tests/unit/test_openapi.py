"""The OpenAPI document matches the code: it is valid OpenAPI, documents every route the
app serves and nothing it does not, its examples fit its schemas, and it is generated
from the wire classes (a field added there shows up with no other edit)."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import attrs
import httpx
import jsonschema
import pytest
import referencing
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from referencing.jsonschema import DRAFT202012
from schemathesis import GenerationMode
from schemathesis.python import asgi
from starlette.applications import Starlette
from starlette.routing import Match, Route, WebSocketRoute

from adapters.hashing import FAST_INSECURE, Argon2Hasher
from adapters.http import openapi_notes as notes
from adapters.http.admin import CONSOLE_PATH
from adapters.http.api import OPERATIONS
from adapters.http.docs import REDOC_LOGO, STATIC_PATH, doc_routes
from adapters.http.openapi import build_document, component_name
from adapters.http.problems import EXCEPTION_HANDLERS
from adapters.http.routes import Config as RouteConfig
from adapters.http.routes import starlette_routes
from adapters.http.wire import (
    MessageOut,
    QueryInt,
    SendIn,
    WindowQuery,
    structure,
    structure_body,
)
from adapters.http.ws.codes import ERROR_CODES, CloseCode, ErrorCode
from adapters.http.ws.endpoint import CHAT_SOCKET
from adapters.http.ws.frames import EVENT_FRAMES, WsClientFrame, WsErrorFrame, fixed_type
from chatcore import ChatDraft, Registration, Services, ValidationFailed, rules
from chatcore.accounts import AccountChange
from chatcore.admin import AccountEdit
from chatcore.deps import Policy
from chatcore.events import EventKind
from contract_checks import CHECKS
from entrypoints.app import create_app
from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings

DOC_URI = "urn:chatcore:openapi"
METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document(OPERATIONS)


class Client:
    """GET requests to an app in this process (ASGI, no socket); no lifespan needed, the
    documentation routes use no resource."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def get(self, path: str) -> httpx.Response:
        async def fetch() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                response = await c.get(path)
                await response.aread()
                return response

        return asyncio.run(fetch())


@pytest.fixture(scope="module")
def served() -> tuple[Client, dict[str, Any]]:
    """The app's own document, as GET /api/schema/ serves it, with every endpoint on."""
    client = Client(create_app(Settings(storage="memory", metrics=True)))
    response = client.get("/api/schema/")
    assert response.status_code == 200, response.text
    return client, response.json()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def examples(document: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(JSON pointer of a schema, an example that must fit it), all over the document."""
    for path, method, operation in operations(document):
        base = ("paths", path, method)
        for i, parameter in enumerate(operation.get("parameters", [])):
            yield pointer(*base, "parameters", str(i), "schema"), parameter["example"]
        body = operation.get("requestBody", {}).get("content", {})
        for media, content in body.items():
            yield pointer(*base, "requestBody", "content", media, "schema"), content["example"]
        for status, response in operation["responses"].items():
            for media, content in response.get("content", {}).items():
                at = pointer(*base, "responses", status, "content", media, "schema")
                yield at, content["example"]
            for name, header in response.get("headers", {}).items():
                yield (
                    pointer(*base, "responses", status, "headers", name, "schema"),
                    header["example"],
                )
    for name, schema in document["components"]["schemas"].items():
        for example in schema.get("examples", []):
            yield pointer("components", "schemas", name), example
    for i, parameter in enumerate(document["x-websocket"]["parameters"]):
        yield pointer("x-websocket", "parameters", str(i), "schema"), parameter["example"]


def validator_for(document: dict[str, Any], at: str) -> jsonschema.Draft202012Validator:
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(
        DOC_URI, DRAFT202012.create_resource(document)
    )
    return jsonschema.Draft202012Validator(
        {"$ref": f"{DOC_URI}#/{at}"},
        registry=registry,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


# --- the document itself ------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_the_app_serves_the_generated_document_as_json_and_yaml(
    served: tuple[Client, dict[str, Any]],
) -> None:
    client, document = served
    validate(document)
    assert document["info"]["title"] == "chatcore"
    assert document["info"]["version"]
    for path in ("/api/schema/?format=yaml", "/api/schema?format=yaml"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/yaml")
        assert yaml.safe_load(response.text) == document
    assert client.get("/api/schema").json() == document
    bad = client.get("/api/schema/?format=xml")
    assert bad.status_code == 400
    assert list(bad.json()) == ["format"]


def test_the_document_is_built_once_per_app() -> None:
    (schema_route, *_) = doc_routes(OPERATIONS)
    assert isinstance(schema_route, Route)
    site = schema_route.endpoint.__self__  # type: ignore[attr-defined]
    assert site.document is site.document


def test_every_operation_has_a_summary_description_tag_and_id(
    served: tuple[Client, dict[str, Any]],
) -> None:
    _, document = served
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))
    for path, method, operation in operations(document):
        assert operation["summary"], (path, method)
        assert operation["description"], (path, method)
        assert operation["tags"], (path, method)
    declared = {tag["name"] for tag in document["tags"]}
    used = {tag for _, _, op in operations(document) for tag in op["tags"]}
    assert used == declared
    assert all(tag["description"] for tag in document["tags"])


def test_handler_docstrings_are_the_descriptions(document: dict[str, Any]) -> None:
    for op in OPERATIONS:
        described = document["paths"][op.path][op.method.lower()]["description"]
        source = op.description or inspect.getdoc(op.handler) or ""
        assert described == source.replace("``", "`"), op.name


# --- routes and document agree ------------------------------------------------------------


def _documented_path(path: str, documented: dict[str, Any]) -> str | None:
    """A route's path as documented: convertors dropped, with its trailing slash."""
    plain = re.sub(r"{(\w+)(:\w+)?}", r"{\1}", path)
    for candidate in (plain, plain + "/"):
        if candidate in documented:
            return candidate
    return None


# The operations endpoints come and go with their settings, and so does their documentation.
APP_SETTINGS = [
    pytest.param(Settings(storage="memory"), id="defaults"),
    pytest.param(Settings(storage="memory", metrics=True), id="every-endpoint-on"),
    pytest.param(Settings(storage="memory", healthz=False, readyz=False), id="operations-off"),
]


@pytest.mark.parametrize("config", APP_SETTINGS)
def test_every_route_the_app_serves_is_documented(config: Settings) -> None:
    app = create_app(config)
    served = Client(app).get("/api/schema/").json()
    websockets = consoles = 0
    for route in app.routes:
        if isinstance(route, WebSocketRoute):
            websockets += 1
            plain = re.sub(r"{(\w+)(:\w+)?}", r"{\1}", route.path)
            assert plain.rstrip("/") == served["x-websocket"]["path"].rstrip("/")
            continue
        assert isinstance(route, Route), route
        if route.path == CONSOLE_PATH or route.path.startswith(CONSOLE_PATH + "/"):
            consoles += 1  # the admin console's pages: for a person (README), not the API
            continue
        path = _documented_path(route.path, served["paths"])
        assert path is not None, f"{route.path} is served but not documented"
        methods = {m.lower() for m in route.methods or ()} - {"head"}
        assert methods <= set(served["paths"][path]), (route.path, methods)
    assert websockets == 2  # with and without the trailing slash
    assert consoles > 0


def _concrete(path: str, operation: dict[str, Any]) -> str:
    values = {
        p["name"]: str(p["example"]) for p in operation.get("parameters", []) if p["in"] == "path"
    }
    return re.sub(r"{(\w+)}", lambda m: values[m.group(1)], path)


@pytest.mark.parametrize("config", APP_SETTINGS)
def test_every_documented_operation_is_served(config: Settings) -> None:
    app = create_app(config)
    document = Client(app).get("/api/schema/").json()
    for path, method, operation in operations(document):
        url = _concrete(path, operation)
        variants = [url, url.rstrip("/")] if url.endswith("/") and url != "/" else [url]
        for variant in variants:
            scope = {"type": "http", "path": variant, "method": method.upper(), "root_path": ""}
            matches = [route.matches(scope)[0] for route in app.routes]
            assert Match.FULL in matches, f"{method.upper()} {variant} is documented, not served"
    ws_path = document["x-websocket"]["path"].replace("{chat_id}", "7")
    for variant in (ws_path, ws_path.rstrip("/")):
        scope = {"type": "websocket", "path": variant, "root_path": ""}
        assert any(route.matches(scope)[0] == Match.FULL for route in app.routes), variant


# --- examples -----------------------------------------------------------------------------


def test_every_operation_has_request_and_response_examples(
    served: tuple[Client, dict[str, Any]],
) -> None:
    _, document = served
    for path, method, operation in operations(document):
        for content in operation.get("requestBody", {}).get("content", {}).values():
            assert "example" in content, (path, method)
        for status, response in operation["responses"].items():
            for media, content in response.get("content", {}).items():
                assert "example" in content, (path, method, status, media)
        for parameter in operation.get("parameters", []):
            assert "example" in parameter, (path, method, parameter["name"])


def test_every_example_validates_against_its_own_schema(
    served: tuple[Client, dict[str, Any]],
) -> None:
    _, document = served
    checked = 0
    for at, example in examples(document):
        errors = list(validator_for(document, at).iter_errors(example))
        assert not errors, (at, example, [e.message for e in errors])
        checked += 1
    assert checked > 100


def test_an_example_that_breaks_its_schema_is_caught(document: dict[str, Any]) -> None:
    at = pointer("components", "schemas", "Message")
    assert not validator_for(document, at).is_valid({"id": 1})
    assert not validator_for(document, at).is_valid(
        {**_message_example(document), "content": "x" * (rules.CONTENT_MAX + 1)}
    )


def _message_example(document: dict[str, Any]) -> dict[str, Any]:
    op = document["paths"]["/api/messages/{message_id}/"]["get"]
    example = op["responses"]["200"]["content"]["application/json"]["example"]
    assert isinstance(example, dict)
    return example


# --- what the document says -----------------------------------------------------------------


def test_limits_from_the_rules_are_in_the_schemas(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    username = schemas["Registration"]["properties"]["username"]
    assert username["maxLength"] == rules.USERNAME_MAX == 150
    assert re.fullmatch(username["pattern"].strip("^$"), "a.b@c+d-e_f")
    assert not re.search(username["pattern"], "no spaces")
    assert schemas["SendIn"]["properties"]["content"]["maxLength"] == rules.CONTENT_MAX
    assert schemas["SendIn"]["properties"]["client_id"]["maxLength"] == rules.CLIENT_ID_MAX == 64
    assert schemas["ChatDraft"]["properties"]["name"]["maxLength"] == rules.CHAT_NAME_MAX
    assert schemas["ChatDraft"]["properties"]["participant_ids"]["items"]["minimum"] == 1
    assert schemas["Message"]["properties"]["id"]["minimum"] == 1
    assert schemas["Registration"]["properties"]["password"]["minLength"] == rules.PASSWORD_MIN
    messages = document["paths"]["/api/chats/{chat_id}/messages/"]["get"]
    params = {p["name"]: p for p in messages["parameters"]}
    assert params["chat_id"]["schema"]["minimum"] == 1
    assert params["limit"]["schema"]["minimum"] == 1
    # up to PAGE_MAX honoured, above it clamped, above a 64-bit integer refused
    assert params["limit"]["schema"]["maximum"] == rules.MAX_ID
    assert params["before"]["schema"]["maximum"] == rules.MAX_ID
    assert params["chat_id"]["schema"]["maximum"] == rules.MAX_ID
    assert schemas["ChatDraft"]["properties"]["participant_ids"]["items"]["maximum"] == rules.MAX_ID
    assert str(rules.PAGE_MAX) in params["limit"]["description"]
    assert "treated as" in params["limit"]["description"]


def _body_classes() -> list[type]:
    return [op.body for op in OPERATIONS if op.body is not None]


def test_a_field_is_documented_nullable_exactly_when_the_parser_takes_null(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    swept = 0
    for cls in _body_classes():
        properties = schemas[component_name(cls)]["properties"]
        for field in attrs.fields(cls):
            schema = properties[field.name]
            documented = schema.get("type") == [schema.get("type", [None])[0], "null"] or {
                "type": "null"
            } in schema.get("anyOf", [])
            try:
                structure({field.name: None}, cls)
                taken = True
            except ValidationFailed as failed:
                taken = field.name not in failed.fields
            assert documented == taken, (cls.__name__, field.name, schema)
            swept += 1
    assert swept >= 12


def test_bodies_say_unknown_fields_are_refused(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for cls in _body_classes():
        assert schemas[component_name(cls)]["additionalProperties"] is False, cls
        required = {f.name: "x" for f in attrs.fields(cls) if f.default is attrs.NOTHING}
        with pytest.raises(ValidationFailed) as refused:
            structure_body({**required, "not_a_field": 1}, cls)
        assert refused.value.fields == {"not_a_field": ["Unknown field."]}, cls
    assert "additionalProperties" not in schemas["Message"]  # an answer, not a body


def test_patterns_say_what_the_server_tests_for_every_character() -> None:
    """Each pattern's character class is read off the server's own predicate; swept here
    over every Unicode character, in the ECMA reading JSON Schema tools apply."""
    blank = re.compile(notes.NOT_BLANK, re.ASCII)
    username = re.compile(notes.username_pattern(), re.ASCII)
    digits = re.compile(notes.not_all_digits(), re.ASCII)
    for code in range(0x110000):
        char = chr(code)
        assert (blank.search(char) is None) == (char.strip() == ""), hex(code)
        assert (username.fullmatch(char) is not None) == (
            rules.USERNAME_PATTERN.fullmatch(char) is not None
        ), hex(code)
        assert (digits.search(char) is None) == char.isdigit(), hex(code)


@pytest.mark.parametrize(
    ("email", "accepted"),
    [
        ("", True),
        ("  \u3000", True),
        (" alice@example.com\n", True),
        ("alice@example.com", True),
        ("a.b+c@mail.example.co", True),
        ("alice", False),
        ("alice@example", False),
        ("alice@-example.com", False),
        ("alice@example.c0m", False),
        ("al ice@example.com", False),
        ("alice@example.com\ufeff", False),  # not whitespace to Python, so not trimmed
    ],
)
def test_the_email_pattern_is_the_servers(email: str, accepted: bool) -> None:
    errors = rules.Errors()
    rules.check_email(email, errors)
    assert (not errors.fields) is accepted
    assert (re.search(notes.EMAIL_PATTERN, email, re.ASCII) is not None) is accepted


async def test_every_domain_rule_is_a_message_the_server_sends(hasher: Argon2Hasher) -> None:
    """The domain rules the document and its tests allow for are worded as the use cases
    word them: one that no longer matches would stop excusing anything, silently."""
    app = bootstrap(hasher=hasher, policy=Policy(max_participants=2))
    admin = (await app.accounts.register(_form("rule_admin"), is_admin=True)).user
    others = [(await app.accounts.register(_form(f"rule_{i}"))).user for i in range(2)]
    sent: list[tuple[str, str, str]] = []

    async def record(operation: str, call: Any) -> None:
        try:
            await call
        except ValidationFailed as failed:
            for field, messages in failed.fields.items():
                sent.extend((operation, field, message) for message in messages)

    await record("register", app.accounts.register(_form("rule_admin")))
    await record("register", app.accounts.register(Registration("x", "password", "other")))
    await record("register", app.accounts.register(Registration("rule_user", "rule_user1", "")))
    await record("admin_delete_user", app.admin.delete_user(admin, admin.id))
    await record("admin_edit_user", app.admin.edit_user(admin, admin.id, AccountEdit(None, False)))
    await record("create_chat", app.chats.create_chat(admin, ChatDraft("c", [7, 7], ["nobody"])))
    many = ChatDraft("c", [1, 2, 3], ["a", "b", "c"])
    await record("create_chat", app.chats.create_chat(admin, many))
    crowd = ChatDraft("c", [user.id for user in others])  # two, and the creator
    await record("create_chat", app.chats.create_chat(admin, crowd))
    room = await app.chats.create_chat(admin, ChatDraft("room"))
    await record("send_message", app.chats.send_message(admin, room.id, "\ud800", None))
    await record("promote", app.membership.promote(admin, room.id, others[0].id))
    await record("demote", app.membership.demote(admin, room.id, admin.id))
    for change in (
        AccountChange(password=rules_password()),
        AccountChange(current_password=rules_password()),
        AccountChange(password="x" + rules_password(), current_password="not it"),
    ):
        await record("update_me", app.accounts.update_me(admin, "token", change))
    explained = {notes.domain_rule(*message) for message in sent}
    # the lone-surrogate rule is one message for several fields: met once is enough
    unmet = [
        rule
        for rule in notes.DOMAIN_RULES
        if rule not in explained and rule.message != rules.INVALID_TEXT
    ]
    assert not unmet, sent
    assert any(rule and rule.message == rules.INVALID_TEXT for rule in explained)


def _form(name: str) -> Registration:
    return Registration(name, rules_password(), rules_password())


def test_types_map_to_json_schema(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    message = schemas["Message"]["properties"]
    assert message["timestamp"] == {**message["timestamp"], "type": "string", "format": "date-time"}
    assert message["client_id"]["type"] == ["string", "null"]
    assert message["sender"]["$ref"] == "#/components/schemas/User"
    chat = schemas["Chat"]["properties"]
    assert chat["participants"]["type"] == "array"
    assert chat["participants"]["items"] == {"$ref": "#/components/schemas/User"}
    assert chat["last_message"]["anyOf"] == [
        {"$ref": "#/components/schemas/Message"},
        {"type": "null"},
    ]
    assert schemas["UserType"] == {"type": "string", "enum": ["owner", "student", "staff"]}
    assert schemas["AdminUser"]["properties"]["is_admin"]["type"] == "boolean"
    assert set(schemas["Session"]["required"]) == set(schemas["Me"]["required"]) | {"token"}
    assert schemas["Registration"]["required"] == ["username", "password", "password_confirm"]
    assert "required" not in schemas["AccountEdit"]
    validation = schemas["ValidationError"]["additionalProperties"]
    assert validation == {"type": "array", "items": {"type": "string"}, "minItems": 1}


def test_the_events_list_documents_the_socket_frames_one_per_kind(
    document: dict[str, Any],
) -> None:
    """One shape of an event: the REST catch-up lists the WebSocket's own frame classes,
    each with its kind as a constant ``type``."""
    schemas = document["components"]["schemas"]
    events = schemas["Events"]["properties"]["events"]["items"]["anyOf"]
    names = [item["$ref"].rsplit("/", 1)[1] for item in events]
    assert sorted(names) == sorted(component_name(cls) for cls in EVENT_FRAMES.values())
    for cls in EVENT_FRAMES.values():
        frame = schemas[component_name(cls)]
        assert frame["properties"]["type"] == {"const": fixed_type(cls)}
        assert {"type", "chat_id", "seq"} <= set(frame["required"])
    assert set(schemas["Chat"]["required"]) >= {"admins", "seq"}
    assert schemas["Message"]["properties"]["edited_at"]["type"] == ["string", "null"]


def test_security_schemes_and_public_operations(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["Token"] == {**schemes["Token"], "type": "apiKey", "in": "header"}
    assert schemes["Token"]["name"] == "Authorization"
    assert "Token <key>" in schemes["Token"]["description"]
    assert schemes["Bearer"] == {**schemes["Bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["cookieAuth"] == {**schemes["cookieAuth"], "type": "apiKey", "in": "cookie"}
    assert schemes["cookieAuth"]["name"] == "sessionid"
    assert "X-CSRFToken" in schemes["cookieAuth"]["description"]
    assert document["security"] == [{"Token": []}, {"Bearer": []}, {"cookieAuth": []}]
    for op in OPERATIONS:
        documented = document["paths"][op.path][op.method.lower()]
        if op.auth:
            assert "security" not in documented, op.name  # the document's default applies
            # An admin path answers anyone else 404, as an unknown path: never 401.
            assert ("401" in documented["responses"]) is not op.admin_only, op.name
        else:
            assert documented["security"] == [], op.name


def test_error_responses_and_their_headers(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        responses = operation["responses"]
        if "401" in responses:
            assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
        if "429" in responses:
            assert responses["429"]["headers"]["Retry-After"]["required"] is True
        # Every operation reads storage: each may meet a database that is away.
        assert responses["503"]["headers"]["Retry-After"]["required"] is True, (path, method)
        if "400" in responses and path.startswith("/api/") and "requestBody" not in operation:
            schema = responses["400"]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ValidationError"}, (path, method)
    login = document["paths"]["/api/login/"]["post"]["responses"]
    assert {"200", "400", "401", "429"} <= set(login)
    send = document["paths"]["/api/chats/{chat_id}/send_message/"]["post"]["responses"]
    assert {"200", "201", "400", "401", "403", "404", "413", "415", "503"} == set(send)
    delete = document["paths"]["/api/admin/chats/{chat_id}/"]["delete"]["responses"]
    assert "content" not in delete["204"]


def test_paged_lists_document_the_link_header(document: dict[str, Any]) -> None:
    paged = {
        (op.path, op.method.lower())
        for op in OPERATIONS
        if op.query is not None and {"after", "cursor"} & attrs.fields_dict(op.query).keys()
    }
    assert len(paged) == 7
    for path, method, operation in operations(document):
        headers = operation["responses"].get("200", {}).get("headers", {})
        assert ("Link" in headers) == ((path, method) in paged), (path, method)


def test_the_websocket_is_documented_as_an_extension(document: dict[str, Any]) -> None:
    ws = document["x-websocket"]
    assert ws["path"] == "/ws/chat/{chat_id}/"
    assert {"4401", "4404", "1009", "1013", "1001", "1008"} == set(ws["closeCodes"])
    assert set(ws["errorCodes"]) == {
        "invalid_json",
        "invalid_frame",
        "invalid_content",
        "unknown_type",
        "rate_limited",
        "unavailable",
    }
    assert {p["name"] for p in ws["parameters"]} == {"chat_id", "token", "since", "after"}
    assert ws["maxFrameBytes"] == 64 * 1024
    schemas = document["components"]["schemas"]
    message = schemas["WsMessageFrame"]["properties"]["message"]
    assert message == {"$ref": "#/components/schemas/Message"}
    assert schemas["WsClientFrame"]["allOf"][0] == {"$ref": "#/components/schemas/SendIn"}
    assert "retry_after_ms" in schemas["WsErrorFrame"]["properties"]
    description = document["info"]["description"]
    assert "## WebSocket" in description
    for code in ws["closeCodes"]:
        assert f"| {code} |" in description


def test_every_event_kind_is_a_documented_frame_of_the_socket(document: dict[str, Any]) -> None:
    ws = document["x-websocket"]
    schemas = document["components"]["schemas"]
    assert set(ws["eventFrames"]) == {kind.value for kind in EventKind}
    for kind, reference in ws["eventFrames"].items():
        assert reference in ws["serverFrames"]
        schema = schemas[reference["$ref"].rsplit("/", 1)[-1]]
        assert schema["properties"]["type"]["const"] == kind
        assert {"type", "chat_id", "seq"} <= set(schema["required"])
        assert schema["description"]
        assert f'`{{"type": "{kind}", "chat_id", "seq"' in document["info"]["description"]
    message = schemas["WsMessagePostedFrame"]["properties"]["message"]
    assert message["$ref"] == "#/components/schemas/Message"
    chat = schemas["WsChatUpdatedFrame"]["properties"]["chat"]
    assert chat["$ref"] == "#/components/schemas/Chat"


# --- one source of truth --------------------------------------------------------------------


@attrs.frozen
class EditedMessageOut(MessageOut):
    """A message as a future version might render it."""

    edited_at: datetime | None
    reactions: list[str]


@attrs.frozen
class PrioritySendIn(SendIn):
    priority: int = 0


@attrs.frozen
class SearchWindowQuery(WindowQuery):
    contains: str = ""
    around: QueryInt | None = None


def test_a_field_added_to_a_wire_class_changes_the_document_with_no_other_edit(
    document: dict[str, Any],
) -> None:
    (send,) = [op for op in OPERATIONS if op.name == "send_message"]
    (history,) = [op for op in OPERATIONS if op.name == "chat_messages"]
    changed = [op for op in OPERATIONS if op.name not in ("send_message", "chat_messages")] + [
        attrs.evolve(
            send, body=PrioritySendIn, responses={**send.responses, 201: EditedMessageOut}
        ),
        attrs.evolve(history, query=SearchWindowQuery),
    ]
    evolved = build_document(changed)
    validate(evolved)

    schemas = evolved["components"]["schemas"]
    edited = schemas["EditedMessage"]
    assert edited["description"] == "A message as a future version might render it."
    assert edited["properties"]["edited_at"]["type"] == ["string", "null"]
    assert edited["properties"]["edited_at"]["format"] == "date-time"
    assert edited["properties"]["reactions"] == {"type": "array", "items": {"type": "string"}}
    assert set(edited["required"]) == set(schemas["Message"]["required"]) | {
        "edited_at",
        "reactions",
    }
    assert schemas["PrioritySendIn"]["properties"]["priority"] == {"type": "integer", "default": 0}
    assert "priority" not in schemas["PrioritySendIn"].get("required", [])

    op = evolved["paths"]["/api/chats/{chat_id}/send_message/"]["post"]
    created = op["responses"]["201"]["content"]["application/json"]
    assert created["schema"] == {"$ref": "#/components/schemas/EditedMessage"}
    assert {"edited_at", "reactions"} <= set(created["example"])
    params = {
        p["name"]: p
        for p in evolved["paths"]["/api/chats/{chat_id}/messages/"]["get"]["parameters"]
    }
    assert params["contains"]["schema"] == {"type": "string", "default": ""}
    assert params["around"]["schema"] == {"type": "integer"}
    assert params["around"]["required"] is False

    for at, example in examples(evolved):
        assert validator_for(evolved, at).is_valid(example), (at, example)
    # and nothing else moved
    assert evolved["paths"]["/api/me/"] == document["paths"]["/api/me/"]


@attrs.frozen
class TaggedClientFrame(WsClientFrame):
    """A client frame as a future version might take it."""

    reply_to: int | None = None


@attrs.frozen
class HintedErrorFrame(WsErrorFrame):
    hint: str = ""


def test_a_frame_field_or_a_code_added_changes_the_websocket_document_with_no_other_edit(
    document: dict[str, Any],
) -> None:
    teapot = ErrorCode("teapot", "The server is a teapot.")
    socket = attrs.evolve(
        CHAT_SOCKET,
        client_frame=TaggedClientFrame,
        server_frames=(CHAT_SOCKET.server_frames[0], HintedErrorFrame),
        error_frame=HintedErrorFrame,
        error_codes=(*ERROR_CODES, teapot),
        close_codes=(*CHAT_SOCKET.close_codes, CloseCode(4418, "Short and stout.")),
    )
    evolved = build_document(OPERATIONS, socket=socket)
    validate(evolved)

    ws = evolved["x-websocket"]
    assert ws["errorCodes"]["teapot"] == "The server is a teapot."
    assert ws["closeCodes"]["4418"] == "Short and stout."
    assert ws["clientFrame"] == {"$ref": "#/components/schemas/TaggedClientFrame"}
    schemas = evolved["components"]["schemas"]
    client = schemas["TaggedClientFrame"]
    assert client["description"] == "A client frame as a future version might take it."
    assert client["allOf"][0] == {"$ref": "#/components/schemas/SendIn"}
    own = client["allOf"][1]["properties"]
    assert own["reply_to"] == {"type": ["integer", "null"]}
    original = document["components"]["schemas"]["WsClientFrame"]
    assert own["type"] == original["allOf"][1]["properties"]["type"]
    error = schemas["HintedErrorFrame"]
    assert error["properties"]["hint"] == {"type": "string", "default": ""}
    assert error["properties"]["code"]["enum"][-1] == "teapot"
    assert error["properties"]["type"] == {"const": "error"}
    description = evolved["info"]["description"]
    assert "| `teapot` | The server is a teapot. |" in description
    assert "| 4418 | Short and stout. |" in description
    for at, example in examples(evolved):
        assert validator_for(evolved, at).is_valid(example), (at, example)
    # and nothing else moved
    assert evolved["paths"] == document["paths"]
    assert ws["parameters"] == document["x-websocket"]["parameters"]


def test_a_type_the_generator_does_not_know_is_an_error_not_a_guess() -> None:
    @attrs.frozen
    class Odd:
        value: complex

    (me,) = [op for op in OPERATIONS if op.name == "me"]
    with pytest.raises(TypeError, match="no JSON Schema"):
        build_document([attrs.evolve(me, responses={200: Odd})])


def test_doc_only_metadata_stays_in_the_http_adapter() -> None:
    assert notes.__name__.startswith("adapters.http.")
    for owner, _ in notes.FIELDS:
        assert owner is object or attrs.has(owner), owner


# --- the pages ------------------------------------------------------------------------------


def test_the_pages_load_nothing_from_elsewhere(served: tuple[Client, dict[str, Any]]) -> None:
    client, _ = served
    for page in ("/api/docs/", "/api/docs", "/api/redoc/", "/api/redoc"):
        response = client.get(page)
        assert response.status_code == 200, page
        assert response.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert not re.search(r"(?:https?:)?//", response.text), page
        for asset in re.findall(r'(?:src|href)="([^"]+)"', response.text):
            assert asset.startswith(STATIC_PATH), asset
            fetched = client.get(asset)
            assert fetched.status_code == 200, asset
            assert fetched.content, asset
    redoc = client.get(STATIC_PATH + "redoc.standalone.js")
    assert REDOC_LOGO not in redoc.content
    assert client.get(STATIC_PATH + "nothing.js").status_code == 404
    assert client.get(STATIC_PATH + "..%2F..%2Fapi.py").status_code == 404


def test_the_swagger_page_asks_for_persisted_authorization_and_no_validator(
    served: tuple[Client, dict[str, Any]],
) -> None:
    client, _ = served
    page = client.get("/api/docs/").text
    (config,) = re.findall(
        r'<script type="application/json" id="swagger-config">(.*?)</script>', page
    )
    settings = json.loads(config)
    assert settings["persistAuthorization"] is True
    assert settings["validatorUrl"] is None
    assert settings["url"] == "/api/schema/"


# --- the document and the parser agree ------------------------------------------------------

# Requests are drawn from the document by schemathesis's generator, the one the live fuzzing
# uses (tests/integration/test_docs.py), and sent to the app in this process: the routes of
# the operation table over the in-memory adapters and fast hashing, no server. Requests that
# fit the document must be accepted (a 400 only for the named domain rules), those that do
# not must be refused: every field of every operation, path, query and body.
CONTRACT_EXAMPLES = 30
CONTRACT = schemathesis.openapi.from_dict(build_document(OPERATIONS))
CONTRACT_CASES = [
    pytest.param(op.path, op.method, op.name, mode, id=f"{op.name}-{mode.value}")
    for op in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    # a request with no parameter and no body has nothing to get wrong
    if mode is GenerationMode.POSITIVE or op.path_params or op.query or op.body
]


@attrs.frozen
class InProcess:
    client: Any
    user_token: str
    admin_token: str
    services: Services

    def headers_for(self, name: str) -> dict[str, str]:
        """The admin's token for the admin paths, a new one for logout (which revokes
        it), the user's for the rest; public operations ignore them."""
        if name.startswith("admin_"):
            token = self.admin_token
        elif name == "logout":
            token = asyncio.run(self._fresh_token())
        else:
            token = self.user_token
        return {"Authorization": f"Token {token}"}

    async def _fresh_token(self) -> str:
        user = await self.services.deps.storage.users.get(1)
        assert user is not None
        return await self.services.accounts.issue_token(user)


@pytest.fixture(scope="module")
def in_process() -> Iterator[InProcess]:
    hasher = Argon2Hasher(FAST_INSECURE)
    # No throttle binds here (their 429s are tested on their own): every drawn request
    # must meet the rule it is drawn against, however many the generator sends.
    many = 10**9
    unthrottled = Policy(
        login_free_failures=many,
        login_failures_per_account=many,
        login_failures_per_address=many,
        registrations_per_address=many,
        chats_per_user=many,
    )
    services = bootstrap(hasher=hasher, policy=unthrottled)
    app = Starlette(
        routes=starlette_routes(OPERATIONS, services, RouteConfig()),
        exception_handlers=EXCEPTION_HANDLERS,
    )

    async def accounts() -> tuple[str, str]:
        def form(name: str) -> Registration:
            return Registration(name, rules_password(), rules_password())

        user = await services.accounts.register(form("contract_user"))
        admin = await services.accounts.register(form("contract_admin"), is_admin=True)
        return user.token, admin.token

    user_token, admin_token = asyncio.run(accounts())
    with asgi.get_client(app) as client:
        yield InProcess(client, user_token, admin_token, services)
    hasher.close()


def rules_password() -> str:
    return "Vq8#nLw2-zT"  # passes every password rule, like nothing a fuzzer names a user


@pytest.mark.parametrize(("path", "method", "name", "mode"), CONTRACT_CASES)
def test_the_server_takes_what_the_document_allows_and_refuses_the_rest(
    in_process: InProcess, path: str, method: str, name: str, mode: GenerationMode
) -> None:
    operation = CONTRACT[path][method]
    headers = in_process.headers_for(name)

    @settings(
        max_examples=CONTRACT_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(mode))
    def check(case: schemathesis.Case) -> None:
        response = case.call(session=in_process.client, headers=headers)
        case.validate_response(response, checks=CHECKS)

    check()


def test_a_domain_rule_excuses_its_message_whatever_value_it_names() -> None:
    """The named value is the client's own text: a newline in it is still that rule."""
    for name in ("carol", "", "two\nlines", 'quo"te', "\u2028"):
        message = notes.UNKNOWN_NAME.format(name)
        rule = notes.domain_rule("create_chat", "participant_usernames", message)
        assert rule is not None, name
