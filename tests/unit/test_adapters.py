"""The small adapters on their own: hashing, tokens, clocks, the in-process notifier."""

from __future__ import annotations

from datetime import UTC, timedelta

from adapters.clock import ManualClock, SystemClock
from adapters.hashing import PRODUCTION, Argon2Hasher
from adapters.memory import LocalNotifier
from adapters.tokens import SecretTokens
from chatcore import Message, User, UserType


async def test_production_hashes_are_argon2id_with_the_stated_parameters() -> None:
    hasher = Argon2Hasher(PRODUCTION)
    try:
        hashed = await hasher.hash("correct horse battery")
        assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
        assert await hasher.verify(hashed, "correct horse battery")
        assert not await hasher.verify(hashed, "wrong")
        assert not hasher.needs_rehash(hashed)
    finally:
        hasher.close()


async def test_a_malformed_hash_never_verifies_and_asks_for_a_rehash(hasher: Argon2Hasher) -> None:
    assert not await hasher.verify("not a hash", "anything")
    assert hasher.needs_rehash("not a hash")


def test_tokens_are_random_and_stored_under_a_sha256_digest() -> None:
    tokens = SecretTokens()
    one, two = tokens.new(), tokens.new()
    assert one != two
    assert len(one) >= 43  # 32 bytes, urlsafe base64
    assert tokens.digest(one) == tokens.digest(one) != tokens.digest(two)
    assert len(tokens.digest(one)) == 64
    assert one not in tokens.digest(one)


def test_clocks_tell_aware_utc_time() -> None:
    assert SystemClock().now().tzinfo is UTC
    clock = ManualClock()
    start = clock.now()
    clock.advance(timedelta(seconds=5))
    assert clock.now() - start == timedelta(seconds=5)


def message(chat_id: int, message_id: int) -> Message:
    now = ManualClock().now()
    sender = User(1, "alice", "", UserType.STUDENT, now)
    return Message(message_id, chat_id, sender, "hi", now)


async def test_notifier_delivers_in_order_to_each_listener_of_the_chat() -> None:
    notifier = LocalNotifier()
    first: list[int] = []
    second: list[int] = []
    other: list[int] = []
    notifier.subscribe(1, lambda m: first.append(m.id))
    notifier.subscribe(1, lambda m: second.append(m.id))
    notifier.subscribe(2, lambda m: other.append(m.id))
    for i in range(1, 4):
        await notifier.publish(message(1, i))
    assert first == second == [1, 2, 3]
    assert other == []


async def test_a_failing_listener_does_not_starve_the_others() -> None:
    notifier = LocalNotifier()
    heard: list[int] = []

    def broken(_: Message) -> None:
        raise RuntimeError("boom")

    notifier.subscribe(1, broken)
    notifier.subscribe(1, lambda m: heard.append(m.id))
    await notifier.publish(message(1, 7))
    assert heard == [7]


async def test_unsubscribed_listeners_hear_nothing_more() -> None:
    notifier = LocalNotifier()
    heard: list[int] = []
    stop = notifier.subscribe(1, lambda m: heard.append(m.id))
    await notifier.publish(message(1, 1))
    stop()
    stop()  # twice is harmless
    await notifier.publish(message(1, 2))
    assert heard == [1]
