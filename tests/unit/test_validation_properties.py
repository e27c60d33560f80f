"""Validation properties of the use cases, wired as the app wires them.

For every input the use cases either accept it, and then what is read back is the input
as the rules normalise it (trimmed where they trim, unchanged elsewhere), or they raise
``ValidationFailed`` naming only fields of the request, each with non-empty messages.
Each property also carries an oracle written from API.md, independent of ``rules.py``:
inputs the oracle knows to be broken must fail on those fields, inputs it knows to be
fine must pass, and the rest (say, a password merely close to the username) may go either
way but must still fail cleanly.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import string
import unicodedata
from collections.abc import Awaitable, Callable, Iterator, Sequence
from importlib import resources
from typing import TypeVar

import attrs
import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from page_model import expected_page

from adapters.clock import ManualClock
from adapters.hashing import FAST_INSECURE, Argon2Hasher
from chatcore import (
    AuthenticationFailed,
    Chat,
    ChatDraft,
    Message,
    NotFound,
    Page,
    Registration,
    Services,
    User,
    UserType,
    ValidationFailed,
    Window,
)
from entrypoints.bootstrap import bootstrap

T = TypeVar("T")

NON_FIELD = "non_field_errors"
REGISTRATION_FIELDS = frozenset({"username", "email", "password", "password_confirm", "user_type"})
DRAFT_FIELDS = frozenset({"name", "participant_ids", "participant_usernames"})
SEND_FIELDS = frozenset({"content", "client_id"})
WINDOW_FIELDS = frozenset({"limit", "before", "after"})
STRONG_PASSWORD = "Vq8#nLw2-zT"  # passes every password rule, shares no letter with "bob"

PROPERTY = settings(max_examples=300, deadline=None)


# --- wiring -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fast_hasher() -> Iterator[Argon2Hasher]:
    """One pool of hashing threads for the module; every example gets fresh storage."""
    hasher = Argon2Hasher(FAST_INSECURE)
    yield hasher
    hasher.close()


def new_app(hasher: Argon2Hasher) -> Services:
    return bootstrap(hasher=hasher, clock=ManualClock())


def play(hasher: Argon2Hasher, scenario: Callable[[Services], Awaitable[T]]) -> T:
    """Run one example on a fresh app and a fresh event loop, closed afterwards."""
    return asyncio.run(scenario(new_app(hasher)))


async def attempt(call: Awaitable[T]) -> T | ValidationFailed:
    """The call's result, or the ValidationFailed it raised; anything else propagates."""
    try:
        return await call
    except ValidationFailed as error:
        return error


async def sign_up(app: Services, username: str) -> User:
    return (
        await app.accounts.register(Registration(username, STRONG_PASSWORD, STRONG_PASSWORD))
    ).user


# --- the oracle's view of API.md ------------------------------------------------------------


@attrs.frozen
class Verdict:
    """What the oracle expects of one request.

    ``must``: fields it knows are broken. ``may``: fields it cannot decide. ``later``:
    fields checked only once the others pass (a stored-state lookup), which a request
    broken elsewhere may or may not report as well.
    """

    must: frozenset[str] = frozenset()
    may: frozenset[str] = frozenset()
    later: frozenset[str] = frozenset()


def assert_well_formed(error: ValidationFailed, allowed: frozenset[str]) -> set[str]:
    """DRF's 400 shape: a non-empty dict of request fields to non-empty lists of text."""
    assert isinstance(error.fields, dict)
    assert error.fields, "a validation error must name at least one field"
    for name, messages in error.fields.items():
        assert name in allowed | {NON_FIELD}, f"{name!r} is not a field of the request"
        assert isinstance(messages, list)
        assert messages, f"{name!r} has no message"
        assert all(isinstance(m, str) and m for m in messages), messages
    return set(error.fields)


