"""What every notifier promises: once ``subscribe`` returns, each event published to the
chat reaches each of its listeners, in publish order, and no other chat's; unsubscribing
stops it; revocations reach every revocation listener; a listener that raises keeps the
event from nobody else.

Delivery may be asynchronous (another process, a broker): tests wait for what they
expect to hear with :func:`heard`, and close with a marker event published last, so
that "nothing more" is checked after everything before it was delivered."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

from chatcore.events import ChatDeleted, Event, MessageDeleted, MessagePosted
from chatcore.model import Message, Revocation, User, UserType
from chatcore.ports import Notifier

OpenNotifier = Callable[[], AbstractAsyncContextManager[Notifier]]

NOW = datetime(2026, 1, 1, tzinfo=UTC)
WAIT_SECONDS = 5.0  # an upper bound for a broken adapter, never a measure of speed


def posted(chat_id: int, seq: int) -> MessagePosted:
    sender = User(1, "alice", "", UserType.STUDENT, NOW)
    return MessagePosted(chat_id, seq, Message(seq, chat_id, sender, f"m{seq}", NOW))


class Ear:
    """A recording listener."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    async def until(self, done: Callable[[list[Event]], bool]) -> list[Event]:
        async with asyncio.timeout(WAIT_SECONDS):
            while not done(self.events):
                self._changed.clear()
                await self._changed.wait()
        return self.events


def ends_with(marker: Event) -> Callable[[list[Event]], bool]:
    return lambda events: bool(events) and events[-1] == marker


async def test_every_subscriber_of_the_chat_hears_each_event_in_publish_order(
    open_notifier: OpenNotifier,
) -> None:
    async with open_notifier() as notifier:
        first, second, elsewhere = Ear(), Ear(), Ear()
        await notifier.subscribe(1, first)
        await notifier.subscribe(1, second)
        await notifier.subscribe(2, elsewhere)
        sent: list[Event] = [posted(1, 1), MessageDeleted(1, 2, 1), posted(1, 3)]
        for event in [*sent, ChatDeleted(2, 9), ChatDeleted(1, 4)]:
            await notifier.publish(event)
        done = ends_with(ChatDeleted(1, 4))
        assert await first.until(done) == [*sent, ChatDeleted(1, 4)]
        assert await second.until(done) == [*sent, ChatDeleted(1, 4)]
        assert await elsewhere.until(ends_with(ChatDeleted(2, 9))) == [ChatDeleted(2, 9)]


async def test_a_subscription_is_live_when_subscribe_returns(
    open_notifier: OpenNotifier,
) -> None:
    async with open_notifier() as notifier:
        ear = Ear()
        await notifier.publish(posted(1, 1))  # before: nobody hears it
        await notifier.subscribe(1, ear)
        await notifier.publish(posted(1, 2))  # no pause in between: must be heard
        assert await ear.until(lambda events: bool(events)) == [posted(1, 2)]


async def test_unsubscribed_listeners_hear_nothing_more(open_notifier: OpenNotifier) -> None:
    async with open_notifier() as notifier:
        gone, staying = Ear(), Ear()
        stop = await notifier.subscribe(1, gone)
        await notifier.subscribe(1, staying)
        await notifier.publish(posted(1, 1))
        await gone.until(ends_with(posted(1, 1)))
        stop()
        stop()  # twice is harmless
        await notifier.publish(posted(1, 2))
        await staying.until(ends_with(posted(1, 2)))
        assert gone.events == [posted(1, 1)]


async def test_a_listener_that_raises_keeps_the_event_from_nobody(
    open_notifier: OpenNotifier,
) -> None:
    async with open_notifier() as notifier:
        ear = Ear()

        def broken(_: Event) -> None:
            raise RuntimeError("boom")

        await notifier.subscribe(1, broken)
        await notifier.subscribe(1, ear)
        await notifier.subscribe(1, broken)
        await notifier.publish(posted(1, 1))
        await notifier.publish(posted(1, 2))  # the broken one is still called, and fails
        assert await ear.until(ends_with(posted(1, 2))) == [posted(1, 1), posted(1, 2)]


async def test_revocations_reach_every_revocation_listener_until_it_stops(
    open_notifier: OpenNotifier,
) -> None:
    async with open_notifier() as notifier:
        heard: list[Revocation] = []
        kept: list[Revocation] = []
        arrived = asyncio.Event()

        def keep(revocation: Revocation) -> None:
            kept.append(revocation)
            arrived.set()

        stop = notifier.on_revoke(heard.append)
        notifier.on_revoke(keep)
        await notifier.revoke(Revocation(7))
        async with asyncio.timeout(WAIT_SECONDS):
            while len(kept) < 1:
                arrived.clear()
                await arrived.wait()
        stop()
        await notifier.revoke(Revocation(8, token_digest="d"))
        async with asyncio.timeout(WAIT_SECONDS):
            while len(kept) < 2:
                arrived.clear()
                await arrived.wait()
        assert kept == [Revocation(7), Revocation(8, token_digest="d")]
        assert heard == [Revocation(7)]


async def test_an_open_notifier_answers_pings_and_goes_on_delivering(
    open_notifier: OpenNotifier,
) -> None:
    """The readiness check's probe: it returns while the notifier works, to many callers
    at once, and leaves subscriptions as they were."""
    async with open_notifier() as notifier:
        ear = Ear()
        await notifier.subscribe(1, ear)
        async with asyncio.timeout(WAIT_SECONDS):
            assert await asyncio.gather(*(notifier.ping() for _ in range(20))) == [None] * 20
        await notifier.publish(posted(1, 1))
        assert await ear.until(ends_with(posted(1, 1))) == [posted(1, 1)]
