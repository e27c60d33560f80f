"""Storage.ping, as every adapter must answer it while open (the readiness check's
probe): it returns, to many callers at once, and changes nothing. What makes it raise is
each adapter's own fault (test_storage_ping_sqlite.py for SQLite's)."""

from __future__ import annotations

import asyncio

from storage_support import Seed

from chatcore.ports import Storage

GUARD = 10.0  # a hang guard for a broken adapter, not a speed requirement


async def test_an_open_storage_answers_pings_from_many_callers_at_once(storage: Storage) -> None:
    async with asyncio.timeout(GUARD):
        results = await asyncio.gather(*(storage.ping() for _ in range(20)))
    assert results == [None] * 20


async def test_a_ping_changes_nothing_and_the_storage_serves_on(storage: Storage) -> None:
    seed = Seed(storage)
    alice = await seed.user("alice")
    before = (await storage.counts(), await storage.dump())
    async with asyncio.timeout(GUARD):
        await storage.ping()
    assert (await storage.counts(), await storage.dump()) == before
    bob = await seed.user("bob")  # and writes still go through after it
    assert [u.id for u in await storage.users.get_many([alice.id, bob.id])] == [alice.id, bob.id]