def assert_verdict(outcome: object, verdict: Verdict, allowed: frozenset[str]) -> bool:
    """Check a call's outcome against the oracle; True when the call succeeded."""
    event("accepted" if not isinstance(outcome, ValidationFailed) else "rejected")
    if not isinstance(outcome, ValidationFailed):
        assert not verdict.must, f"accepted although {sorted(verdict.must)} are invalid"
        assert not verdict.later, f"accepted although {sorted(verdict.later)} are invalid"
        return True
    fields = assert_well_formed(outcome, allowed)
    if verdict.must:
        assert verdict.must <= fields, f"expected errors on {sorted(verdict.must)}, got {fields}"
        assert fields <= verdict.must | verdict.may | verdict.later, fields
    else:
        assert verdict.later <= fields, f"expected errors on {sorted(verdict.later)}: {fields}"
        assert fields <= verdict.later | verdict.may, fields
    return False


def key(username: str) -> str:
    """API.md: usernames are unique ignoring case (compatibility forms count as one)."""
    return unicodedata.normalize("NFKC", username).casefold()


def _load_common_passwords() -> frozenset[str]:
    data = resources.files("chatcore").joinpath("data/common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode().split())


COMMON = _load_common_passwords()
COMMON_SORTED = sorted(COMMON)
USERNAME_CHARS = string.ascii_letters + string.digits + "@.+-_"
PLAIN_EMAIL = re.compile(r"[A-Za-z0-9_+-]{1,20}@(?:[A-Za-z0-9]{1,10}\.){1,3}[A-Za-z]{2,6}")


def encodable(text: str) -> bool:
    """Real Unicode text, as a UTF-8 store, a hash or a socket takes it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def username_ok(username: str) -> bool:
    # Letters and digits are what Python's (and Django's) \w accepts: str.isalnum().
    return 1 <= len(username) <= 150 and all(c.isalnum() or c in "@.+-_" for c in username)


def normal_email(email: str | None) -> str:
    return (email or "").strip()


def registration_verdict(form: Registration) -> Verdict:
    must: set[str] = set()
    may: set[str] = set()
    if not username_ok(form.username):
        must.add("username")
    email = normal_email(form.email)
    if email and "@" not in email:
        must.add("email")
    elif email and not PLAIN_EMAIL.fullmatch(email):
        may.add("email")  # the oracle only vouches for plain addresses
    password, username = form.password, form.username
    if (
        not encodable(password)
        or len(password) < 8
        or len(password) > 1024
        or password.isdigit()
        or password.lower().strip() in COMMON
        or (username and password.casefold() == username.casefold())
    ):
        must.add("password")
    elif username and set(password.casefold()) & set(username.casefold()):
        may.add("password")  # similar enough to the username? difflib decides
    if form.password_confirm != password:
        # Not comparable with a password that is not text: reporting it is optional.
        (must if encodable(password) else may).add("password_confirm")
    if form.user_type is not None and form.user_type not in {"owner", "student", "staff"}:
        must.add("user_type")
    return Verdict(frozenset(must), frozenset(may))


ID_MAX = 2**63 - 1  # ids are 64-bit keys in the stores: a larger one may be refused


def window_verdict(limit: int | None, **ids: int | None) -> Verdict:
    """API.md: a limit, before or after (or chat) that is not a positive integer is a 400
    on that field; a limit above 1000 is clamped (above 2^63-1 it may be refused)."""
    must = {"limit"} if limit is not None and limit < 1 else set()
    may = {"limit"} if limit is not None and limit > ID_MAX else set()  # no 64-bit integer
    for field, value in ids.items():
        if value is not None and value < 1:
            must.add(field)
        elif value is not None and value > ID_MAX:
            may.add(field)
    return Verdict(frozenset(must), frozenset(may))


def storable(text: str) -> bool:
    """Text a message or chat name may hold: real Unicode without NUL (DRF's CharField
    refuses NUL; PostgreSQL's text cannot hold it)."""
    return encodable(text) and "\x00" not in text


def text_verdict(value: str, limit: int, field: str) -> set[str]:
    trimmed = value.strip()
    return {field} if not trimmed or len(trimmed) > limit or not storable(trimmed) else set()


# --- strategies ---------------------------------------------------------------------------

WHITESPACE = " \t\n\r\x0b\x0c\xa0\u2003\u3000"
padding = st.text(st.sampled_from(WHITESPACE), max_size=3)
# JSON can carry lone surrogates ("\ud800"), which hypothesis' text() leaves out: add some.
with_surrogate = st.builds(
    lambda left, lone, right: left + lone + right,
    st.text(max_size=8),
    st.integers(0xD800, 0xDFFF).map(chr),
    st.text(max_size=8),
)
any_text = st.one_of(st.text(max_size=24), with_surrogate)


def padded_run(lengths: Sequence[int]) -> st.SearchStrategy[str]:
    """Text whose trimmed length sits on a boundary: padding + c * n + padding."""
    return st.builds(
        lambda left, char, n, right: left + char * n + right,
        padding,
        st.sampled_from(["a", "é", "字", "🙂", "_"]),
        st.sampled_from(lengths),
        padding,
    )


good_usernames = st.one_of(
    st.text(USERNAME_CHARS, min_size=1, max_size=12),
    st.text(st.characters(categories=("L", "N")), min_size=1, max_size=8),
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "é", "_"]), st.sampled_from([149, 150])),
)
good_passwords = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from(["Ç", "#", "ß"]),  # keeps it out of the list and off all-digits
    st.text(string.ascii_letters + string.digits + string.punctuation, min_size=7, max_size=16),
)
good_emails = st.one_of(
    st.none(),
    st.just(""),
    st.builds(
        lambda left, email, right: left + email + right,
        padding,
        st.from_regex(PLAIN_EMAIL, fullmatch=True),
        padding,
    ),
)
good_user_types = st.one_of(st.none(), st.sampled_from(["owner", "student", "staff"]))
usernames = st.one_of(
    st.text(USERNAME_CHARS, min_size=1, max_size=12),
    st.text(st.characters(categories=("L", "N")), min_size=1, max_size=8),
    any_text,
    st.builds(
        lambda c, n: c * n,
        st.sampled_from(["a", "Z", "é", "9", "_", "."]),
        st.sampled_from([149, 150, 151]),
    ),
    st.sampled_from(["", " ", " bob", "bob ", "bob\n", "bo b", "bob!", "bob#1", "ʙᴏʙ", "Zoë"]),
)
emails = st.one_of(
    st.none(),
    st.just(""),
    padding,
    st.builds(
        lambda left, email, right: left + email + right,
        padding,
        st.from_regex(PLAIN_EMAIL, fullmatch=True),
        padding,
    ),
    st.sampled_from(
        [
            "bob",
            "bob@",
            "@example.com",
            "bob@example",
            "bob@@example.com",
            "a b@x.io",
            "bob@-x.io",
            "bob@x.c0m",
            "Bob.Smith@Example.COM",
        ]
    ),
    any_text,
)
passwords = st.one_of(
    st.text(string.ascii_letters + string.digits + string.punctuation, min_size=6, max_size=16),
    st.text(string.digits, min_size=1, max_size=12),
    st.sampled_from(COMMON_SORTED),
    st.sampled_from(["password123", "PASSWORD123", " qwerty123 ", "Letmein1", STRONG_PASSWORD]),
    any_text,
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "é"]), st.sampled_from([7, 8, 1024, 1025])),
)
user_types = st.one_of(
    st.none(),
    st.sampled_from(["owner", "student", "staff"]),
    st.sampled_from(["", "Owner", "STAFF", " staff", "admin", "teacher"]),
    any_text,
)


