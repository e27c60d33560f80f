"""AttemptStore contract: attempts counted per key in a sliding window, tallied and
counted in one atomic step, forgotten when their window ends."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from storage_support import START

from adapters.memory import InMemoryAttemptStore, InMemoryStorage
from adapters.sqlite import SqliteStorage
from chatcore.ports import AttemptStore, Storage, Tally
from chatcore.throttle import bound

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def admit(tallies: Sequence[Tally]) -> float | None:
    return None


def refuse(tallies: Sequence[Tally]) -> float | None:
    return 7.0


class Seen:
    """A rule that admits (or not), remembering the tallies it was shown."""

    def __init__(self, admits: bool = True) -> None:
        self.admits = admits
        self.tallies: list[Tally] = []

    def __call__(self, tallies: Sequence[Tally]) -> float | None:
        self.tallies = list(tallies)
        return None if self.admits else 1.0


async def tallies(store: AttemptStore, keys: Sequence[str], at: datetime) -> list[Tally]:
    """What the store holds for the keys at ``at`` (a refused hit: it counts nothing)."""
    seen = Seen(admits=False)
    await store.hit(keys, at, HOUR, seen)
    return seen.tallies


async def test_an_admitted_hit_counts_under_every_key(storage: Storage) -> None:
    attempts = storage.attempts
    assert await attempts.hit(["a", "b"], START + MINUTE, HOUR, admit) is None
    assert await attempts.hit(["a"], START + 3 * MINUTE, HOUR, admit) is None
    assert await attempts.hit(["a"], START + 2 * MINUTE, HOUR, admit) is None
    assert await tallies(attempts, ["a", "b", "c"], START + 4 * MINUTE) == [
        Tally(3, START + MINUTE, START + 3 * MINUTE),
        Tally(1, START + MINUTE, START + MINUTE),
        Tally(),
    ]


async def test_the_rule_sees_the_tallies_before_the_hit_and_a_refusal_counts_nothing(
    storage: Storage,
) -> None:
    attempts = storage.attempts
    seen = Seen()
    await attempts.hit(["a", "b"], START, HOUR, seen)
    assert seen.tallies == [Tally(), Tally()]
    assert await attempts.hit(["a", "b"], START + MINUTE, HOUR, refuse) == 7.0
    await attempts.hit(["b", "a"], START + 2 * MINUTE, HOUR, seen)
    assert seen.tallies == [Tally(1, START, START), Tally(1, START, START)]


async def test_an_attempt_counts_until_its_window_ends(storage: Storage) -> None:
    attempts = storage.attempts
    await attempts.hit(["k"], START, 10 * MINUTE, admit)
    await attempts.hit(["k"], START + 5 * MINUTE, 10 * MINUTE, admit)
    assert await tallies(attempts, ["k"], START + 10 * MINUTE - timedelta(microseconds=1)) == [
        Tally(2, START, START + 5 * MINUTE)
    ]
    assert await tallies(attempts, ["k"], START + 10 * MINUTE) == [
        Tally(1, START + 5 * MINUTE, START + 5 * MINUTE)
    ]
    assert await tallies(attempts, ["k"], START + 15 * MINUTE) == [Tally()]


async def test_release_uncounts_one_attempt_at_that_moment(storage: Storage) -> None:
    attempts = storage.attempts
    for _ in range(2):
        await attempts.hit(["a", "b"], START, HOUR, admit)
    await attempts.hit(["a"], START + MINUTE, HOUR, admit)
    await attempts.release(["a", "b"], START)
    await attempts.release(["a", "never seen"], START + 2 * MINUTE)
    assert await tallies(attempts, ["a", "b"], START + 3 * MINUTE) == [
        Tally(2, START, START + MINUTE),
        Tally(1, START, START),
    ]


async def test_clear_forgets_one_key(storage: Storage) -> None:
    attempts = storage.attempts
    await attempts.hit(["a", "b"], START, HOUR, admit)
    await attempts.clear("a")
    await attempts.clear("never seen")
    assert await tallies(attempts, ["a", "b"], START + MINUTE) == [Tally(), Tally(1, START, START)]


async def test_any_text_is_a_key_of_its_own(storage: Storage) -> None:
    """Keys hold what someone typed, lone surrogates included; each stays distinct."""
    attempts = storage.attempts
    keys = ["user:ann", "user:ann\ud800", "user:ann\udc00", "user:ann\\ud800", "user:ann\x00"]
    for number, key in enumerate(keys, start=1):
        for _ in range(number):
            await attempts.hit([key], START, HOUR, admit)
    assert [t.count for t in await tallies(attempts, keys, START)] == [1, 2, 3, 4, 5]
    await attempts.clear("user:ann\ud800")
    assert [t.count for t in await tallies(attempts, keys, START)] == [1, 0, 3, 4, 5]


async def test_concurrent_hits_admit_exactly_the_limit(storage: Storage) -> None:
    """The whole burst is in flight at once; the tally and the count are one step, so
    no two hits see the same count."""
    limit = 7

    def rule(tallies: Sequence[Tally]) -> float | None:
        return bound(tallies[0], limit, HOUR, START)

    outcomes = await asyncio.gather(
        *(storage.attempts.hit(["k", f"own{n}"], START, HOUR, rule) for n in range(50))
    )
    assert sum(wait is None for wait in outcomes) == limit
    assert [t.count for t in await tallies(storage.attempts, ["k"], START)] == [limit]


async def test_memory_store_forgets_ended_attempts_of_every_key() -> None:
    """Keys that are never hit again (a sprayed username) do not stay behind."""
    store = InMemoryStorage().attempts
    assert isinstance(store, InMemoryAttemptStore)
    for n in range(100):
        await store.hit([f"once{n}"], START, MINUTE, admit)
    await store.hit(["later"], START + MINUTE, MINUTE, admit)
    assert set(store._attempts) == {"later"}
    assert len(store._ends) == 1


# --- the store against a model, over any sequence of steps --------------------------------

KEYS = ["a", "b", "c"]
steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("hit"),
            st.lists(st.sampled_from(KEYS), min_size=1, max_size=3, unique=True),
            st.booleans(),  # admit?
            st.sampled_from([MINUTE, 5 * MINUTE]),
        ),
        st.tuples(st.just("release"), st.lists(st.sampled_from(KEYS), max_size=3, unique=True)),
        st.tuples(st.just("clear"), st.sampled_from(KEYS)),
        st.tuples(st.just("advance"), st.integers(0, 400)),  # seconds
    ),
    max_size=40,
)


def _tally(entries: list[tuple[datetime, datetime]]) -> Tally:
    if not entries:
        return Tally()
    return Tally(len(entries), min(entries)[0], max(entries)[0])


async def _run_against_model(store: AttemptStore, program: list[tuple[object, ...]]) -> None:
    model: dict[str, list[tuple[datetime, datetime]]] = {key: [] for key in KEYS}
    now = START
    for step in program:
        match step:
            case ("hit", keys, admits, window):
                assert isinstance(keys, list)
                assert isinstance(window, timedelta)
                for key in KEYS:
                    model[key] = [e for e in model[key] if e[1] > now]
                expected = [_tally(model[key]) for key in keys]
                seen = Seen(bool(admits))
                await store.hit(keys, now, window, seen)
                assert seen.tallies == expected
                if admits:
                    for key in keys:
                        model[key].append((now, now + window))
            case ("release", keys):
                assert isinstance(keys, list)
                await store.release(keys, now)
                for key in keys:
                    at_now = [e for e in model[key] if e[0] == now]
                    if at_now:  # the one whose window ends first, as the port says
                        model[key].remove(min(at_now, key=lambda entry: entry[1]))
            case ("clear", key):
                assert isinstance(key, str)
                await store.clear(key)
                model[key] = []
            case ("advance", seconds):
                assert isinstance(seconds, int)
                now += timedelta(seconds=seconds)


@settings(max_examples=150, deadline=None)
@given(program=steps)
def test_memory_store_matches_the_model(program: list[tuple[object, ...]]) -> None:
    asyncio.run(_run_against_model(InMemoryStorage().attempts, program))


@settings(max_examples=40, deadline=None)
@given(program=steps)
def test_sqlite_store_matches_the_model(program: list[tuple[object, ...]]) -> None:
    with tempfile.TemporaryDirectory() as folder:

        async def run() -> None:
            async with SqliteStorage(Path(folder) / "chat.db") as storage:
                await _run_against_model(storage.attempts, program)

        asyncio.run(run())
