"""Throttling of logins, sign-ups and chat creation, over real stores (in memory and
SQLite), a manual clock and a hasher that counts what it verifies.

The hasher yields to the event loop inside ``verify``, as a real one off the loop does:
without an atomic check-and-count, every guess of a burst would be checked before any
was counted, and all of them would be hashed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.clock import ManualClock
from adapters.memory import InMemoryStorage
from adapters.sqlite import SqliteStorage
from chatcore import (
    AuthenticationFailed,
    ChatDraft,
    Registration,
    Services,
    Throttled,
    User,
    ValidationFailed,
)
from chatcore.deps import Policy
from chatcore.ports import Storage
from chatcore.throttle import Backoff
from entrypoints.bootstrap import bootstrap

PASSWORD = "correct horse battery"
WRONG = "wrong password"
HOUR = timedelta(hours=1)


class CountingHasher:
    """A PasswordHasher that keeps passwords in clear (tests only) and counts every
    verify; each verify lets other coroutines run first, like a real hash would."""

    def __init__(self) -> None:
        self.verified: list[str] = []

    async def hash(self, password: str) -> str:
        return "plain:" + password

    async def verify(self, password_hash: str, password: str) -> bool:
        self.verified.append(password)
        for _ in range(3):
            await asyncio.sleep(0)
        return password_hash == "plain:" + password

    def needs_rehash(self, password_hash: str) -> bool:
        return False


def build(policy: Policy, storage: Storage | None = None) -> tuple[Services, CountingHasher]:
    hasher = CountingHasher()
    app = bootstrap(storage=storage, hasher=hasher, clock=ManualClock(), policy=policy)
    return app, hasher


def clock_of(app: Services) -> ManualClock:
    clock = app.deps.clock
    assert isinstance(clock, ManualClock)
    return clock


async def register(app: Services, name: str = "alice") -> User:
    return (await app.accounts.register(Registration(name, PASSWORD, PASSWORD))).user


async def guess(app: Services, password: str, address: str | None, name: str = "alice") -> str:
    """One login: "ok", "failed" or "throttled"."""
    try:
        await app.accounts.login(name, password, address)
    except AuthenticationFailed:
        return "failed"
    except Throttled:
        return "throttled"
    return "ok"


@pytest.fixture(params=["memory", "sqlite"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "memory":
        yield InMemoryStorage()
        return
    opened = SqliteStorage(tmp_path / "chat.db").open()
    try:
        yield opened
    finally:
        opened.close()


# --- a concurrent burst -------------------------------------------------------------------


async def test_a_burst_of_20_wrong_guesses_against_3_hashes_at_most_3_and_never_logs_in(
    storage: Storage,
) -> None:
    app, hasher = build(Policy(login_free_failures=3), storage)
    await register(app)
    burst = [WRONG] * 20 + [PASSWORD]  # the right one is sent last, while the rest run
    outcomes = await asyncio.gather(*(guess(app, p, "10.0.0.1") for p in burst))
    assert len(hasher.verified) <= 3
    assert outcomes.count("failed") == len(hasher.verified)
    assert "ok" not in outcomes
    assert outcomes.count("throttled") == len(burst) - len(hasher.verified)


@settings(max_examples=60, deadline=None)
@given(
    free=st.integers(1, 6),
    wrong=st.integers(0, 25),
    right_at=st.integers(0, 30),
    addressed=st.booleans(),
)
def test_in_any_burst_only_the_first_free_guesses_are_hashed(
    free: int, wrong: int, right_at: int, addressed: bool
) -> None:
    """Guesses are decided in the order they reach the store: the right password logs
    in exactly when it is among the first ``free``, and nothing else is hashed."""

    async def run() -> None:
        app, hasher = build(Policy(login_free_failures=free))
        await register(app)
        burst = [WRONG] * wrong
        burst.insert(min(right_at, wrong), PASSWORD)
        address = "10.0.0.1" if addressed else None
        outcomes = await asyncio.gather(*(guess(app, p, address) for p in burst))
        assert len(hasher.verified) == min(free, len(burst))
        assert ("ok" in outcomes) == (min(right_at, wrong) < free)

    asyncio.run(run())


# --- no lockout of the owner --------------------------------------------------------------


async def test_the_owner_logs_in_from_their_own_address_after_a_strangers_burst(
    storage: Storage,
) -> None:
    policy = Policy(login_free_failures=3, login_failures_per_account=10)
    app, _ = build(policy, storage)
    await register(app)
    strangers = [f"203.0.113.{n}" for n in range(6)]
    for _ in range(2):  # two rounds, past the back-off: 6 x 5 failures, over 10
        for outcome in await asyncio.gather(
            *(guess(app, WRONG, address) for address in strangers for _ in range(5))
        ):
            assert outcome in ("failed", "throttled")
        clock_of(app).advance(timedelta(seconds=2))

    assert await guess(app, PASSWORD, "198.51.100.7") == "ok"
    assert await guess(app, PASSWORD, None) == "ok"  # an unknown address is one too
    # from a stranger's address, even the right password waits: the addresses are told apart
    assert await guess(app, PASSWORD, strangers[0]) == "throttled"
    # the price: past the account's bound, each fresh address still gets one guess
    assert await guess(app, WRONG, "192.0.2.1") == "failed"
    assert await guess(app, WRONG, "192.0.2.1") == "throttled"
    # and the owner still gets in after that, from home
    assert await guess(app, PASSWORD, "198.51.100.7") == "ok"


async def test_past_the_account_bound_an_address_that_failed_waits_for_the_count() -> None:
    policy = Policy(login_free_failures=100, login_failures_per_account=4)
    app, _ = build(policy)
    await register(app)
    for _ in range(4):
        assert await guess(app, WRONG, "203.0.113.1") == "failed"
        clock_of(app).advance(timedelta(minutes=1))
    with pytest.raises(Throttled) as caught:
        await app.accounts.login("alice", PASSWORD, "203.0.113.1")
    assert caught.value.retry_after == pytest.approx((HOUR - 4 * timedelta(minutes=1)).seconds)
    clock_of(app).advance(HOUR - timedelta(minutes=4))
    assert await guess(app, PASSWORD, "203.0.113.1") == "ok"


# --- the back-off -------------------------------------------------------------------------


async def test_the_back_off_doubles_up_to_its_cap_and_a_success_resets_it(
    storage: Storage,
) -> None:
    backoff = Backoff(3, timedelta(seconds=1), timedelta(seconds=60))
    policy = Policy(
        login_free_failures=backoff.free,
        login_backoff=backoff.first,
        login_backoff_max=backoff.longest,
    )
    app, hasher = build(policy, storage)
    await register(app)
    clock = clock_of(app)
    for _ in range(3):
        assert await guess(app, WRONG, "10.0.0.1") == "failed"
    waits = []
    for _ in range(9):
        with pytest.raises(Throttled) as caught:
            await app.accounts.login("alice", PASSWORD, "10.0.0.1")
        waits.append(caught.value.retry_after)
        clock.advance(timedelta(seconds=caught.value.retry_after))
        assert await guess(app, WRONG, "10.0.0.1") == "failed"
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert len(hasher.verified) == 12  # a refused guess is never hashed

    clock.advance(timedelta(seconds=60))
    assert await guess(app, PASSWORD, "10.0.0.1") == "ok"
    for _ in range(3):  # the typos are free again
        assert await guess(app, WRONG, "10.0.0.1") == "failed"
    assert await guess(app, WRONG, "10.0.0.1") == "throttled"


async def test_failures_are_forgotten_after_the_window() -> None:
    long_pause = timedelta(hours=5)
    policy = Policy(login_free_failures=2, login_backoff=long_pause, login_backoff_max=long_pause)
    app, _ = build(policy)
    await register(app)
    for _ in range(2):
        assert await guess(app, WRONG, "10.0.0.1") == "failed"
    clock_of(app).advance(HOUR - timedelta(microseconds=1))
    assert await guess(app, PASSWORD, "10.0.0.1") == "throttled"
    clock_of(app).advance(timedelta(microseconds=1))
    assert await guess(app, PASSWORD, "10.0.0.1") == "ok"


def test_the_back_off_schedule() -> None:
    backoff = Backoff(5, timedelta(seconds=1), timedelta(minutes=15))
    assert [backoff.delay(n) for n in range(5)] == [None] * 5
    assert [backoff.delay(n) for n in (5, 6, 7, 14, 15, 100, 10**9)] == [
        timedelta(seconds=s) for s in (1, 2, 4, 512, 900, 900, 900)
    ]


# --- what a success clears ----------------------------------------------------------------


async def test_successes_never_count_against_an_account_or_an_address(storage: Storage) -> None:
    policy = Policy(login_failures_per_account=2, login_failures_per_address=2)
    app, _ = build(policy, storage)
    await register(app)
    assert [await guess(app, PASSWORD, "10.0.0.1") for _ in range(10)] == ["ok"] * 10
    assert await guess(app, WRONG, "10.0.0.1") == "failed"
    assert await guess(app, WRONG, "10.0.0.1") == "failed"
    assert await guess(app, PASSWORD, "10.0.0.1") == "throttled"


async def test_a_success_does_not_reset_an_addresss_count_over_other_accounts() -> None:
    """Else a sprayer would log in to an account of their own between guesses."""
    app, _ = build(Policy(login_failures_per_address=4))
    await register(app, "mallory")
    for name in ("a", "b", "c"):
        assert await guess(app, WRONG, "10.0.0.9", name) == "failed"
    assert await guess(app, PASSWORD, "10.0.0.9", "mallory") == "ok"
    assert await guess(app, WRONG, "10.0.0.9", "d") == "failed"
    assert await guess(app, WRONG, "10.0.0.9", "e") == "throttled"
    assert await guess(app, PASSWORD, "10.0.0.9", "mallory") == "throttled"
    assert await guess(app, WRONG, "10.0.0.10", "e") == "failed"


async def test_the_owners_success_does_not_reset_the_accounts_count() -> None:
    """Else each of the owner's logins would hand strangers a fresh set of guesses."""
    app, _ = build(Policy(login_free_failures=100, login_failures_per_account=3))
    await register(app)
    for _ in range(3):
        assert await guess(app, WRONG, "203.0.113.1") == "failed"
    assert await guess(app, PASSWORD, "198.51.100.7") == "ok"
    assert await guess(app, WRONG, "203.0.113.1") == "throttled"