@st.composite
def registrations(draw: st.DrawFn) -> Registration:
    """A well-formed sign-up with zero or more of its fields drawn from anything."""
    wild = draw(st.sets(st.sampled_from(sorted(REGISTRATION_FIELDS)), max_size=3))
    username = draw(usernames if "username" in wild else good_usernames)
    if "password" in wild:
        password = draw(st.one_of(passwords, st.just(username), st.just(username.upper() + "x")))
    else:
        password = draw(good_passwords)
    if "password_confirm" in wild:
        confirm = draw(st.one_of(st.just(password + " "), st.just(password.upper()), passwords))
    else:
        confirm = password
    email = draw(emails if "email" in wild else good_emails)
    user_type = draw(user_types if "user_type" in wild else good_user_types)
    return Registration(username, password, confirm, email, user_type)


names = st.one_of(st.text(min_size=1, max_size=24), padding, padded_run([1, 254, 255, 256, 257]))
contents = st.one_of(
    st.text(min_size=1, max_size=24),
    st.one_of(any_text, padding, padded_run([1, 9_999, 10_000, 10_001])),
)
client_ids = st.one_of(
    st.none(),
    st.text(min_size=1, max_size=10),
    st.one_of(
        st.just(""),
        any_text,
        st.builds(
            lambda c, n: c * n, st.sampled_from(["k", "é", " "]), st.sampled_from([1, 63, 64, 65])
        ),
    ),
)
limits = st.one_of(
    st.none(), st.sampled_from([-1, 0, 1, 2, 1000, 1001]), st.integers(-3, 20), st.integers()
)
bounds = st.one_of(st.none(), st.integers(-3, 40), st.integers())


