"""TokenStore contract: stored by digest, revoked one at a time or all of a user's."""

from __future__ import annotations

from datetime import timedelta

from storage_support import Seed

from chatcore.model import TokenRecord, UserChanges
from chatcore.ports import Storage
from chatcore.roster import departure


async def test_tokens_are_found_by_digest_and_revoked(storage: Storage) -> None:
    seed = Seed(storage)
    ann, ben = await seed.user("ann"), await seed.user("ben")
    issued = seed.tick()
    ann_1 = TokenRecord("digest-ann-1", ann.id, issued, issued + timedelta(days=14))
    ann_2 = TokenRecord("digest-ann-2", ann.id, seed.tick(), seed.tick())
    bens = TokenRecord("digest-ben", ben.id, seed.tick(), seed.tick())
    for token in (ann_1, ann_2, bens):
        await storage.tokens.add(token)
    assert await storage.tokens.get("digest-ann-1") == ann_1
    assert await storage.tokens.get("unknown") is None

    await storage.tokens.delete("digest-ann-1")
    await storage.tokens.delete("unknown")  # revoking an unknown token is no error
    assert await storage.tokens.get("digest-ann-1") is None
    assert await storage.tokens.get("digest-ann-2") == ann_2


async def test_delete_for_user_revokes_all_of_theirs_and_counts_them(storage: Storage) -> None:
    seed = Seed(storage)
    ann, ben = await seed.user("ann"), await seed.user("ben")
    for number in range(3):
        await storage.tokens.add(TokenRecord(f"ann-{number}", ann.id, seed.tick(), seed.tick()))
    bens = TokenRecord("ben", ben.id, seed.tick(), seed.tick())
    await storage.tokens.add(bens)
    assert await storage.tokens.delete_for_user(ann.id) == 3
    assert await storage.tokens.delete_for_user(ann.id) == 0
    assert await storage.tokens.get("ann-0") is None
    assert await storage.tokens.get("ben") == bens


async def test_holder_reads_the_token_with_its_current_user(storage: Storage) -> None:
    seed = Seed(storage)
    ann = await seed.user("ann")
    token = TokenRecord("digest-ann", ann.id, seed.tick(), seed.tick() + timedelta(days=1))
    await storage.tokens.add(token)
    assert await storage.tokens.holder("digest-ann") == (token, ann)
    assert await storage.tokens.holder("unknown") is None
    edited = await storage.users.update(ann.id, UserChanges(is_active=False))
    assert await storage.tokens.holder("digest-ann") == (token, edited)
    await storage.users.delete(ann.id, departure(ann.id))
    assert await storage.tokens.holder("digest-ann") is None


async def test_change_password_revokes_all_but_the_kept_token_at_once(storage: Storage) -> None:
    seed = Seed(storage)
    ann, ben = await seed.user("ann"), await seed.user("ben")
    for name in ("ann-1", "ann-2", "ann-3"):
        await storage.tokens.add(TokenRecord(name, ann.id, seed.tick(), seed.tick()))
    bens = TokenRecord("ben", ben.id, seed.tick(), seed.tick())
    await storage.tokens.add(bens)

    assert await storage.users.change_password(ann.id, "new-hash", keep_digest="ann-2")
    assert await storage.tokens.get("ann-1") is None
    assert await storage.tokens.get("ann-3") is None
    assert await storage.tokens.get("ann-2") is not None
    assert await storage.tokens.get("ben") == bens
    found = await storage.users.password_hash("ann")
    assert found is not None
    assert found[1] == "new-hash"

    assert await storage.users.change_password(ann.id, "newer-hash")  # keep nothing
    assert await storage.tokens.get("ann-2") is None
    assert not await storage.users.change_password(999, "hash")


async def test_update_changes_the_email_and_nothing_else(storage: Storage) -> None:
    seed = Seed(storage)
    ann = await seed.user("ann")
    changed = await storage.users.update(ann.id, UserChanges(email="new@example.org"))
    assert changed is not None
    assert changed.email == "new@example.org"
    assert (changed.username, changed.user_type, changed.is_admin) == (
        ann.username,
        ann.user_type,
        ann.is_admin,
    )
    assert await storage.users.get(ann.id) == changed
