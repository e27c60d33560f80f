"""Delivery by seq on a chat socket, over the in-memory wiring and a socket that records
what it is sent (DESIGN.md, "Events, ordering and scale-out"): every kind of event
reaches every participant's socket once and in seq order; a notification that comes
late, twice, out of order or never costs nothing, because storage fills the gap; one's
own removal, or the chat's deletion, closes the socket with 4404 after its frame. While
the notifier has lost Redis, the hub reads each chat's events from storage itself, once
per round per chat however many sockets it has, and once more when Redis is back."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.clock import ManualClock
from adapters.hashing import Argon2Hasher
from adapters.http.auth import Credential
from adapters.http.ws.codes import CLOSE_NOT_FOUND
from adapters.http.ws.frames import event_frame, message_frame
from adapters.http.ws.hub import Connection, EventSource, Hub
from adapters.memory import InMemoryStorage, LocalNotifier
from adapters.redis import RedisNotifier
from chatcore import ChatDraft, ChatEdit, ChatMembers, Registration, Services, User
from chatcore.events import Event, EventKind
from chatcore.model import Chat
from entrypoints.bootstrap import bootstrap
from private_redis import PrivateRedis, fresh_prefix

GUARD = 5.0  # a hang guard, not a speed requirement
ROOMY = 1 << 20


class RecordingSocket:
    """Stands where the ASGI send is: keeps every frame the connection sends."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.grew = asyncio.Event()

    async def _send(self, message: dict[str, Any]) -> None:
        assert message["type"] == "websocket.send"
        self.frames.append(json.loads(message["text"]))
        self.grew.set()


async def users(app: Services, *names: str) -> list[User]:
    password = "correct horse battery"
    return [
        (await app.accounts.register(Registration(name, password, password))).user for name in names
    ]


async def heard(app: Services, chat: Chat) -> list[Event]:
    events: list[Event] = []
    await app.deps.notifier.subscribe(chat.id, events.append)
    return events


def connection(app: Services, chat: Chat, user: User, last_seq: int = 0) -> Connection:
    socket: Any = RecordingSocket()
    source = app.deps.storage.chats.events
    return Connection(socket, chat.id, Credential(user, "t", False), "d", ROOMY, source, last_seq)


def sent(conn: Connection) -> list[dict[str, Any]]:
    socket: Any = conn.ws
    frames: list[dict[str, Any]] = socket.frames
    return frames


async def received(conn: Connection, count: int) -> None:
    """Returns once the connection has sent ``count`` frames."""
    socket: Any = conn.ws

    async def wait() -> None:
        while len(socket.frames) < count:
            socket.grew.clear()
            await socket.grew.wait()

    await asyncio.wait_for(wait(), GUARD)


def as_frame(event: Event) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(event_frame(event))
    return frame


async def test_every_kind_reaches_every_socket_in_seq_order_and_ends_whom_it_concerns(
    app: Services,
) -> None:
    alice, bob, carol, dan = await users(app, "alice", "bob", "carol", "dan")
    chat = await app.chats.create_chat(alice, ChatDraft("c", [bob.id, carol.id]))
    published = await heard(app, chat)
    deps = app.deps
    hub = Hub(deps.notifier, deps.tokens.digest, deps.storage.chats.events, poll_seconds=1.0)
    conns = {u.username: connection(app, chat, u) for u in (alice, bob, carol)}
    for conn in conns.values():
        await hub.join(conn)
    writers = [asyncio.create_task(conn.drain()) for conn in conns.values()]

    message, _ = await app.chats.send_message(alice, chat.id, "hi")
    await app.chats.edit_message(alice, message.id, "hi, all")
    await app.chats.delete_message(alice, message.id)
    await app.membership.add_participants(alice, chat.id, ChatMembers([dan.id]))
    await app.membership.remove_participant(alice, chat.id, carol.id)
    await received(conns["carol"], 5)
    await app.membership.update_chat(alice, chat.id, ChatEdit(name="renamed"))
    await app.membership.delete_chat(alice, chat.id)
    await received(conns["alice"], 7)
    await received(conns["bob"], 7)

    kinds = [event.kind for event in published]
    assert kinds == list(EventKind)  # one of each, in the order of the enum
    frames = [as_frame(event) for event in published]
    assert [f["seq"] for f in frames] == list(range(1, 8))
    assert sent(conns["alice"]) == sent(conns["bob"]) == frames
    assert sent(conns["carol"]) == frames[:5]  # up to her own removal, then closed
    assert [conn.closing for conn in conns.values()] == [CLOSE_NOT_FOUND] * 3
    for writer in writers:
        writer.cancel()
    hub.stop()


async def test_a_removal_of_someone_else_leaves_the_socket_open(app: Services) -> None:
    alice, bob, carol = await users(app, "alice", "bob", "carol")
    chat = await app.chats.create_chat(alice, ChatDraft("c", [bob.id, carol.id]))
    published = await heard(app, chat)
    conn = connection(app, chat, bob)
    await app.membership.remove_participant(alice, chat.id, carol.id)
    await app.membership.leave(alice, chat.id)
    for event in published:
        await conn.deliver(event, event_frame(event))
    # carol removed, alice left, and bob, the one left, is handed the admin role
    assert [f["type"] for f in sent(conn)] == ["member_removed", "member_removed", "chat_updated"]
    assert conn.closing is None


