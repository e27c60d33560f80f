"""Storage contract for the operator's commands: expired tokens deleted, ended attempts
pruned, and a whole store dumped and loaded into an empty one, ids kept."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storage_support import START, Seed, everything_in, ids, password_hash

from adapters.memory import InMemoryStorage
from adapters.sqlite import SqliteStorage
from chatcore.errors import Conflict
from chatcore.model import (
    Archive,
    LastIds,
    NewMessage,
    StoredChat,
    StoredMessage,
    StoredUser,
    TokenRecord,
    User,
    UserChanges,
    UserType,
)
from chatcore.operator import check_archive
from chatcore.ports import Storage, Tally
from chatcore.roster import departure

TINY = timedelta(microseconds=1)
HOUR = timedelta(hours=1)
# Around "now": long gone, just gone, exactly now (gone: expiry is exclusive), just alive.
OFFSETS = [-timedelta(days=40), -TINY, timedelta(0), TINY, timedelta(days=1)]


async def test_delete_expired_removes_exactly_the_tokens_at_or_past_their_expiry(
    storage: Storage,
) -> None:
    seed = Seed(storage)
    ann = await seed.user("ann")
    now = START + timedelta(days=100)
    tokens = [TokenRecord(f"d{n}", ann.id, START, now + offset) for n, offset in enumerate(OFFSETS)]
    for token in tokens:
        await storage.tokens.add(token)
    assert await storage.tokens.delete_expired(now) == 3
    assert [await storage.tokens.get(t.digest) for t in tokens] == [None, None, None, *tokens[3:]]
    assert await storage.tokens.delete_expired(now) == 0


def admit(tallies: Sequence[Tally]) -> float | None:
    return None


def refuse(tallies: Sequence[Tally]) -> float | None:
    return 1.0


async def test_prune_forgets_exactly_the_attempts_whose_window_ended(storage: Storage) -> None:
    now = START + timedelta(days=1)
    at = now - timedelta(hours=2)  # every hit at one moment: none forgets another's
    for number, offset in enumerate([-timedelta(hours=1), -TINY, timedelta(0), TINY, HOUR]):
        # its window ends at now + offset
        await storage.attempts.hit([f"k{number}", "shared"], at, 2 * HOUR + offset, admit)
    assert await storage.attempts.prune(now) == 6  # three attempts, each under two keys
    assert await storage.attempts.prune(now) == 0
    seen: list[Tally] = []

    def look(tallies: Sequence[Tally]) -> float | None:
        seen.extend(tallies)
        return 1.0

    # A refused hit just before any window ends shows what is held, and counts nothing.
    await storage.attempts.hit(["k0", "k2", "k3", "k4", "shared"], now, HOUR, look)
    assert [t.count for t in seen] == [0, 0, 1, 1, 2]


# --- dump and load ---------------------------------------------------------------------


async def _populated(storage: Storage) -> Seed:
    """Users of every kind, chats with and without messages, client ids, and deletions
    (of a chat's last message, of a user, of the newest chat) behind it."""
    seed = Seed(storage)
    ann = await seed.user("Ann", is_admin=True)
    ben, cy, gone = await seed.user("ben"), await seed.user("cy"), await seed.user("gone")
    await storage.users.update(cy.id, UserChanges(is_active=False, user_type=UserType.STAFF))
    busy = await seed.chat(ann, ben, cy, gone, name="busy")
    quiet = await seed.chat(ann, ben, name="quiet")
    await seed.chat(ben, name="empty")
    for number in range(5):
        await seed.send(busy, [ann, ben, gone][number % 3], f"m{number}", client_id=f"c{number}")
    await seed.send(quiet, ben, "only one")
    last = await seed.send(busy, ann, "deleted last")
    await storage.messages.delete(last.id)
    await storage.users.delete(gone.id, departure(gone.id))
    doomed = await seed.chat(ann, name="doomed")
    await storage.chats.delete(doomed.id)
    await storage.tokens.add(TokenRecord("not exported", ann.id, START, START + timedelta(1)))
    return seed


@contextlib.asynccontextmanager
async def fresh(kind: str) -> AsyncIterator[Storage]:
    if kind == "memory":
        yield InMemoryStorage()
        return
    with tempfile.TemporaryDirectory() as folder:
        async with SqliteStorage(Path(folder) / "fresh.db") as storage:
            yield storage


async def reads(storage: Storage, users: Sequence[User]) -> object:
    """What the use cases can read: users, chats (with last messages and admins), chat
    lists in activity order, every message of every chat. Not the chats' seqs: a loaded
    chat's event stream starts anew (one event a message), so its seq may differ."""
    chats = await storage.chats.list_all(None, 1000)
    return (
        await storage.users.get_many([u.id for u in users]),
        [attrs.evolve(chat, seq=0) for chat in chats],
        [ids(await storage.chats.for_user(u.id, 1000)) for u in users],
        [await everything_in(storage, chat) for chat in chats],
        [await storage.users.password_hash(u.username) for u in users],
    )


@pytest.mark.parametrize("target", ["memory", "sqlite"])
async def test_a_loaded_dump_reads_the_same_and_ids_go_on_after_it(
    storage: Storage, target: str
) -> None:
    await _populated(storage)
    archive = await storage.dump()
    assert check_archive(archive) == []
    assert [s.user.username for s in archive.users] == ["Ann", "ben", "cy"]
    assert archive.last_ids == LastIds(4, 4, 7)  # deleted rows counted: ids not reused
    users = [s.user for s in archive.users]
    async with fresh(target) as copy:
        await copy.load(archive)
        assert await copy.dump() == archive
        assert await reads(copy, users) == await reads(storage, users)
        assert await copy.tokens.get("not exported") is None
        # Ids continue after the archive's last ids, in both stores alike.
        for store in (storage, copy):
            seed = Seed(store, START + timedelta(days=1))
            new_user = await seed.user("newcomer")
            chat = await seed.chat(users[0], new_user)
            message = await seed.send(chat, new_user)
            assert (new_user.id, chat.id, message.id) == (5, 5, 8)
        # A client id is still one message per sender and chat after the load.
        busy = (await copy.chats.list_all(None, 1))[0]
        again = NewMessage(busy.id, users[0].id, "retry", START + timedelta(days=2), "c0")
        original, created = await copy.messages.add(again)
        assert not created
        assert original.content == "m0"


async def test_load_refuses_a_store_that_holds_anything_and_stores_nothing(
    storage: Storage,
) -> None:
    source = InMemoryStorage()
    await _populated(source)
    archive = await source.dump()
    seed = Seed(storage)
    await seed.user("already here")
    before = await storage.dump()
    with pytest.raises(Conflict):
        await storage.load(archive)
    assert await storage.dump() == before


async def test_an_empty_archive_loads_as_an_empty_store(storage: Storage) -> None:
    await storage.load(Archive(LastIds()))
    assert await storage.dump() == Archive(LastIds())
    assert (await Seed(storage).user("first")).id == 1


# Any consistent archive: users, chats of some of them, messages by their members.
@st.composite
def archives(draw: st.DrawFn) -> Archive:
    user_ids = sorted(draw(st.sets(st.integers(1, 60), min_size=1, max_size=6)))
    users = tuple(
        StoredUser(
            User(
                user_id,
                f"user{user_id}",
                draw(st.sampled_from(["", f"u{user_id}@example.com"])),
                draw(st.sampled_from(list(UserType))),
                START + timedelta(seconds=user_id, microseconds=draw(st.integers(0, 999999))),
                is_admin=draw(st.booleans()),
                is_active=draw(st.booleans()),
            ),
            password_hash(f"user{user_id}"),
        )
        for user_id in user_ids
    )
    chat_ids = sorted(draw(st.sets(st.integers(1, 60), max_size=4)))
    chats = []
    for chat_id in chat_ids:
        members = sorted(draw(st.sets(st.sampled_from(user_ids), max_size=4)))
        # A chat with participants has at least one admin among them.
        admins = sorted(draw(st.sets(st.sampled_from(members), min_size=1))) if members else []
        chats.append(
            StoredChat(
                chat_id,
                draw(st.text(min_size=1, max_size=8).filter(lambda s: "\x00" not in s)),
                START + timedelta(minutes=chat_id),
                tuple(members),
                tuple(admins),
            )
        )
    senders = [(c.id, u) for c in chats for u in c.participant_ids]
    messages = []
    if senders:
        message_ids = sorted(draw(st.sets(st.integers(1, 500), max_size=12)))
        for number, message_id in enumerate(message_ids):
            chat_id, sender_id = draw(st.sampled_from(senders))
            messages.append(
                StoredMessage(
                    message_id,
                    chat_id,
                    sender_id,
                    draw(st.text(min_size=1, max_size=20)),
                    START + timedelta(hours=1, seconds=draw(st.integers(0, 10**6))),
                    draw(st.one_of(st.none(), st.just(f"client-{number}"))),
                )
            )
    extra = draw(st.integers(0, 5))
    last = LastIds(
        max(user_ids) + extra,
        max(chat_ids, default=0) + draw(st.integers(0, 5)),
        max((m.id for m in messages), default=0) + extra,
    )
    return Archive(last, users, tuple(chats), tuple(messages))


def _ordered_members(archive: Archive) -> Archive:
    return attrs.evolve(
        archive,
        chats=tuple(
            attrs.evolve(c, participant_ids=tuple(sorted(c.participant_ids))) for c in archive.chats
        ),
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(archive=archives(), kind=st.sampled_from(["memory", "sqlite"]))
def test_any_consistent_archive_loads_and_dumps_back_unchanged(archive: Archive, kind: str) -> None:
    assert check_archive(archive) == []

    async def run() -> None:
        async with fresh(kind) as storage:
            await storage.load(archive)
            assert await storage.dump() == _ordered_members(archive)
            for chat in archive.chats:
                found = await storage.chats.get(chat.id)
                assert found is not None
                mine = [m for m in archive.messages if m.chat_id == chat.id]
                last = found.last_message
                assert (None if last is None else last.id) == (mine[-1].id if mine else None)

    asyncio.run(run())
