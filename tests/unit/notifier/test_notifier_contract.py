"""What every notifier promises: once ``subscribe`` returns, each event published to the
chat reaches each of its listeners, in publish order, and no other chat's; unsubscribing
stops it; revocations reach every revocation listener; a listener that raises keeps the
event from nobody else.

Several notifiers opened on one deployment are several processes: what one publishes or
revokes reaches the listeners of all. When what carries notifications between them goes
away (``outage``), nothing raises, the connection's listeners are told (False, then True
once every subscription is live again), and the subscriptions come back by themselves.

Delivery may be asynchronous (another process, a broker): tests wait for what they
expect to hear with :meth:`Ear.until`, and close with a marker event published last, so
that "nothing more" is checked after everything before it was delivered."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from datetime import UTC, datetime
from typing import Protocol

import pytest

from chatcore.events import ChatDeleted, Event, MessageDeleted, MessagePosted
from chatcore.model import Message, Revocation, User, UserType
from chatcore.ports import Notifier

OpenNotifier = Callable[[], AbstractAsyncContextManager[Notifier]]


class Deployment(Protocol):
    """What the ``deployment`` fixture hands out (see conftest)."""

    can_lose_connection: bool

    def open(self) -> AbstractAsyncContextManager[Notifier]: ...

    def outage(self) -> AbstractContextManager[None]: ...


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


async def eventually(condition: Callable[[], bool], seconds: float = WAIT_SECONDS) -> None:
    """Returns once ``condition()`` holds; fails after ``seconds`` (a hang guard)."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - a state of another process, polled
            await asyncio.sleep(0.01)


class Revocations:
    """A recording revocation listener."""

    def __init__(self) -> None:
        self.heard: list[Revocation] = []

    def __call__(self, revocation: Revocation) -> None:
        self.heard.append(revocation)

    async def until(self, count: int) -> list[Revocation]:
        await eventually(lambda: len(self.heard) >= count)
        return self.heard


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


async def test_what_one_process_publishes_reaches_the_listeners_of_every_process(
    open_notifier: OpenNotifier,
) -> None:
    async with open_notifier() as a, open_notifier() as b:
        on_a, on_b, elsewhere = Ear(), Ear(), Ear()
        await a.subscribe(1, on_a)
        await b.subscribe(1, on_b)
        await b.subscribe(2, elsewhere)
        sent = [posted(1, 1), posted(1, 2), MessageDeleted(1, 3, 1), ChatDeleted(1, 4)]
        for event in sent[:2]:
            await a.publish(event)
        for event in sent[2:]:
            await b.publish(event)  # b's own, then a's: each process hears both
        done = ends_with(ChatDeleted(1, 4))
        assert sorted((await on_a.until(done)), key=lambda e: e.seq) == sent
        assert sorted((await on_b.until(done)), key=lambda e: e.seq) == sent
        await a.publish(ChatDeleted(2, 1))
        assert await elsewhere.until(ends_with(ChatDeleted(2, 1))) == [ChatDeleted(2, 1)]


async def test_one_process_publishing_is_heard_elsewhere_in_publish_order(
    open_notifier: OpenNotifier,
) -> None:
    async with open_notifier() as a, open_notifier() as b:
        ear = Ear()
        await b.subscribe(1, ear)
        sent = [posted(1, seq) for seq in range(1, 51)]
        for event in sent:
            await a.publish(event)
        assert await ear.until(ends_with(sent[-1])) == sent


async def test_a_revocation_in_one_process_reaches_every_process(
    open_notifier: OpenNotifier,
) -> None:
    async with open_notifier() as a, open_notifier() as b:
        on_a, on_b = Revocations(), Revocations()
        a.on_revoke(on_a)
        stop = b.on_revoke(on_b)
        await a.revoke(Revocation(7, keep_digest="k"))
        assert await on_b.until(1) == [Revocation(7, keep_digest="k")]
        assert await on_a.until(1) == [Revocation(7, keep_digest="k")]
        stop()
        await b.revoke(Revocation(8, token_digest="d"))
        assert await on_a.until(2) == [Revocation(7, keep_digest="k"), Revocation(8, "d")]
        assert on_b.heard == [Revocation(7, keep_digest="k")]


