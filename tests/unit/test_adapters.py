"""The small adapters on their own: hashing, tokens, clocks. (The notifier has its
contract suite, tests/unit/notifier/.)"""

from __future__ import annotations

from datetime import UTC, timedelta

from adapters.clock import ManualClock, SystemClock
from adapters.hashing import PRODUCTION, Argon2Hasher
from adapters.tokens import SecretTokens


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