# --- registration ---------------------------------------------------------------------------


@PROPERTY
@given(form=registrations())
@example(form=Registration("a" * 150, STRONG_PASSWORD, STRONG_PASSWORD))
@example(form=Registration("a" * 151, STRONG_PASSWORD, STRONG_PASSWORD))
@example(form=Registration("", "", "", "", ""))
@example(form=Registration(" bob ", "password123", "password12", " x@y.io ", "admin"))
def test_registration_round_trips_or_fails_on_its_fields(
    fast_hasher: Argon2Hasher, form: Registration
) -> None:
    verdict = registration_verdict(form)

    async def scenario(app: Services) -> None:
        outcome = await attempt(app.accounts.register(form))
        if not assert_verdict(outcome, verdict, REGISTRATION_FIELDS):
            return
        assert not isinstance(outcome, ValidationFailed)
        user = outcome.user
        user_type = UserType(form.user_type) if form.user_type is not None else UserType.STUDENT
        assert (user.username, user.email, user.user_type) == (
            form.username,
            normal_email(form.email),
            user_type,
        )
        login = await app.accounts.login(form.username, form.password)
        assert login.user == user
        assert login.token != outcome.token
        for token in (outcome.token, login.token):
            assert await app.accounts.authenticate(token) == user
        # Normalising is idempotent: the stored values, registered anew, come back as is.
        again = await new_app(fast_hasher).accounts.register(
            Registration(
                user.username, form.password, form.password, user.email, user.user_type.value
            )
        )
        assert (again.user.username, again.user.email, again.user.user_type) == (
            user.username,
            user.email,
            user.user_type,
        )

    play(fast_hasher, scenario)


@PROPERTY
@given(
    first=st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=12),
    data=st.data(),
)
def test_usernames_are_unique_ignoring_case(
    fast_hasher: Argon2Hasher, first: str, data: st.DataObject
) -> None:
    second = data.draw(
        st.one_of(
            st.sampled_from([first, first.upper(), first.lower(), first.swapcase()]),
            st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=12),
        )
    )

    async def scenario(app: Services) -> None:
        await sign_up(app, first)
        outcome = await attempt(sign_up(app, second))
        if second.lower() == first.lower():
            assert isinstance(outcome, ValidationFailed)
            assert set(outcome.fields) == {"username"}
            assert_well_formed(outcome, REGISTRATION_FIELDS)
        else:
            assert isinstance(outcome, User)
            assert outcome.username == second

    play(fast_hasher, scenario)


# The rules pinned by hand, one example each.


def registration(
    username: str = "bob",
    password: str = STRONG_PASSWORD,
    confirm: str | None = None,
    email: str | None = None,
    user_type: str | None = None,
) -> Registration:
    return Registration(
        username, password, password if confirm is None else confirm, email, user_type
    )


async def failed_fields(call: Awaitable[object]) -> set[str]:
    outcome = await attempt(call)
    assert isinstance(outcome, ValidationFailed), f"accepted: {outcome!r}"
    return assert_well_formed(
        outcome,
        REGISTRATION_FIELDS | DRAFT_FIELDS | SEND_FIELDS | WINDOW_FIELDS | {"chat", "search"},
    )


@pytest.mark.parametrize(
    "username",
    ["a", "a" * 150, "Jo.e+x-y_z@1", "bob@example.com", "Zoë", "Łukasz", "李小龍", "٣٤"],
)
async def test_valid_usernames_are_accepted_unchanged(app: Services, username: str) -> None:
    session = await app.accounts.register(registration(username))
    assert session.user.username == username


