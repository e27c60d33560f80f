"""What the Redis notifier does beyond the contract: its one codec gives back every event
and revocation it is given; one pub/sub connection per process; what Redis could not
take during an outage is counted, and the latest event per chat published again once it
is back; a payload that is not ours is skipped; no password reaches a log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from adapters.redis import RedisNotifier
from adapters.redis.codec import (
    Undecodable,
    decode_event,
    decode_revocation,
    encode_event,
    encode_revocation,
)
from adapters.redis.notifier import where
from chatcore.events import (
    BY_KIND,
    ChatDeleted,
    ChatUpdated,
    Event,
    EventKind,
    MemberAdded,
    MemberRemoved,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
)
from chatcore.model import Chat, Message, Revocation, User, UserType
from private_redis import PrivateRedis, free_port, fresh_prefix

WAIT_SECONDS = 15.0  # a hang guard, never a measure of speed

ids = st.integers(1, 2**63 - 1)
texts = st.text(max_size=40)  # any code points, lone surrogates too
moments = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
)
users = st.builds(
    User,
    id=ids,
    username=texts,
    email=texts,
    user_type=st.sampled_from(UserType),
    date_joined=moments,
    is_admin=st.booleans(),
    is_active=st.booleans(),
)
messages = st.builds(
    Message,
    id=ids,
    chat_id=ids,
    sender=users,
    content=texts,
    timestamp=moments,
    client_id=st.none() | texts,
    edited_at=st.none() | moments,
)
chats = st.builds(
    Chat,
    id=ids,
    name=texts,
    created_at=moments,
    participants=st.lists(users, max_size=4).map(tuple),
    last_message=st.none() | messages,
    admins=st.lists(ids, max_size=4).map(tuple),
    seq=st.integers(0, 2**63 - 1),
)
seqs = st.integers(1, 2**63 - 1)
EVENTS: dict[EventKind, st.SearchStrategy[Event]] = {
    EventKind.MESSAGE: st.builds(MessagePosted, ids, seqs, messages),
    EventKind.MESSAGE_EDITED: st.builds(MessageEdited, ids, seqs, messages),
    EventKind.MESSAGE_DELETED: st.builds(MessageDeleted, ids, seqs, ids),
    EventKind.MEMBER_ADDED: st.builds(MemberAdded, ids, seqs, users, users),
    EventKind.MEMBER_REMOVED: st.builds(MemberRemoved, ids, seqs, users, users),
    EventKind.CHAT_UPDATED: st.builds(ChatUpdated, ids, seqs, chats),
    EventKind.CHAT_DELETED: st.builds(ChatDeleted, ids, seqs),
}


def test_the_round_trip_strategies_cover_every_kind_of_event() -> None:
    assert set(EVENTS) == set(EventKind) == set(BY_KIND)


@given(st.one_of(*EVENTS.values()))
def test_every_event_comes_back_equal_from_its_encoding(event: Event) -> None:
    decoded = decode_event(encode_event(event))
    assert decoded == event
    assert type(decoded) is type(event)


@given(st.builds(Revocation, ids, st.none() | texts, st.none() | texts))
def test_every_revocation_comes_back_equal_from_its_encoding(revocation: Revocation) -> None:
    assert decode_revocation(encode_revocation(revocation)) == revocation


@pytest.mark.parametrize(
    "payload",
    [b"", b"{", b"[]", b'{"kind":"typing"}', b'{"kind":"message","chat_id":1}', b"\xff"],
)
def test_what_is_not_an_event_is_refused_as_undecodable(payload: bytes) -> None:
    with pytest.raises(Undecodable):
        decode_event(payload)
    with pytest.raises(Undecodable):
        decode_revocation(payload)


def test_a_url_is_shown_without_its_password() -> None:
    assert where("redis://:hunter2@cache.internal:6380/1") == "cache.internal:6380"
    assert where("rediss://user:hunter2@cache.internal/0") == "cache.internal:6379"
    assert where("unix:///run/redis.sock?password=hunter2") == "/run/redis.sock"


async def eventually(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        while not condition():  # noqa: ASYNC110 - a state of another process, polled
            await asyncio.sleep(0.01)


def posted(chat_id: int, seq: int) -> MessagePosted:
    sender = User(1, "alice", "", UserType.STUDENT, datetime(2026, 1, 1, tzinfo=UTC))
    return MessagePosted(chat_id, seq, Message(seq, chat_id, sender, f"m{seq}", sender.date_joined))


def pubsub_connections(server: PrivateRedis) -> int:
    with redis.Redis.from_url(server.url) as client:
        return len(client.client_list(_type="pubsub"))


async def test_one_pub_sub_connection_per_process_whatever_the_chats(
    private_redis: PrivateRedis,
) -> None:
    before = pubsub_connections(private_redis)
    async with RedisNotifier(private_redis.url, fresh_prefix()) as notifier:
        for chat_id in range(1, 41):
            await notifier.subscribe(chat_id, lambda _: None)
        assert pubsub_connections(private_redis) == before + 1


async def test_a_payload_that_is_not_ours_is_skipped_and_counted(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = fresh_prefix()
    async with (
        RedisNotifier(private_redis.url, prefix) as a,
        RedisNotifier(private_redis.url, prefix) as b,
    ):
        heard: list[Event] = []
        await b.subscribe(1, heard.append)
        with redis.Redis.from_url(private_redis.url) as client:
            client.publish(f"{prefix}chat:1", b"0" * 32 + b" not json")
            client.publish(f"{prefix}revoked", b"0" * 32 + b' {"user_id": "x"}')
        await a.publish(posted(1, 1))
        await eventually(lambda: bool(heard))
        assert heard == [posted(1, 1)]
        assert isinstance(b, RedisNotifier)
        assert b.counts.undecodable == 2
        assert "not ours" in caplog.text


async def test_what_redis_could_not_take_is_counted_and_the_latest_per_chat_sent_again(
    private_redis: PrivateRedis,
) -> None:
    async with RedisNotifier(private_redis.url, fresh_prefix()) as notifier:
        assert notifier.counts.published == notifier.counts.unsent == 0
        heard: list[Event] = []
        await notifier.subscribe(1, heard.append)
        private_redis.kill()
        try:
            await eventually(lambda: not notifier.connected)
            for event in [posted(1, 1), posted(1, 2), posted(2, 1)]:
                await notifier.publish(event)  # never raises
            await notifier.revoke(Revocation(3))
            assert heard == [posted(1, 1), posted(1, 2)]  # this process's own: at once
            assert (notifier.counts.published, notifier.counts.unsent) == (0, 4)
        finally:
            private_redis.start()
        await eventually(lambda: notifier.counts.published == 2)  # chat 1's seq 2, chat 2's
        assert notifier.counts.reconnects == 1


async def test_a_redis_that_cannot_be_reached_fails_nothing_and_logs_no_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "chatcore.notifier")
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"  # nobody listens there
    async with RedisNotifier(url, fresh_prefix()) as notifier:
        assert not notifier.connected
        heard: list[Event] = []
        await notifier.subscribe(1, heard.append)  # returns at once
        await notifier.publish(posted(1, 1))
        await notifier.revoke(Revocation(1))
        assert heard == [posted(1, 1)]
        assert notifier.counts.unsent == 2
    assert "cannot be reached" in caplog.text
    assert "hunter2" not in caplog.text