async def test_frames_outside_the_stream_leave_the_seq_alone(app: Services) -> None:
    alice = (await users(app, "alice"))[0]
    chat = await app.chats.create_chat(alice, ChatDraft("c", []))
    published = await heard(app, chat)
    message, _ = await app.chats.send_message(alice, chat.id, "once", "k")
    conn = connection(app, chat, alice)
    await conn.send_text(message_frame(message))  # a retry's answer
    assert conn.last_seq == 0
    await conn.deliver(published[0], event_frame(published[0]))
    assert [f.get("seq") for f in sent(conn)] == [None, 1]


# --- the gap-filling rule -------------------------------------------------------------------


async def stored_stream(app: Services, n: int) -> tuple[Chat, User, list[Event]]:
    """A chat with ``n`` events of mixed kinds, all stored, and what was published."""
    alice, bob, carol = await users(app, "alice", "bob", "carol")
    chat = await app.chats.create_chat(alice, ChatDraft("c", [bob.id]))
    published = await heard(app, chat)
    carol_in = False
    for i in range(n):
        if i % 5 == 3:
            await app.membership.update_chat(alice, chat.id, ChatEdit(name=f"name {i}"))
        elif i % 5 == 4 and not carol_in:
            await app.membership.add_participants(alice, chat.id, ChatMembers([carol.id]))
            carol_in = True
        elif i % 5 == 4:
            await app.membership.remove_participant(alice, chat.id, carol.id)
            carol_in = False
        else:
            await app.chats.send_message(bob, chat.id, f"m{i}")
    return chat, bob, published


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(1, 12),
    order=st.lists(st.integers(0, 11), max_size=30),
    start=st.integers(0, 12),
)
def test_any_order_of_notifications_gives_each_seq_once_in_order(
    hasher: Argon2Hasher, n: int, order: list[int], start: int
) -> None:
    """Notifications late, repeated, reordered or lost (``order`` names which arrive, in
    arrival order): the socket sends start+1 .. the highest seq notified, each once, in
    seq order."""

    async def scenario() -> None:
        app = bootstrap(hasher=hasher, clock=ManualClock())
        chat, reader, published = await stored_stream(app, n)
        first = min(start, n)
        conn = connection(app, chat, reader, last_seq=first)
        arrivals = [published[i] for i in order if i < n]
        for event in arrivals:
            await conn.deliver(event, event_frame(event))
        top = max([first, *(e.seq for e in arrivals)])
        # each as it was published or as storage renders it now (a chat_updated shows
        # the chat as it is now): the same event either way
        stored = await app.deps.storage.chats.events(chat.id, 0, 1000)
        for frame in sent(conn):
            seq = frame["seq"]
            assert frame in (as_frame(published[seq - 1]), as_frame(stored[seq - 1]))
        assert [f["seq"] for f in sent(conn)] == list(range(first + 1, top + 1))
        assert conn.last_seq == top

    asyncio.run(scenario())


async def test_queued_notifications_in_reverse_still_go_out_in_order(app: Services) -> None:
    """Through the queue and the writer, as a hub delivers them."""
    chat, reader, published = await stored_stream(app, 8)
    conn = connection(app, chat, reader)
    for event in reversed(published):
        conn.push(event, event_frame(event), time.monotonic())
    writer = asyncio.create_task(conn.drain())
    await received(conn, 8)
    writer.cancel()
    assert [f["seq"] for f in sent(conn)] == list(range(1, 9))


async def test_catching_up_reads_the_whole_stream_past_a_seq(app: Services) -> None:
    chat, reader, _ = await stored_stream(app, 7)
    conn = connection(app, chat, reader, last_seq=2)
    await conn.catch_up()
    assert sent(conn) == [as_frame(e) for e in await app.deps.storage.chats.events(chat.id, 2, 99)]
    assert conn.last_seq == 7


async def test_a_recheck_finds_what_no_notification_brought(app: Services) -> None:
    """A lost notification with nothing after it to reveal the gap: the writer's recheck
    reads storage, and a removal found so still ends the socket after its frame."""
    alice, bob = await users(app, "alice", "bob")
    chat = await app.chats.create_chat(alice, ChatDraft("c", [bob.id]))
    conn = connection(app, chat, bob)  # on no hub: every notification is lost
    writer = asyncio.create_task(conn.drain())
    await app.chats.send_message(alice, chat.id, "unheard")
    await app.membership.remove_participant(alice, chat.id, bob.id)
    conn.recheck()
    await received(conn, 2)
    writer.cancel()
    assert [(f["type"], f["seq"]) for f in sent(conn)] == [("message", 1), ("member_removed", 2)]
    assert conn.closing == CLOSE_NOT_FOUND