@pytest.mark.parametrize(
    "username", ["", "a" * 151, " bob", "bob ", "bob smith", "bob!", "bob#", "bob/x", "bob\n"]
)
async def test_invalid_usernames_fail_on_username(app: Services, username: str) -> None:
    assert await failed_fields(app.accounts.register(registration(username))) == {"username"}


@pytest.mark.parametrize(
    ("first", "second"), [("bob", "Bob"), ("Bob", "bob"), ("bob", "BOB"), ("ǅemal", "džemal")]
)
async def test_a_username_differing_only_in_case_is_taken(
    app: Services, first: str, second: str
) -> None:
    await sign_up(app, first)
    outcome = await attempt(sign_up(app, second))
    assert isinstance(outcome, ValidationFailed)
    assert set(outcome.fields) == {"username"}


@pytest.mark.parametrize(
    ("email", "stored"),
    [
        (None, ""),
        ("", ""),
        ("   ", ""),
        ("bob@example.com", "bob@example.com"),
        (" bob@example.io\n", "bob@example.io"),
        ("Bob.S+tag@Mail.Example.ORG", "Bob.S+tag@Mail.Example.ORG"),
    ],
)
async def test_email_is_optional_and_kept_trimmed(
    app: Services, email: str | None, stored: str
) -> None:
    session = await app.accounts.register(registration(email=email))
    assert session.user.email == stored


@pytest.mark.parametrize(
    "email",
    [
        "bob",
        "bob@",
        "@example.com",
        "bob@example",
        "bob@@example.com",
        "bob smith@x.io",
        "bob@x..io",
        "bob@-x.io",
    ],
)
async def test_malformed_email_fails_on_email(app: Services, email: str) -> None:
    assert await failed_fields(app.accounts.register(registration(email=email))) == {"email"}


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("bob", "Vq8#nLw"),  # 7 characters
        ("bob", ""),
        ("bob", "12345678"),
        ("bob", "٣٤٥٦٧٨٩٠١٢"),  # Arabic-Indic digits are digits too
        ("bob", "password123"),
        ("bob", "PASSWORD123"),
        ("bob", "qwerty123"),
        ("bob", "iloveyou"),
        ("bob", " letmein1 "),
        ("correcthorse", "correcthorse"),
        ("correcthorse", "CorrectHorse"),
        ("bob", "a" * 1025),
    ],
)
async def test_weak_passwords_fail_on_password(app: Services, username: str, password: str) -> None:
    assert await failed_fields(app.accounts.register(registration(username, password))) == {
        "password"
    }


@pytest.mark.parametrize(
    "password",
    ["Vq8#nLw2", STRONG_PASSWORD, "correct horse battery staple", "a" * 1024, "пароль-Ключ-42"],
)
async def test_strong_passwords_are_accepted(app: Services, password: str) -> None:
    session = await app.accounts.register(registration(password=password))
    assert (await app.accounts.login("bob", password)).user == session.user


@pytest.mark.parametrize("confirm", ["", STRONG_PASSWORD + " ", STRONG_PASSWORD.upper(), "x"])
async def test_password_confirm_must_match(app: Services, confirm: str) -> None:
    assert await failed_fields(app.accounts.register(registration(confirm=confirm))) == {
        "password_confirm"
    }


@pytest.mark.parametrize(
    ("user_type", "stored"),
    [
        (None, UserType.STUDENT),
        ("student", UserType.STUDENT),
        ("staff", UserType.STAFF),
        ("owner", UserType.OWNER),
    ],
)
async def test_user_type_defaults_to_student(
    app: Services, user_type: str | None, stored: UserType
) -> None:
    session = await app.accounts.register(registration(user_type=user_type))
    assert session.user.user_type is stored


@pytest.mark.parametrize("user_type", ["", "Student", "admin", " staff", "teacher"])
async def test_unknown_user_type_fails_on_user_type(app: Services, user_type: str) -> None:
    assert await failed_fields(app.accounts.register(registration(user_type=user_type))) == {
        "user_type"
    }


async def test_every_broken_field_is_reported_at_once(app: Services) -> None:
    form = Registration("bad name", "123", "124", "nope", "admin")
    assert await failed_fields(app.accounts.register(form)) == REGISTRATION_FIELDS