async def test_unsubscribing_in_one_process_stops_what_the_others_publish(
    open_notifier: OpenNotifier,
) -> None:
    async with open_notifier() as a, open_notifier() as b:
        gone, staying = Ear(), Ear()
        stop = await b.subscribe(1, gone)
        await b.subscribe(1, staying)
        await a.publish(posted(1, 1))
        await gone.until(ends_with(posted(1, 1)))
        stop()
        await a.publish(posted(1, 2))
        await staying.until(ends_with(posted(1, 2)))
        assert gone.events == [posted(1, 1)]
        again = Ear()
        await b.subscribe(1, again)
        await a.publish(posted(1, 3))
        assert await again.until(ends_with(posted(1, 3))) == [posted(1, 3)]


async def test_a_chat_whose_listeners_all_left_and_came_back_is_heard_again(
    open_notifier: OpenNotifier,
) -> None:
    async with open_notifier() as a, open_notifier() as b:
        first = Ear()
        stop = await b.subscribe(1, first)
        stop()  # the chat's last listener: no more subscription...
        second = Ear()
        await b.subscribe(1, second)  # ...and at once a new one, live when it returns
        await a.publish(posted(1, 1))
        assert await second.until(ends_with(posted(1, 1))) == [posted(1, 1)]
        assert first.events == []


async def test_a_raising_listener_keeps_an_event_from_another_process_from_nobody(
    open_notifier: OpenNotifier,
) -> None:
    async with open_notifier() as a, open_notifier() as b:
        ear = Ear()

        def broken(_: Event) -> None:
            raise RuntimeError("boom")

        def broken_revocation(_: Revocation) -> None:
            raise RuntimeError("boom")

        await b.subscribe(1, broken)
        await b.subscribe(1, ear)
        revocations = Revocations()
        b.on_revoke(broken_revocation)
        b.on_revoke(revocations)
        await a.publish(posted(1, 1))
        await a.publish(posted(1, 2))
        await a.revoke(Revocation(3))
        assert await ear.until(ends_with(posted(1, 2))) == [posted(1, 1), posted(1, 2)]
        assert await revocations.until(1) == [Revocation(3)]


async def test_a_notifier_is_connected_once_open(open_notifier: OpenNotifier) -> None:
    async with open_notifier() as notifier:
        assert notifier.connected


async def test_an_outage_is_told_and_nothing_raises_and_subscriptions_come_back(
    deployment: Deployment,
) -> None:
    async with deployment.open() as a, deployment.open() as b:
        told: list[bool] = []
        b.on_connection(told.append)
        ear = Ear()
        await b.subscribe(1, ear)
        await a.publish(posted(1, 1))
        await ear.until(ends_with(posted(1, 1)))
        with deployment.outage():
            if deployment.can_lose_connection:
                await eventually(lambda: not a.connected and not b.connected)
            # Neither publishing nor revoking fails, nor does subscribing: it returns
            # (at once, when disconnected) and goes live with the connection.
            await a.publish(posted(1, 2))
            await a.revoke(Revocation(5))
            late = Ear()
            await b.subscribe(2, late)
        await eventually(lambda: a.connected and b.connected, 3 * WAIT_SECONDS)
        assert told == ([False, True] if deployment.can_lose_connection else [])
        await a.publish(posted(1, 3))
        await a.publish(ChatDeleted(2, 1))
        # Whatever was heard of the outage's events, the subscriptions are live again.
        assert (await ear.until(ends_with(posted(1, 3))))[0] == posted(1, 1)
        assert await late.until(ends_with(ChatDeleted(2, 1))) == [ChatDeleted(2, 1)]
        revocations = Revocations()
        b.on_revoke(revocations)
        await a.revoke(Revocation(6))
        assert (await revocations.until(1))[-1] == Revocation(6)


async def test_a_connection_listener_stops_when_unsubscribed(deployment: Deployment) -> None:
    async with deployment.open() as notifier:
        kept: list[bool] = []
        dropped: list[bool] = []
        stop = notifier.on_connection(dropped.append)
        notifier.on_connection(kept.append)
        stop()
        stop()
        with deployment.outage():
            if deployment.can_lose_connection:
                await eventually(lambda: not notifier.connected)
                with pytest.raises(Exception):  # noqa: B017, PT011 - any error means "down"
                    await notifier.ping()
        await eventually(lambda: notifier.connected, 3 * WAIT_SECONDS)
        await notifier.ping()
        assert dropped == []
        assert kept == ([False, True] if deployment.can_lose_connection else [])


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
