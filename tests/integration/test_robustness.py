"""A sweep of hostile input over every endpoint: whatever comes in, the answer is a JSON
body with a status below 500 and no traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

JSON_TYPE = "application/json"


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


ALL_FIELDS = (
    "username",
    "email",
    "password",
    "password_confirm",
    "user_type",
    "name",
    "participant_ids",
    "participant_usernames",
    "content",
    "client_id",
    "is_active",
    "is_admin",
)


def _j(value: Any) -> bytes:
    return json.dumps(value).encode()


NASTY_BODIES: list[tuple[str, bytes, str | None]] = [
    ("empty", b"", JSON_TYPE),
    ("empty-no-type", b"", None),
    ("whitespace", b"   \n\t", JSON_TYPE),
    ("not-utf8", b"\xff\xfe\xfd\x80", JSON_TYPE),
    (
        "not-utf8-in-strings",
        b'{"username": "\xff\xfe", "content": "\xc3\x28", "name": "\xed\xa0\x80"}',
        JSON_TYPE,
    ),
    ("utf8-bom", b'\xef\xbb\xbf{"content": "bom", "name": "bom"}', JSON_TYPE),
    ("utf16", '{"content": "wide", "name": "wide"}'.encode("utf-16"), JSON_TYPE),
    (
        "latin1-charset",
        b'{"content": "caf\xe9", "name": "caf\xe9"}',
        "application/json; charset=latin-1",
    ),
    ("bogus-charset", b'{"content": "x", "name": "x"}', "application/json; charset=klingon"),
    ("json-no-type", b'{"content": "x", "name": "x"}', None),
    (
        "huge-float",
        b'{"username": 1e999999, "content": 1e999999, "participant_ids": [1e999999],'
        b' "is_active": 1e999999}',
        JSON_TYPE,
    ),
    (
        "huge-ints",
        b'{"participant_ids": [99999999999999999999999999999999999], "name": "x",'
        b' "username": 99999999999999999999999999, "client_id": 18446744073709551616}',
        JSON_TYPE,
    ),
    (
        "int-edges",
        b'{"participant_ids": [-1, 0, 9223372036854775807, 9223372036854775808,'
        b' -9223372036854775809], "name": "x"}',
        JSON_TYPE,
    ),
    (
        "nan-inf",
        b'{"content": NaN, "name": Infinity, "username": -Infinity, "participant_ids": [NaN]}',
        JSON_TYPE,
    ),
    ("deeply-nested-array", _nested(100_000), JSON_TYPE),
    ("deeply-nested-object", b'{"a":' * 30_000 + b"1" + b"}" * 30_000, JSON_TYPE),
    ("deep-in-a-field", b'{"content": ' + _nested(50_000) + b', "name": "x"}', JSON_TYPE),
    ("nulls", _j(dict.fromkeys(ALL_FIELDS)), JSON_TYPE),
    (
        "null-items",
        _j({"participant_ids": [None], "participant_usernames": [None], "name": "x"}),
        JSON_TYPE,
    ),
    (
        "unicode",
        _j(
            {
                "username": "\u00fc\u00f1\u00ee\u00e7\u00f8d\u00e9",
                "password": "\u202e\u0000" + "\U0001f4a9" * 4,
                "content": "\u202e\u0000 \U0001f4a9",
                "name": "\u0000",
                "client_id": "\u0000",
                "participant_usernames": ["\u0000", "\U0001f4a9"],
                "user_type": "\u00f6wner",
            }
        ),
        JSON_TYPE,
    ),
    (
        "lone-surrogates",
        b'{"username": "\\ud83d",'
        b' "password": "\\ud800\\ud800\\ud800\\ud800\\ud800\\ud800\\ud800\\ud800",'
        b' "content": "\\ud800", "name": "\\udfff", "client_id": "\\udc00",'
        b' "participant_usernames": ["\\ud800"], "email": "\\ud800@example.com"}',
        JSON_TYPE,
    ),
    (
        "nested-objects",
        _j(
            {
                "username": {"a": {"b": []}},
                "password": {"$ne": ""},
                "content": {"$gt": ""},
                "name": ["x"],
                "participant_ids": [[1], {"id": 1}],
                "participant_usernames": [{"a": 1}],
                "client_id": {"k": "v"},
                "user_type": {"owner": True},
                "is_active": {},
                "is_admin": [],
            }
        ),
        JSON_TYPE,
    ),
    (
        "booleans",
        _j(
            {
                "username": True,
                "password": False,
                "content": True,
                "name": False,
                "participant_ids": [True, False],
                "client_id": True,
                "user_type": True,
                "is_active": 1,
                "is_admin": 0,
            }
        ),
        JSON_TYPE,
    ),
    (
        "big-strings",
        _j(
            {
                "username": "u" * 50_000,
                "content": "c" * 50_000,
                "name": "n" * 50_000,
                "client_id": "k" * 10_000,
                "email": "e" * 10_000 + "@example.com",
            }
        ),
        JSON_TYPE,
    ),
    ("many-keys", _j({f"k{i}": i for i in range(10_000)}), JSON_TYPE),
    ("duplicate-keys", b'{"content": "a", "content": "b", "name": "a", "name": 5}', JSON_TYPE),
    ("list-of-objects", b'[{"content": "x", "name": "x"}]', JSON_TYPE),
    ("string", b'"\\u0000"', JSON_TYPE),
    ("number", b"1e400", JSON_TYPE),
    ("many-participants", _j({"name": "crowd", "participant_ids": [1] * 30_000}), JSON_TYPE),
    (
        "many-usernames",
        _j({"name": "crowd", "participant_usernames": ["a" * 150] * 1_000}),
        JSON_TYPE,
    ),
    (
        "sql-ish",
        _j(
            {
                "username": "x' OR '1'='1",
                "password": "x' OR '1'='1 --",
                "content": "'); DROP TABLE messages; --",
                "name": '"; DROP TABLE chats; --',
                "participant_usernames": ["%", "_", "' OR 1=1 --"],
            }
        ),
        JSON_TYPE,
    ),
    (
        "control-chars",
        _j({"username": "a\nb", "content": "\x07\x08\x1b[31m", "name": "\r\n", "client_id": "\n"}),
        JSON_TYPE,
    ),
]


@pytest.fixture
def targets(client: httpx.Client, api: Any, admin: dict[str, Any]) -> dict[str, Any]:
    alice, alice_token = api.register(client)
    bob, _ = api.register(client)
    chat = api.create_chat(client, alice_token, ids=[bob["id"]])
    return {"alice": alice, "token": alice_token, "bob": bob, "chat": chat, "admin": admin}


def _check(response: httpx.Response, label: str, problems: list[str]) -> None:
    if response.status_code >= 500:
        problems.append(f"{label}: {response.status_code} {response.text[:200]!r}")
        return
    if response.status_code in (204, 304):
        return
    if "json" not in response.headers.get("content-type", ""):
        problems.append(f"{label}: content-type {response.headers.get('content-type')!r}")
    try:
        json.loads(response.content)
    except ValueError:
        problems.append(f"{label}: body is not JSON: {response.text[:200]!r}")
    if "Traceback" in response.text:
        problems.append(f"{label}: traceback in body")


def _post_nasty(
    client: httpx.Client, method: str, path: str, headers: dict[str, str]
) -> Iterator[tuple[str, httpx.Response]]:
    for name, body, content_type in NASTY_BODIES:
        request_headers = dict(headers)
        if content_type is not None:
            request_headers["Content-Type"] = content_type
        response = client.request(method, path, content=body, headers=request_headers)
        client.cookies.clear()
        yield name, response


@pytest.mark.parametrize(
    "endpoint", ["register", "login", "chats", "send_message", "admin_patch", "logout"]
)
def test_nasty_bodies_never_break_an_endpoint(
    client: httpx.Client, api: Any, targets: dict[str, Any], endpoint: str
) -> None:
    token, admin_token = targets["token"], targets["admin"]["token"]
    calls: dict[str, tuple[str, str, dict[str, str]]] = {
        "register": ("POST", "/api/register/", {}),
        "login": ("POST", "/api/login/", {}),
        "chats": ("POST", "/api/chats/", api.auth(token)),
        "send_message": (
            "POST",
            f"/api/chats/{targets['chat']['id']}/send_message/",
            api.auth(token),
        ),
        "admin_patch": (
            "PATCH",
            f"/api/admin/users/{targets['bob']['id']}/",
            api.auth(admin_token),
        ),
        "logout": ("POST", "/api/logout/", api.auth(token)),
    }
    method, path, headers = calls[endpoint]
    problems: list[str] = []
    for name, response in _post_nasty(client, method, path, headers):
        _check(response, f"{endpoint} {name}", problems)
        if endpoint == "logout" and response.status_code == 200:
            # the body was ignored and the token revoked: carry on with a new one
            fresh = api.login(client, targets["alice"]["username"])
            assert fresh.status_code == 200, fresh.text
            headers = api.auth(fresh.json()["token"])
    assert not problems, "\n".join(problems)

    # the server is still healthy and nothing odd was stored in the chat
    assert client.get("/api/me/", headers=api.auth(admin_token)).status_code == 200


NASTY_QUERY_VALUES = [
    "99999999999999999999999999",
    "9223372036854775808",
    "-9223372036854775809",
    "1e400",
    "\x00",
    "-0",
    " 1",
    "1 ",
    "\uff11",
    "\u0661",
    "0x10",
    "nan",
    "inf",
    "' OR 1=1 --",
    "%",
    "_",
    "\\",
    "\ud800",
    "x" * 5000,
]


def test_nasty_query_values_never_break_a_list(
    client: httpx.Client, api: Any, targets: dict[str, Any]
) -> None:
    token, admin_token = targets["token"], targets["admin"]["token"]
    chat_id = targets["chat"]["id"]
    lists = [
        ("/api/users/", ("search", "limit", "after"), token),
        (f"/api/chats/{chat_id}/messages/", ("limit", "before", "after"), token),
        ("/api/messages/", ("chat", "limit", "before", "after"), token),
        ("/api/admin/users/", ("search", "limit", "after"), admin_token),
        ("/api/admin/chats/", ("limit", "after"), admin_token),
        ("/api/admin/messages/", ("chat", "limit", "before", "after"), admin_token),
    ]
    problems: list[str] = []
    for path, fields, caller in lists:
        for field in fields:
            for value in NASTY_QUERY_VALUES:
                encoded = quote(value.encode("utf-8", "surrogatepass"), safe="")
                response = client.get(f"{path}?{field}={encoded}", headers=api.auth(caller))
                _check(response, f"GET {path}?{field}={value[:20]!r}", problems)
        raw = client.get(
            path + "?limit=%ff%fe&after=%00&before=%&chat=%zz&search=%c3",
            headers=api.auth(caller),
        )
        _check(raw, f"GET {path} raw bad escapes", problems)
    assert not problems, "\n".join(problems)


def test_nasty_paths_and_credentials_never_break_the_server(
    client: httpx.Client, api: Any, targets: dict[str, Any]
) -> None:
    token = targets["token"]
    problems: list[str] = []
    for path in (
        "/api/chats/%00/",
        "/api/chats/1%2F2/",
        "/api/chats/\uff11/",
        "/api/messages/%ff/",
        "/api/messages/1e3/",
        "/api/chats/1/../../me/",
        "/api/admin/users/abc/",
        "/api/admin/users/99999999999999999999999999/",
        "/api//chats//",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/api/" + "a" * 4000 + "/",
    ):
        for method in ("GET", "POST", "DELETE", "PATCH"):
            response = client.request(method, path, headers=api.auth(token), json={})
            _check(response, f"{method} {path[:40]}", problems)

    authorizations: list[bytes] = [
        b"Token " + b"x" * 8000,
        b"Token \xff\xfe",
        b"Bearer \xc3\x28",
        b"Token a b c",
        b"token " + token.encode(),
        b"TOKEN " + token.encode(),
        b"Bearer  " + token.encode(),
        b"Token " + token.encode() + b"x",
        b"Basic " + b"%",
        b"\xff",
    ]
    for authorization in authorizations:
        response = client.get("/api/me/", headers={"Authorization": authorization})
        _check(response, f"Authorization {authorization[:20]!r}", problems)
        assert response.status_code in (200, 401), (authorization[:20], response.status_code)
    for cookie in (
        b"sessionid=\xff\xfe",
        b"sessionid=" + b"a" * 5000,
        b"sessionid=; csrftoken=",
        b"sessionid",
        b";;;==;",
    ):
        for method in ("GET", "POST"):
            response = client.request(
                method,
                "/api/chats/",
                headers={"Cookie": cookie, "X-CSRFToken": b"\xff"},
                json={"name": "x"},
            )
            _check(response, f"{method} Cookie {cookie[:20]!r}", problems)
    assert not problems, "\n".join(problems)