@pytest.mark.parametrize("username", ["nobody", "bob", "bob\udc80"])
async def test_a_lone_surrogate_fails_cleanly(app: Services, username: str) -> None:
    # JSON may carry "\ud800"; json.loads turns it into a lone surrogate in a str,
    # which no UTF-8 encoder (argon2's included) accepts.
    password = "Vq8#nLw2\ud800"
    assert await failed_fields(app.accounts.register(registration(password=password))) == {
        "password"
    }
    await sign_up(app, "bob")
    with pytest.raises(AuthenticationFailed):
        await app.accounts.login(username, password)


# --- chat drafts ----------------------------------------------------------------------------

KNOWN = ("alice", "bob", "Carol", "dave")  # alice acts; all four exist


id_lists = st.one_of(
    st.lists(st.integers(1, len(KNOWN)), max_size=6),
    st.lists(st.one_of(st.integers(-2, len(KNOWN) + 3), st.integers()), max_size=6),
)


known_refs = st.sampled_from(KNOWN).flatmap(
    lambda n: st.sampled_from([n, n.upper(), n.lower(), n.swapcase(), "\uff22\uff2f\uff22"])
)
username_refs = st.one_of(
    st.lists(known_refs, max_size=5),
    st.lists(
        st.one_of(
            known_refs,
            st.sampled_from(["zed", "", " bob", "bob ", "alice\n", "a", "bob" * 60]),
            any_text,
        ),
        max_size=5,
    ),
)


@PROPERTY
@given(name=names, ids=id_lists, refs=username_refs)
@example(name=" " + "a" * 255 + " ", ids=[2, 2, 3], refs=["BOB", "carol"])
@example(name="a" * 256, ids=[0, -1], refs=["zed"])
@example(name="\u3000", ids=[9], refs=[])
def test_chat_drafts_round_trip_or_fail_on_their_fields(
    fast_hasher: Argon2Hasher, name: str, ids: list[int], refs: list[str]
) -> None:
    async def scenario(app: Services) -> None:
        users = [await sign_up(app, n) for n in KNOWN]
        alice = users[0]
        by_id = {u.id: u for u in users}
        by_key = {key(u.username): u for u in users}
        must = text_verdict(name, 255, "name")
        if any(i < 1 for i in ids):
            must.add("participant_ids")
        later = set()
        if any(i >= 1 and i not in by_id for i in ids):
            later.add("participant_ids")
        if any(key(r) not in by_key for r in refs):
            later.add("participant_usernames")
        verdict = Verdict(frozenset(must), frozenset(), frozenset(later - must))

        outcome = await attempt(app.chats.create_chat(alice, ChatDraft(name, ids, refs)))
        if not assert_verdict(outcome, verdict, DRAFT_FIELDS):
            assert isinstance(outcome, ValidationFailed)
            if not verdict.must:  # the lookups ran: each unknown id or name is named
                for bad in (i for i in ids if i not in by_id):
                    assert any(str(bad) in m for m in outcome.fields["participant_ids"])
                # Names are told apart by key: one of the spellings of each unknown is named
                # (a name that is not text cannot be quoted back, only refused).
                messages = outcome.fields.get("participant_usernames", [])
                for unknown in {key(r) for r in refs if encodable(r)} - set(by_key):
                    spellings = [r for r in refs if encodable(r) and key(r) == unknown]
                    assert any(r in m for r in spellings for m in messages), spellings
            return
        assert isinstance(outcome, Chat)
        members = {alice.id, *ids, *(by_key[key(r)].id for r in refs)}
        assert outcome.name == name.strip()
        assert [u.id for u in outcome.participants] == sorted(members)
        assert outcome.participants == tuple(by_id[i] for i in sorted(members))
        assert outcome.last_message is None
        for user in users:
            if user.id in members:
                assert await app.chats.get_chat(user, outcome.id) == outcome
                assert outcome in (await app.chats.list_chats(user)).items
            else:
                with pytest.raises(NotFound):
                    await app.chats.get_chat(user, outcome.id)
                assert outcome.id not in [c.id for c in (await app.chats.list_chats(user)).items]
        again = await app.chats.create_chat(alice, ChatDraft(outcome.name))
        assert again.name == outcome.name

    play(fast_hasher, scenario)