async def test_an_unknown_username_is_throttled_like_a_real_one() -> None:
    app, hasher = build(Policy(login_free_failures=3))
    await register(app)
    names = ["ghost", "x" * 500, "\ud800", "\x00"]
    for name in names:
        outcomes = [await guess(app, WRONG, "10.0.0.1", name) for _ in range(5)]
        assert outcomes == ["failed"] * 3 + ["throttled"] * 2, name
    assert len(hasher.verified) == 3 * len(names)
    # one account each, whatever the spelling: names compare ignoring case, and every
    # name longer than the longest valid one is the same unknown one
    for same in ("GHOST", "x" * 501):
        assert await guess(app, WRONG, "10.0.0.1", same) == "throttled"


# --- any interleaving ---------------------------------------------------------------------

PROPERTY_POLICY = Policy(
    login_free_failures=3,
    login_backoff=timedelta(seconds=1),
    login_backoff_max=timedelta(seconds=60),
    login_failures_per_account=10,
)
rounds = st.lists(
    st.tuples(
        st.sampled_from(["home", "s1", "s2", "s3", "s4"]),
        st.integers(1, 8),  # guesses sent at once (the owner sends one)
        st.integers(0, 1200),  # seconds until the next round
    ),
    max_size=40,
)


@settings(max_examples=100, deadline=None)
@given(rounds=rounds)
def test_no_interleaving_locks_the_owner_out_or_passes_the_bounds(
    rounds: list[tuple[str, int, int]],
) -> None:
    """Strangers guess wrong from their addresses, the owner right from home, in bursts
    at any pace. The owner always gets in; in any window the account's failures stay
    within its bound plus one per stranger address; each address keeps the back-off."""
    policy = PROPERTY_POLICY
    backoff = Backoff(policy.login_free_failures, policy.login_backoff, policy.login_backoff_max)

    async def run() -> None:
        app, hasher = build(policy)
        await register(app)
        clock = clock_of(app)
        failures: list[tuple[datetime, str]] = []
        for address, burst, pause in rounds:
            size = 1 if address == "home" else burst
            password = PASSWORD if address == "home" else WRONG
            outcomes = await asyncio.gather(*(guess(app, password, address) for _ in range(size)))
            if address == "home":
                assert outcomes == ["ok"] * size
            failures += [(clock.now(), address)] * outcomes.count("failed")
            clock.advance(timedelta(seconds=pause))
        successes = sum(address == "home" for address, _, _ in rounds)
        assert len(hasher.verified) == len(failures) + successes
        window = policy.login_failure_window
        for start, _ in failures:
            inside = [a for t, a in failures if start <= t < start + window]
            assert len(inside) <= policy.login_failures_per_account + len(set(inside))
        for address in {a for _, a in failures}:
            times = [t for t, a in failures if a == address]
            for n, moment in enumerate(times):
                before = [t for t in times[:n] if t > moment - window]
                delay = backoff.delay(len(before))
                if delay is not None:
                    assert moment - before[-1] >= delay

    asyncio.run(run())


