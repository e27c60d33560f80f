"""Credentials never survive the server's log mask (issue 8, item 7), in whatever shape a
log line carries them: a query string, an Authorization value, a cookie, a JSON body, a
header tuple as uvicorn's trace log prints it, a traceback."""

from __future__ import annotations

import io
import logging
import string

from hypothesis import assume, given
from hypothesis import strategies as st
from uvicorn.logging import AccessFormatter

from entrypoints.logs import MASK, PLAIN_PARAMS, RedactCredentials, redact

# Token-like secrets: long enough not to occur in the surrounding text by chance.
SECRET = st.text(string.ascii_letters + string.digits + "-_.~%+", min_size=12, max_size=64)
NAME = st.one_of(
    st.sampled_from(sorted(PLAIN_PARAMS)),
    st.sampled_from(["token", "TOKEN", "access_token", "password", "sessionid", "csrftoken"]),
    st.text(string.ascii_lowercase + "_", min_size=1, max_size=12),
)
CREDENTIAL_NAMES = ["token", "password", "password_confirm", "sessionid", "csrftoken"]
# What the traceback of the test below spells besides the secret (its source line).
_TRACEBACK_TEXT = 'raise ValueError(f"could not parse {name}={secret}")' + "".join(CREDENTIAL_NAMES)


@given(st.lists(st.tuples(NAME, SECRET), min_size=1, max_size=6), st.sampled_from(["?", "&"]))
def test_every_query_value_but_plain_ones_is_masked(
    pairs: list[tuple[str, str]], lead: str
) -> None:
    query = "&".join(f"{name}={value}" for name, value in pairs)
    line = f'127.0.0.1:5000 - "GET /ws/chat/1/{lead}{query} HTTP/1.1" 200'
    masked = redact(line)
    kept = masked.split(lead, 1)[1].removesuffix(' HTTP/1.1" 200').split("&")
    assert kept == [
        f"{name}={value if name.lower() in PLAIN_PARAMS else MASK}" for name, value in pairs
    ]
    assert masked.endswith(' HTTP/1.1" 200')


SHAPES = [
    "Authorization: Token {}",
    "Authorization: Bearer {}",
    "Cookie: sessionid={}; csrftoken=x",
    "Cookie: csrftoken=x; sessionid={}",
    "X-CSRFToken: {}",
    '{{"username": "bob", "password": "{}"}}',
    '{{"password_confirm":"{}","user_type":"staff"}}',
    "(b'authorization', b'Token {}')",
    "(b'x-csrftoken', b'{}')",
    "(b'cookie', b'csrftoken={}')",
    "token={}",
    "ValueError: bad header 'Token {}'",
]


@given(st.sampled_from(SHAPES), SECRET)
def test_credentials_in_any_known_shape_are_masked(shape: str, secret: str) -> None:
    masked = redact(shape.format(secret))
    assert secret not in masked
    assert MASK in masked


def _record(msg: str, args: tuple[object, ...], name: str = "chatcore.http") -> logging.LogRecord:
    return logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)


def _emit(record: logging.LogRecord, formatter: logging.Formatter) -> str:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactCredentials())
    handler.setFormatter(formatter)
    handler.handle(record)
    return out.getvalue()


@given(SECRET)
def test_uvicorn_access_lines_keep_their_shape_and_lose_the_token(token: str) -> None:
    record = _record(
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "GET", f"/ws/chat/3/?token={token}&after=7", "1.1", 101),
        name="uvicorn.access",
    )
    line = _emit(record, AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s'))
    assert token not in line
    expected = f'127.0.0.1:1 - "GET /ws/chat/3/?token={MASK}&after=7 HTTP/1.1" 101'
    assert line.strip() == f"{expected} Switching Protocols"


@given(SECRET, st.sampled_from(CREDENTIAL_NAMES))
def test_our_own_lines_and_their_tracebacks_lose_the_credential(secret: str, name: str) -> None:
    assume(secret not in _TRACEBACK_TEXT)  # a secret spelling part of the code is no leak
    try:
        raise ValueError(f"could not parse {name}={secret}")
    except ValueError as exc:
        record = _record("failed on %s=%s", (name, secret))
        record.exc_info = (type(exc), exc, exc.__traceback__)
    line = _emit(record, logging.Formatter("%(message)s"))
    assert secret not in line
    assert "Traceback" in line