# --- messages -------------------------------------------------------------------------------


@PROPERTY
@given(content=contents, client_id=client_ids)
@example(content="  " + "x" * 10_000 + "\n", client_id="k" * 64)
@example(content="x" * 10_001, client_id="k" * 65)
@example(content=" \t\n", client_id="")
@example(content=" hi ", client_id=" ")
@example(content="a\x00b", client_id="k\x00")
def test_messages_round_trip_or_fail_on_their_fields(
    fast_hasher: Argon2Hasher, content: str, client_id: str | None
) -> None:
    must = text_verdict(content, 10_000, "content")
    if client_id is not None and not (1 <= len(client_id) <= 64 and storable(client_id)):
        must.add("client_id")

    async def scenario(app: Services) -> None:
        alice, bob = await sign_up(app, "alice"), await sign_up(app, "bob")
        chat = await app.chats.create_chat(alice, ChatDraft("room"))
        outcome = await attempt(app.chats.send_message(alice, chat.id, content, client_id))
        if not assert_verdict(outcome, Verdict(frozenset(must)), SEND_FIELDS):
            page = await app.chats.chat_messages(alice, chat.id, Window())
            assert page.items == (), "a rejected message is not stored"
            return
        assert not isinstance(outcome, ValidationFailed)
        message, created = outcome
        assert created
        assert (message.chat_id, message.sender, message.content, message.client_id) == (
            chat.id,
            alice,
            content.strip(),
            client_id,
        )
        assert await app.chats.get_message(alice, message.id) == message
        with pytest.raises(NotFound):
            await app.chats.get_message(bob, message.id)
        assert (await app.chats.chat_messages(alice, chat.id, Window())).items == (message,)
        assert (await app.chats.get_chat(alice, chat.id)).last_message == message
        # Normalising is idempotent: the stored content, sent again, is stored as is.
        echo, _ = await app.chats.send_message(alice, chat.id, message.content)
        assert echo.content == message.content
        if client_id is not None:
            repeat = await app.chats.send_message(alice, chat.id, "something else", client_id)
            assert repeat == (message, False)
            page = await app.chats.chat_messages(alice, chat.id, Window())
            assert page.items == (message, echo)

    play(fast_hasher, scenario)


async def test_a_non_member_cannot_send_even_invalid_content(app: Services) -> None:
    alice, bob = await sign_up(app, "alice"), await sign_up(app, "bob")
    chat = await app.chats.create_chat(alice, ChatDraft("room"))
    with pytest.raises(NotFound):
        await app.chats.send_message(bob, chat.id, "   ")


# --- page windows ---------------------------------------------------------------------------


def assert_page(page: Page[Message], ids: Sequence[int], window: Window) -> None:
    items, older, newer = expected_page(ids, window.limit, window.before, window.after)
    assert [m.id for m in page.items] == items
    assert (page.has_older, page.has_newer) == (older, newer)


@pytest.mark.parametrize(
    ("limit", "size"), [(None, 100), (1, 1), (999, 999), (1000, 1000), (1001, 1000), (10**9, 1000)]
)
async def test_page_size_defaults_to_100_and_is_clamped_to_1000(
    app: Services, limit: int | None, size: int
) -> None:
    alice = await sign_up(app, "alice")
    chat = await app.chats.create_chat(alice, ChatDraft("busy"))
    ids = [(await app.chats.send_message(alice, chat.id, f"m{n}"))[0].id for n in range(1001)]
    for page in (
        await app.chats.chat_messages(alice, chat.id, Window(limit)),
        await app.chats.my_messages(alice, Window(limit)),
    ):
        assert [m.id for m in page.items] == ids[-size:]
        assert (page.has_older, page.has_newer) == (True, False)
    forward = await app.chats.chat_messages(alice, chat.id, Window(limit, after=ids[0]))
    assert [m.id for m in forward.items] == ids[1 : 1 + size]
    assert (forward.has_older, forward.has_newer) == (True, size < 1000)