# --- sign-ups and chats -------------------------------------------------------------------


async def test_sign_ups_are_limited_per_address(storage: Storage) -> None:
    app, _ = build(Policy(registrations_per_address=3), storage)
    clock = clock_of(app)
    waits: list[float] = []

    async def sign_up(name: str, address: str | None, password: str = PASSWORD) -> str:
        try:
            form = Registration(name, password, password)
            await app.accounts.register(form, address=address)
        except Throttled as refused:
            waits.append(refused.retry_after)
            return "throttled"
        except ValidationFailed:
            return "invalid"
        return "ok"

    outcomes = await asyncio.gather(*(sign_up(f"u{n}", "10.0.0.1") for n in range(6)))
    assert sorted(outcomes) == ["ok"] * 3 + ["throttled"] * 3
    assert await sign_up("v0", "10.0.0.2") == "ok"  # another address
    assert await sign_up("v1", None) == "ok"  # the command line, a library caller
    assert await sign_up("u0", "10.0.0.3") == "invalid"  # a taken name still counts
    assert await sign_up("bad", "10.0.0.4", "short") == "invalid"  # an invalid form does not
    outcomes = await asyncio.gather(*(sign_up(f"w{n}", "10.0.0.4") for n in range(4)))
    assert sorted(outcomes) == ["ok"] * 3 + ["throttled"]
    clock.advance(HOUR - timedelta(seconds=1))
    assert await sign_up("x0", "10.0.0.1") == "throttled"
    clock.advance(timedelta(seconds=1))
    assert await sign_up("x1", "10.0.0.1") == "ok"
    assert waits == [3600] * 4 + [1]


async def test_chat_creation_is_limited_per_user(storage: Storage) -> None:
    app, _ = build(Policy(chats_per_user=3), storage)
    alice, bob = await register(app, "alice"), await register(app, "bob")
    clock = clock_of(app)
    waits: list[float] = []

    async def create(user: User, name: str = "a chat") -> str:
        try:
            await app.chats.create_chat(user, ChatDraft(name))
        except Throttled as refused:
            waits.append(refused.retry_after)
            return "throttled"
        except ValidationFailed:
            return "invalid"
        return "ok"

    assert await create(alice, "") == "invalid"  # not counted
    outcomes = await asyncio.gather(*(create(alice) for _ in range(5)))
    assert sorted(outcomes) == ["ok"] * 3 + ["throttled"] * 2
    assert (await app.deps.storage.counts()).chats == 3
    assert await create(bob) == "ok"
    assert waits == [3600, 3600]
    clock.advance(HOUR)
    assert await create(alice) == "ok"