# --- when the notifier is away ------------------------------------------------------------


async def eventually(condition: Any, seconds: float = 3 * GUARD) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - a state the notifier's task changes
            await asyncio.sleep(0.01)


class CountingSource:
    """The hub's way to storage, counting its reads."""

    def __init__(self, source: EventSource) -> None:
        self._source = source
        self.reads = 0

    async def __call__(self, chat_id: int, since: int, limit: int) -> list[Event]:
        self.reads += 1
        return await self._source(chat_id, since, limit)


async def test_while_redis_is_away_the_hub_reads_storage_and_goes_live_again_after(
    private_redis: PrivateRedis, hasher: Argon2Hasher, clock: ManualClock
) -> None:
    """Two processes on one storage and one Redis; what a third one stores (whose
    notifier reaches nobody: a process without Redis, or one that died before it could
    say) reaches the sockets during the outage all the same."""
    storage, prefix = InMemoryStorage(), fresh_prefix()
    silent = bootstrap(storage=storage, notifier=LocalNotifier(), hasher=hasher, clock=clock)
    async with (
        RedisNotifier(private_redis.url, prefix) as notifier_a,
        RedisNotifier(private_redis.url, prefix) as notifier_b,
    ):
        a = bootstrap(storage=storage, notifier=notifier_a, hasher=hasher, clock=clock)
        b = bootstrap(storage=storage, notifier=notifier_b, hasher=hasher, clock=clock)
        alice, bob = await users(a, "alice", "bob")
        chat = await a.chats.create_chat(alice, ChatDraft("c", [bob.id]))
        hub = Hub(notifier_b, b.deps.tokens.digest, storage.chats.events, poll_seconds=0.05)
        conns = [connection(b, chat, bob) for _ in range(3)]
        for conn in conns:
            await hub.join(conn)
        writers = [asyncio.create_task(conn.drain()) for conn in conns]
        try:
            await a.chats.send_message(alice, chat.id, "before")
            for conn in conns:
                await received(conn, 1)
            private_redis.kill()
            try:
                await eventually(lambda: not notifier_b.connected)
                await silent.chats.send_message(alice, chat.id, "during")
                await silent.chats.edit_message(alice, 1, "before, edited")
                late = connection(b, chat, bob, last_seq=3)  # joins during the outage
                await hub.join(late)
                writers.append(asyncio.create_task(late.drain()))
                await silent.chats.send_message(alice, chat.id, "still during")
                for conn in conns:
                    await received(conn, 4)  # read from storage: Redis is still away
                await received(late, 1)
            finally:
                private_redis.start()
            await eventually(lambda: notifier_a.connected and notifier_b.connected)
            await a.chats.send_message(alice, chat.id, "after")
            for conn in conns:
                await received(conn, 5)
            await received(late, 2)
        finally:
            for writer in writers:
                writer.cancel()
            hub.stop()
        stream = [as_frame(event) for event in await storage.chats.events(chat.id, 0, 99)]
        assert [f["seq"] for f in stream] == [1, 2, 3, 4, 5]
        for conn in conns:
            assert [f["seq"] for f in sent(conn)] == [1, 2, 3, 4, 5]
            assert sent(conn)[1:] == stream[1:]  # the first went out before its edit
        assert sent(late) == stream[3:]


async def test_the_hub_reads_once_per_chat_not_per_socket(
    private_redis: PrivateRedis, hasher: Argon2Hasher, clock: ManualClock
) -> None:
    """A round per change of connection (the poll itself is an hour here): each reads
    every busy chat once, and events no notification brought arrive after the second."""
    storage, prefix = InMemoryStorage(), fresh_prefix()
    silent = bootstrap(storage=storage, notifier=LocalNotifier(), hasher=hasher, clock=clock)
    async with RedisNotifier(private_redis.url, prefix) as notifier:
        app = bootstrap(storage=storage, notifier=notifier, hasher=hasher, clock=clock)
        alice, bob = await users(app, "alice", "bob")
        chats = [await app.chats.create_chat(alice, ChatDraft(n, [bob.id])) for n in "xy"]
        source = CountingSource(storage.chats.events)
        hub = Hub(notifier, app.deps.tokens.digest, source, poll_seconds=3600)
        conns = [connection(app, chat, user) for chat in chats for user in (alice, bob) * 3]
        for conn in conns:
            await hub.join(conn)
        writers = [asyncio.create_task(conn.drain()) for conn in conns]
        try:
            private_redis.kill()
            try:
                await eventually(lambda: not notifier.connected)
                await eventually(lambda: source.reads == 2)  # the round at the loss
                for chat in chats:
                    await silent.chats.send_message(alice, chat.id, "unnotified")
            finally:
                private_redis.start()
            for conn in conns:
                await received(conn, 1)
        finally:
            for writer in writers:
                writer.cancel()
            hub.stop()
        assert source.reads == 4  # two rounds, two chats, twelve sockets
        assert all([f["seq"] for f in sent(conn)] == [1] for conn in conns)
