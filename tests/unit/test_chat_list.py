"""The chat list's paging (limit and cursor) and reading one chat, as use cases over the
in-memory adapters: the rules for every input, and the storage calls they make."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.clock import ManualClock
from adapters.hashing import FAST_INSECURE, Argon2Hasher
from adapters.memory import InMemoryStorage
from chatcore import ChatDraft, NotFound, Registration, Services, User, ValidationFailed
from chatcore.model import Chat
from chatcore.paging import CURSOR_MAX, CURSOR_PATTERN, INVALID_CURSOR, chat_cursor, check_cursor
from chatcore.rules import MAX_ID, PAGE_DEFAULT, PAGE_MAX, Errors
from entrypoints.bootstrap import bootstrap

PROPERTY = settings(max_examples=300, deadline=None)
PASSWORD = "correct horse battery"

AWARE_TIMES = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=9)), timezone(timedelta(hours=-5))]),
)
CHAT_IDS = st.integers(1, MAX_ID)


def chat_at(at: datetime, chat_id: int) -> Chat:
    return Chat(chat_id, "x", at, ())


# --- the cursor ---------------------------------------------------------------------------


@PROPERTY
@given(at=AWARE_TIMES, chat_id=CHAT_IDS)
def test_a_cursor_stands_for_its_chats_position(at: datetime, chat_id: int) -> None:
    errors = Errors()
    cursor = chat_cursor(chat_at(at, chat_id))
    assert CURSOR_PATTERN.fullmatch(cursor)
    assert len(cursor) <= CURSOR_MAX
    assert check_cursor(cursor, "cursor", errors) == chat_at(at, chat_id).activity
    assert errors.fields == {}


@PROPERTY
@given(first=st.tuples(AWARE_TIMES, CHAT_IDS), second=st.tuples(AWARE_TIMES, CHAT_IDS))
def test_cursors_keep_the_order_of_positions(
    first: tuple[datetime, int], second: tuple[datetime, int]
) -> None:
    a, b = chat_at(*first), chat_at(*second)
    errors = Errors()
    read_a = check_cursor(chat_cursor(a), "cursor", errors)
    read_b = check_cursor(chat_cursor(b), "cursor", errors)
    assert read_a is not None
    assert read_b is not None
    assert (read_a < read_b) == (a.activity < b.activity)


CURSORISH = st.one_of(
    st.text(),
    st.from_regex(CURSOR_PATTERN, fullmatch=True),
    st.from_regex(r"-?[0-9]{0,40}\.?[0-9]{0,40}", fullmatch=True),
    st.text(alphabet="0123456789.٣０", max_size=45),  # other scripts' digits are not ours
    st.integers(0, 10**60).map(lambda n: f"{n}.{n}"),
)


@PROPERTY
@given(text=CURSORISH)
@example("")
@example(".")
@example("1.")
@example("0.0")
@example("9" * 18 + "." + "9" * 19)
@example("1" * 100_000)
def test_every_string_is_a_cursor_exactly_when_the_documented_pattern_matches(text: str) -> None:
    """The pattern the OpenAPI document gives is the whole rule: a string it matches is
    a position (never an error, whatever its numbers), any other is a 400 on the field,
    and nothing raises."""
    errors = Errors()
    position = check_cursor(text, "cursor", errors)
    if CURSOR_PATTERN.fullmatch(text):
        assert position is not None
        assert 0 <= position.chat_id <= MAX_ID
        assert errors.fields == {}
    else:
        assert position is None
        assert errors.fields == {"cursor": [INVALID_CURSOR]}


# --- the use case -------------------------------------------------------------------------


class Recorder:
    """A store of the in-memory storage that notes each call's method name: a spy over
    the real adapter, which changes nothing it does."""

    def __init__(self, inner: Any, calls: list[str]) -> None:
        self._inner = inner
        self._calls = calls

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self._inner, name)

        async def call(*args: Any) -> Any:
            self._calls.append(name)
            return await method(*args)

        return call


class RecordingStorage(InMemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.chats = Recorder(self.chats, self.calls)  # type: ignore[assignment]
        self.messages = Recorder(self.messages, self.calls)  # type: ignore[assignment]


def new_app(storage: InMemoryStorage, clock: ManualClock) -> tuple[Services, Argon2Hasher]:
    hasher = Argon2Hasher(FAST_INSECURE)
    return bootstrap(storage=storage, hasher=hasher, clock=clock), hasher


async def sign_up(app: Services, *names: str) -> list[User]:
    return [(await app.accounts.register(Registration(n, PASSWORD, PASSWORD))).user for n in names]


async def test_a_chat_one_is_not_in_takes_the_path_of_a_missing_chat() -> None:
    """Reading a chat: one storage call, scoped to the actor, whether the chat is theirs,
    someone else's or nobody's. Nothing of a chat is read for a non-participant (the
    SQLite tests count its steps); so the two refusals look alike in time too."""
    storage = RecordingStorage()
    app, hasher = new_app(storage, ManualClock())
    try:
        alice, eve = await sign_up(app, "alice", "eve")
        chat = await app.chats.create_chat(alice, ChatDraft("private"))
        await app.chats.send_message(alice, chat.id, "secret")
        journeys = []
        for actor, chat_id in [(eve, chat.id), (eve, chat.id + 1), (alice, chat.id + 1)]:
            storage.calls.clear()
            with pytest.raises(NotFound):
                await app.chats.get_chat(actor, chat_id)
            journeys.append(list(storage.calls))
        storage.calls.clear()
        mine = await app.chats.get_chat(alice, chat.id)
        assert journeys == [storage.calls] * 3 == [["get_for"]] * 3
        assert mine == await storage.chats.get(chat.id)
    finally:
        hasher.close()


@pytest.fixture
def app_and_chats() -> Any:
    clock = ManualClock()
    app, hasher = new_app(InMemoryStorage(), clock)

    async def build() -> tuple[User, list[Chat]]:
        alice, bob = await sign_up(app, "alice", "bob")
        chats = []
        for n in range(7):
            clock.advance(timedelta(seconds=1))
            chats.append(await app.chats.create_chat(alice, ChatDraft(f"c{n}", [bob.id])))
        return alice, chats[::-1]

    alice, chats = asyncio.run(build())
    yield app, alice, chats
    hasher.close()


def test_limit_and_cursor_are_checked_together_on_their_fields(app_and_chats: Any) -> None:
    app, alice, _ = app_and_chats

    @settings(max_examples=200, deadline=None)
    @given(limit=st.none() | st.integers(-(2**70), 2**70), cursor=st.none() | CURSORISH)
    def check(limit: int | None, cursor: str | None) -> None:
        wrong = {}
        if limit is not None and limit < 1:
            wrong["limit"] = ["Ensure this value is greater than or equal to 1."]
        if cursor is not None and not CURSOR_PATTERN.fullmatch(cursor):
            wrong["cursor"] = [INVALID_CURSOR]
        if wrong:
            with pytest.raises(ValidationFailed) as refused:
                asyncio.run(app.chats.list_chats(alice, limit, cursor))
            assert refused.value.fields == wrong
        else:
            page = asyncio.run(app.chats.list_chats(alice, limit, cursor))
            size = PAGE_DEFAULT if limit is None else min(limit, PAGE_MAX)
            assert len(page.items) <= size

    check()


def test_pages_follow_the_cursor_of_their_last_chat(app_and_chats: Any) -> None:
    app, alice, chats = app_and_chats
    for limit in range(1, len(chats) + 2):
        seen: list[Chat] = []
        cursor = None
        while True:
            page = asyncio.run(app.chats.list_chats(alice, limit, cursor))
            seen += page.items
            assert not page.has_newer
            if not page.has_older:
                break
            assert len(page.items) == limit
            cursor = chat_cursor(page.items[-1])
        assert seen == chats
    everything = asyncio.run(app.chats.list_chats(alice))
    assert list(everything.items) == chats
    assert not everything.has_older
