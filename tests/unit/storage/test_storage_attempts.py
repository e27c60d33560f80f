"""AttemptStore contract: failed attempts counted per key inside a window."""

from __future__ import annotations

from datetime import timedelta

from storage_support import START

from chatcore.ports import Storage

MINUTE = timedelta(minutes=1)


async def test_attempts_are_counted_per_key_after_a_start(storage: Storage) -> None:
    attempts = storage.attempts
    assert await attempts.since("user:ann", START) == (0, None)
    for minutes in (1, 2, 3):
        await attempts.record("user:ann", START + minutes * MINUTE, START)
    await attempts.record("ip:10.0.0.1", START + MINUTE, START)
    assert await attempts.since("user:ann", START) == (3, START + MINUTE)
    assert await attempts.since("user:ann", START + MINUTE) == (2, START + 2 * MINUTE)
    assert await attempts.since("user:ann", START + 3 * MINUTE) == (0, None)
    assert await attempts.since("ip:10.0.0.1", START) == (1, START + MINUTE)


async def test_recording_may_forget_what_is_older_than_asked(storage: Storage) -> None:
    attempts = storage.attempts
    await attempts.record("k", START + MINUTE, START)
    await attempts.record("k", START + 2 * MINUTE, START)
    await attempts.record("k", START + 10 * MINUTE, START + 5 * MINUTE)
    assert await attempts.since("k", START + 5 * MINUTE) == (1, START + 10 * MINUTE)
    count, _ = await attempts.since("k", START)
    assert count in (1, 3)  # forgetting is allowed, not required


async def test_clear_forgets_one_key(storage: Storage) -> None:
    attempts = storage.attempts
    await attempts.record("a", START + MINUTE, START)
    await attempts.record("b", START + MINUTE, START)
    await attempts.clear("a")
    await attempts.clear("never seen")
    assert await attempts.since("a", START) == (0, None)
    assert await attempts.since("b", START) == (1, START + MINUTE)


async def test_any_text_is_a_key_of_its_own(storage: Storage) -> None:
    """Keys hold what someone typed, lone surrogates included; each stays distinct."""
    attempts = storage.attempts
    keys = ["user:ann", "user:ann\ud800", "user:ann\udc00", "user:ann\\ud800"]
    for number, key in enumerate(keys, start=1):
        for _ in range(number):
            await attempts.record(key, START + MINUTE, START)
    assert [(await attempts.since(key, START))[0] for key in keys] == [1, 2, 3, 4]
    await attempts.clear("user:ann\ud800")
    assert [(await attempts.since(key, START))[0] for key in keys] == [1, 0, 3, 4]