@PROPERTY
@given(
    in_shared=st.lists(st.booleans(), max_size=14),
    limit=limits,
    before=bounds,
    after=bounds,
    chat_filter=st.sampled_from([None, "shared", "private", -1, 0, 10**6]),
)
@example(in_shared=[True] * 5, limit=0, before=0, after=-1, chat_filter=None)
@example(in_shared=[True] * 5, limit=1001, before=None, after=None, chat_filter=None)
@example(in_shared=[True] * 5, limit=2, before=3, after=None, chat_filter=None)
@example(in_shared=[True, False] * 3, limit=2, before=4, after=1, chat_filter="shared")
@example(in_shared=[True, False] * 3, limit=1000, before=None, after=3, chat_filter=-1)
def test_page_windows_return_the_window_or_fail_on_their_fields(
    fast_hasher: Argon2Hasher,
    in_shared: list[bool],
    limit: int | None,
    before: int | None,
    after: int | None,
    chat_filter: str | int | None,
) -> None:
    window = Window(limit, before, after)
    window_only = window_verdict(limit, before=before, after=after)

    async def scenario(app: Services) -> None:
        alice, bob = await sign_up(app, "alice"), await sign_up(app, "bob")
        shared = await app.chats.create_chat(alice, ChatDraft("shared", [bob.id]))
        private = await app.chats.create_chat(alice, ChatDraft("private"))
        ids: dict[int, list[int]] = {shared.id: [], private.id: []}
        for n, to_shared in enumerate(in_shared):
            chat = shared if to_shared else private
            message, _ = await app.chats.send_message(alice, chat.id, f"m{n}")
            ids[chat.id].append(message.id)
        everything = sorted(ids[shared.id] + ids[private.id])

        outcome = await attempt(app.chats.chat_messages(alice, shared.id, window))
        if assert_verdict(outcome, window_only, WINDOW_FIELDS):
            assert isinstance(outcome, Page)
            assert_page(outcome, ids[shared.id], window)
        with pytest.raises(NotFound):
            await app.chats.chat_messages(bob, private.id, window)

        chat_id = {"shared": shared.id, "private": private.id}.get(str(chat_filter), chat_filter)
        assert not isinstance(chat_id, str)
        scope = window_verdict(None, chat=chat_id)
        # my_messages checks ``chat`` before the window: the window's errors may come later.
        if scope.must:
            verdict = Verdict(scope.must, scope.may | window_only.must | window_only.may)
        else:
            verdict = Verdict(window_only.must, window_only.may | scope.may)
        for user, mine in ((alice, everything), (bob, ids[shared.id])):
            outcome = await attempt(app.chats.my_messages(user, window, chat_id))
            if assert_verdict(outcome, verdict, WINDOW_FIELDS | {"chat"}):
                assert isinstance(outcome, Page)
                scope = mine if chat_id is None else [i for i in mine if i in ids.get(chat_id, [])]
                assert_page(outcome, scope, window)

    play(fast_hasher, scenario)


@PROPERTY
@given(
    search=st.one_of(
        st.sampled_from(["", "a", "B", "li", "zed", "_", "\uff21\uff2c\uff29"]),
        any_text,
        padded_run([150, 151]),
    ),
    limit=limits,
    after=bounds,
)
def test_user_search_windows(
    fast_hasher: Argon2Hasher, search: str, limit: int | None, after: int | None
) -> None:
    verdict = window_verdict(limit, after=after)
    if len(search) > 150 or not encodable(search):
        verdict = attrs.evolve(verdict, must=verdict.must | {"search"})

    async def scenario(app: Services) -> None:
        users = [await sign_up(app, n) for n in ("alice", "Bob", "bella", "a_b", "carl")]
        outcome = await attempt(app.accounts.list_users(search, after, limit))
        if not assert_verdict(outcome, verdict, frozenset({"search", "limit", "after"})):
            return
        assert isinstance(outcome, Page)
        matching = [u for u in users if key(search) in key(u.username)]
        size = 100 if limit is None else min(limit, 1000)
        expected = [u for u in matching if after is None or u.id > after][:size]
        assert list(outcome.items) == expected
        assert outcome.has_older == (after is not None and any(u.id <= after for u in matching))
        assert outcome.has_newer == bool(expected and matching[-1].id > expected[-1].id)

    play(fast_hasher, scenario)
