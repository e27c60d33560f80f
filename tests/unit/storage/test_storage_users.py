"""UserStore contract: ids, lookups by id and by username key, password hashes, search."""

from __future__ import annotations

import asyncio
from datetime import timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_support import START, Seed, password_hash

from chatcore.errors import Conflict
from chatcore.model import NewUser, User, UserType
from chatcore.ports import Storage
from chatcore.rules import username_key


def fullwidth(text: str) -> str:
    """The same ASCII letters as fullwidth forms, which NFKC folds back."""
    return "".join(chr(ord(char) + 0xFEE0) for char in text)


async def test_add_gives_growing_ids_and_keeps_every_field(storage: Storage) -> None:
    joined = START.astimezone(timezone(timedelta(hours=5, minutes=30))) + timedelta(microseconds=7)
    new = NewUser("Olga", "olga@example.com", UserType.OWNER, joined, is_admin=True)
    olga = await storage.users.add(new, "hash")
    bob = await Seed(storage).user("bob")
    assert bob.id > olga.id >= 1
    assert (olga.username, olga.email, olga.user_type) == (
        "Olga",
        "olga@example.com",
        UserType.OWNER,
    )
    assert olga.date_joined == joined
    assert olga.date_joined.utcoffset() is not None
    assert olga.is_admin
    assert olga.is_active
    assert not bob.is_admin


async def test_get_returns_the_stored_user_or_none(storage: Storage) -> None:
    alice = await Seed(storage).user("alice", is_admin=True)
    assert await storage.users.get(alice.id) == alice
    assert await storage.users.get(alice.id + 1) is None


async def test_get_many_gives_the_existing_ones_in_id_order(storage: Storage) -> None:
    seed = Seed(storage)
    a, b, c = [await seed.user(name) for name in ("a", "b", "c")]
    assert await storage.users.get_many([c.id, 999, a.id, c.id]) == [a, c]
    assert await storage.users.get_many([b.id]) == [b]
    assert await storage.users.get_many([]) == []
    assert await storage.users.get_many([998, 999]) == []


async def test_by_usernames_compares_by_key_in_id_order(storage: Storage) -> None:
    seed = Seed(storage)
    straße = await seed.user("Straße")
    kelvin = await seed.user("\u212aelvin")  # KELVIN SIGN: NFKC makes it K
    alice = await seed.user("Alice")
    found = await storage.users.by_usernames(["ALICE", "strasse", "kelvin", "nobody", "alice"])
    assert found == [straße, kelvin, alice]
    assert await storage.users.by_usernames([fullwidth("strasse")]) == [straße]
    assert await storage.users.by_usernames([]) == []


@pytest.mark.parametrize("taken", ["bob", "BOB", "Bob", fullwidth("bob")])
async def test_a_taken_username_is_a_conflict_and_stores_nothing(
    storage: Storage, taken: str
) -> None:
    seed = Seed(storage)
    bob = await seed.user("bob")
    with pytest.raises(Conflict):
        await seed.user(taken)
    assert await storage.users.by_usernames(["bob"]) == [bob]
    assert await storage.users.search("", None, 10) == [bob]


async def test_a_conflict_fails_only_its_own_add_among_concurrent_ones(storage: Storage) -> None:
    seed = Seed(storage)
    names = ["ann", "ANN", "ben", "Ann", "cy", "BEN"]
    outcomes = await asyncio.gather(*(seed.user(n) for n in names), return_exceptions=True)
    conflicts = [name for name, o in zip(names, outcomes, strict=True) if isinstance(o, Conflict)]
    added = [o for o in outcomes if not isinstance(o, BaseException)]
    stored = await storage.users.search("", None, 10)
    assert sorted(username_key(u.username) for u in stored) == ["ann", "ben", "cy"]
    assert len(conflicts) == 3
    assert stored == sorted(added, key=lambda user: user.id)


async def test_password_hash_is_found_by_key_and_can_be_replaced(storage: Storage) -> None:
    seed = Seed(storage)
    dora = await seed.user("Dora")
    await seed.user("eve")
    assert await storage.users.password_hash("dORA") == (dora, password_hash("Dora"))
    assert await storage.users.password_hash("nobody") is None
    await storage.users.set_password_hash(dora.id, "new-hash")
    assert await storage.users.password_hash("dora") == (dora, "new-hash")
    assert await storage.users.password_hash("eve") == (
        await storage.users.get(dora.id + 1),
        password_hash("eve"),
    )
    await storage.users.set_password_hash(999, "ignored")  # an unknown user: nothing happens


async def test_search_matches_substrings_ignoring_case_in_id_order(storage: Storage) -> None:
    seed = Seed(storage)
    users = [await seed.user(n) for n in ("Alice", "malik", "bob", "ALINE", "Straße")]
    alice, malik, bob, aline, strasse = users
    assert await storage.users.search("li", None, 10) == [alice, malik, aline]
    assert await storage.users.search("LI", None, 2) == [alice, malik]
    assert await storage.users.search("li", alice.id, 10) == [malik, aline]
    assert await storage.users.search("li", aline.id, 10) == []
    assert await storage.users.search("SS", None, 10) == [strasse]
    assert await storage.users.search("", bob.id, 10) == [aline, strasse]
    assert await storage.users.search("", None, 10) == users
    assert await storage.users.search("zz", None, 10) == []


NAMES = [
    "Alice",
    "ALIBABA",
    "malik",
    "Straße",
    "STRASSER",
    fullwidth("full"),
    "\u212aim",
    "kimi",
    "bo",
]


def test_search_agrees_with_a_list_model(storage: Storage) -> None:
    seed = Seed(storage)
    users = asyncio.run(_add_users(seed, NAMES))

    @given(
        text=st.text(alphabet="aAlLiIsSßkK\u212a" + fullwidth("fu"), max_size=3),
        after=st.none() | st.integers(0, len(NAMES) + 1),
        limit=st.integers(1, len(NAMES) + 1),
    )
    @settings(max_examples=150, deadline=None)
    def agrees(text: str, after: int | None, limit: int) -> None:
        needle = username_key(text)
        expected = [
            user
            for user in users
            if (after is None or user.id > after) and needle in username_key(user.username)
        ]
        assert asyncio.run(storage.users.search(text, after, limit)) == expected[:limit]

    agrees()


async def _add_users(seed: Seed, names: list[str]) -> list[User]:
    return [await seed.user(name) for name in names]


async def test_lookups_by_text_no_store_can_hold_find_nothing(storage: Storage) -> None:
    """A lone surrogate (JSON can carry one) is no stored name's key: no match, no error."""
    seed = Seed(storage)
    await seed.user("ann")
    lone = "ann\ud800"
    assert await storage.users.by_usernames([lone]) == []
    assert await storage.users.password_hash(lone) is None
    assert await storage.users.search(lone, None, 10) == []
    assert await storage.users.search("\udc00", None, 10) == []
