"""The HTTP adapter's readers of untrusted text, each total over its whole input class:
credentials from headers, ids from path segments, integers from query strings. Any
string gives a value, None, or the one domain error meant for it; nothing else."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.http.auth import cookie, header_token
from adapters.http.ids import ID_REGEX, numerals_up_to, parse_id
from adapters.http.wire import WindowQuery, query_int, structure
from chatcore.errors import AuthenticationFailed, ValidationFailed
from chatcore.rules import MAX_ID

latin1 = st.text(alphabet=st.characters(max_codepoint=0xFF))  # what Starlette decodes
any_text = st.one_of(st.text(), latin1)
ASCII_SPACE = " \t\n\r\x0b\x0c"
key = st.text(alphabet=st.characters(exclude_characters=ASCII_SPACE), min_size=1)


@given(value=any_text)
def test_header_token_is_total(value: str) -> None:
    try:
        token = header_token({"authorization": value})
    except AuthenticationFailed:
        return
    assert token is None or (token and token in value)


@given(
    spaces=st.lists(st.sampled_from(["\xa0", "\x85", "\u2003", "\u3000", *ASCII_SPACE])),
    scheme=st.sampled_from(["Token", "Bearer"]),
)
def test_whitespace_is_no_credential_and_a_scheme_without_a_key_a_401(
    spaces: list[str], scheme: str
) -> None:
    assert header_token({"authorization": "".join(spaces)}) is None
    with pytest.raises(AuthenticationFailed):
        header_token({"authorization": scheme + "".join(s for s in spaces if s in ASCII_SPACE)})


@given(
    scheme=st.sampled_from(["Token", "token", "BEARER", "Bearer"]),
    before=st.text(alphabet=ASCII_SPACE, min_size=1),
    token=key,
)
def test_the_key_is_what_follows_our_scheme_up_to_ascii_whitespace(
    scheme: str, before: str, token: str
) -> None:
    # Unicode spaces (U+00A0, U+0085) belong to the key: DRF splits bytes, not text.
    assert header_token({"authorization": f"{scheme}{before}{token}"}) == token
    with pytest.raises(AuthenticationFailed):
        header_token({"authorization": f"{scheme} {token} {token}"})
    with pytest.raises(AuthenticationFailed):
        header_token({"authorization": scheme})


@given(header=any_text, name=st.sampled_from(["sessionid", "csrftoken"]))
def test_cookie_is_total(header: str, name: str) -> None:
    value = cookie({"cookie": header}, name)
    assert value is None or value in header


@given(
    value=st.text(alphabet=st.characters(exclude_characters=";")),
    noise=st.text(alphabet=st.characters(exclude_characters="=")),
)
def test_cookie_values_come_back_as_sent(value: str, noise: str) -> None:
    """No unquoting (http.cookies' is quadratic in backslashes): ours are never quoted."""
    header = f"{noise}; sessionid=stale; sessionid={value}; other=1"
    assert cookie({"cookie": header}, "sessionid") == value.strip()


@given(limit=st.integers(1, 10**25), n=st.integers(-(10**3), 10**26))
def test_the_id_regex_matches_exactly_the_numerals_up_to_its_limit(limit: int, n: int) -> None:
    pattern = re.compile(numerals_up_to(limit))
    assert bool(pattern.fullmatch(str(n))) == (1 <= n <= limit)
    assert not pattern.fullmatch("0" + str(abs(n)))  # one spelling per id


@given(n=st.integers(1, MAX_ID) | st.sampled_from([1, 9, 10, MAX_ID - 1, MAX_ID]))
def test_every_id_parses(n: int) -> None:
    assert parse_id(str(n)) == n


@given(
    segment=st.one_of(
        any_text,
        st.integers().map(str),
        st.text(alphabet="0123456789\u0661\uff11", max_size=30),
        st.integers(19, 6000).map(lambda n: "9" * n),
    )
)
def test_parse_id_is_total_and_ascii_only(segment: str) -> None:
    value = parse_id(segment)
    valid = segment.isascii() and segment.isdigit() and not segment.startswith("0")
    valid = valid and len(segment) <= 19 and int(segment) <= MAX_ID
    assert value == (int(segment) if valid else None)
    assert (re.fullmatch(ID_REGEX, segment) is not None) == valid


@given(
    n=st.integers(-(10**40), 10**40),
    pad=st.sampled_from(["", " ", "\t"]),
    zeros=st.sampled_from(["", "0", "000"]),
)
def test_query_ints_read_exactly_up_to_max_id_and_beyond_it_as_one_past(
    n: int, pad: str, zeros: str
) -> None:
    text = f"{pad}{'-' if n < 0 else ''}{zeros}{abs(n)}{pad}"
    expected = n if abs(n) <= MAX_ID else (MAX_ID + 1) * (1 if n > 0 else -1)
    assert query_int(text) == expected


@given(text=st.one_of(any_text, st.text(alphabet="0123456789+-\u0661 \t", max_size=30)))
def test_query_int_is_total_bounded_and_ascii_only(text: str) -> None:
    value = query_int(text)
    if value is not None:
        assert abs(value) <= MAX_ID + 1
        assert re.fullmatch(r"[ \t]*[-+]?[0-9]+[ \t]*", text)
    else:
        assert not re.fullmatch(r"[ \t]*[-+]?[0-9]+[ \t]*", text)


@given(value=st.one_of(any_text, st.integers(4_290, 20_000).map(lambda n: "9" * n)))
def test_a_query_of_any_value_is_parsed_or_refused_on_its_field(value: str) -> None:
    refused: list[str] = []
    try:
        structure({"after": value}, WindowQuery)
    except ValidationFailed as exc:
        refused = list(exc.fields)
    assert refused in ([], ["after"])
