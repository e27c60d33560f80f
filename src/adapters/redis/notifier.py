"""The notifier over Redis pub/sub: events, revocations and what they wake up reach every
process of a deployment.

Each process holds ONE pub/sub connection (not one per chat), subscribed to the channel of
every chat it has listeners on, ``<prefix>chat:<id>``, and to ``<prefix>revoked``; the
prefix lets several deployments (and test runs) share one Redis, whose pub/sub channels
are global to the server, whatever the database number. Publishing goes over a separate
pooled client. A process hears its own events at once, without the round trip (and skips
their echo), so its own sockets never depend on Redis.

Redis is a wake-up, not the record (DESIGN.md): when it goes away, nothing fails. A
publish that cannot be made is counted and dropped (the latest per chat is published
again once Redis is back, to wake the processes that did not notice the outage); the
connection's listeners are told (``on_connection``): the socket hub then reads what it
would have heard from storage, and once more when the connection is back, after every
channel was subscribed again. The pub/sub connection is watched with a PING when quiet,
so a Redis that stops answering without closing the connection is noticed too.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import uuid
from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlsplit

import attrs
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from chatcore.events import Event
from chatcore.model import Revocation
from chatcore.ports import (
    ConnectionListener,
    Listener,
    Notifier,
    RevocationListener,
    Unsubscribe,
)

from ..listeners import Listeners
from .codec import Undecodable, decode_event, decode_revocation, encode_event, encode_revocation

log = logging.getLogger("chatcore.notifier")

CONNECT_SECONDS = 2.0  # to open a connection: a Redis that does not answer is down
PUBLISH_SECONDS = 2.0  # for one PUBLISH, at most (a request waits for it)
HEARTBEAT_SECONDS = 5.0  # a quiet pub/sub connection is PINGed this often...
SILENT_BEATS = 3  # ...and given up after this many beats without a word from Redis
RETRY_SECONDS = (0.05, 2.0)  # the first wait before reconnecting, doubling up to the last
OPEN_SECONDS = CONNECT_SECONDS + 3.0  # opening waits this long for the first connection

SUBSCRIBE, UNSUBSCRIBE, PING = b"SUBSCRIBE", b"UNSUBSCRIBE", b"PING"
ORIGIN_BYTES = 33  # what each payload starts with: the publisher's id (32 hex) and a space


@attrs.define
class NotifierCounts:
    """What a Redis notifier did, for whoever reports on it (metrics)."""

    published: int = 0  # notifications handed to Redis
    unsent: int = 0  # notifications Redis could not take (processes elsewhere read storage)
    reconnects: int = 0  # times the pub/sub connection came back after it was lost
    undecodable: int = 0  # payloads on our channels that were not ours, skipped


class _Session:
    """One pub/sub connection, from connecting to its loss: the commands to send, in
    order, and who waits for each channel's subscription to be acknowledged."""

    def __init__(self, connection: AbstractConnection) -> None:
        self.connection = connection
        self.commands: asyncio.Queue[tuple[bytes, ...]] = asyncio.Queue()
        self.acks: dict[bytes, collections.deque[asyncio.Future[None]]] = {}
        self.heard_at = asyncio.get_running_loop().time()

    def send(self, command: bytes, *channels: bytes) -> None:
        if command == SUBSCRIBE:
            loop = asyncio.get_running_loop()
            for channel in channels:
                self.acks.setdefault(channel, collections.deque()).append(loop.create_future())
        self.commands.put_nowait((command, *channels))

    def acknowledged(self, channel: bytes) -> None:
        waiting = self.acks.get(channel)
        if waiting:
            waiting.popleft().set_result(None)
            if not waiting:
                del self.acks[channel]

    def release(self) -> None:
        """The connection is gone: nobody waits for an acknowledgement any more."""
        for waiting in self.acks.values():
            for future in waiting:
                if not future.done():
                    future.set_result(None)
        self.acks.clear()


class RedisNotifier:
    """The :class:`~chatcore.ports.Notifier` of several processes, over one Redis.
    ``async with notifier:`` connects (and goes on without Redis, if it cannot be
    reached: it keeps trying) and closes."""

    def __init__(self, url: str, prefix: str) -> None:
        self._url = url
        self.where = where(url)
        self._prefix = prefix.encode()
        self._revoked_channel = self._prefix + b"revoked"
        self._origin = uuid.uuid4().hex.encode() + b" "
        self._listeners: Listeners[int, Event] = Listeners()
        self._revocation_listeners: Listeners[None, Revocation] = Listeners()
        self._connection_listeners: Listeners[None, bool] = Listeners()
        self._connected = False
        self._session: _Session | None = None
        self._missed: dict[int, Event] = {}  # per chat, the latest event Redis did not take
        self._unsent_logged = False
        self._client: Redis | None = None
        self._pool: ConnectionPool | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.counts = NotifierCounts()

    # -- the port -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    async def publish(self, event: Event) -> None:
        self._listeners.call(event.chat_id, event)
        await self._publish(self._chat_channel(event.chat_id), encode_event(event), event)

    async def subscribe(self, chat_id: int, listener: Listener) -> Unsubscribe:
        channel = self._chat_channel(chat_id)
        first = not self._listeners.has(chat_id)
        remove = self._listeners.add(chat_id, listener)
        session = self._session
        if session is not None:
            if first:
                session.send(SUBSCRIBE, channel)
            waiting = session.acks.get(channel)
            if waiting and self._connected:
                await asyncio.shield(waiting[-1])

        def unsubscribe() -> None:
            remove()
            if not self._listeners.has(chat_id) and self._session is not None:
                self._session.send(UNSUBSCRIBE, channel)

        return unsubscribe

    async def revoke(self, revocation: Revocation) -> None:
        self._revocation_listeners.call(None, revocation)
        await self._publish(self._revoked_channel, encode_revocation(revocation), None)

    def on_revoke(self, listener: RevocationListener) -> Unsubscribe:
        return self._revocation_listeners.add(None, listener)

    def on_connection(self, listener: ConnectionListener) -> Unsubscribe:
        return self._connection_listeners.add(None, listener)

    async def ping(self) -> None:
        """A PING on the publishing client; unreachable too while the subscription
        connection is down (this process then hears nobody else's events)."""
        if not self._connected or self._client is None:
            raise ConnectionError(f"redis at {self.where}: the subscription connection is down")
        await self._client.ping()

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> RedisNotifier:
        # RESP2: pub/sub messages are plain replies (RESP3 would route them through
        # redis-py's push handlers), and every Redis since 2.0 speaks it.
        options: dict[str, Any] = {"socket_connect_timeout": CONNECT_SECONDS, "protocol": 2}
        # One quick retry on a fresh connection (a pooled one may predate a restart);
        # none for the pub/sub connection, whose every loss must be seen (see _session).
        self._client = Redis.from_url(
            self._url, socket_timeout=PUBLISH_SECONDS, retry=Retry(NoBackoff(), 1), **options
        )
        self._pool = ConnectionPool.from_url(
            self._url, socket_timeout=None, retry=Retry(NoBackoff(), 0), **options
        )
        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._spawn(self._keep_connected(first))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(first), OPEN_SECONDS)
        if not self._connected:
            log.warning(
                "redis at %s cannot be reached: real-time delivery across processes reads "
                "storage until it answers",
                self.where,
            )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._connected = False
        if self._client is not None:
            await self._client.aclose()
        if self._pool is not None:
            await self._pool.disconnect()

    # -- publishing -----------------------------------------------------------------------

    async def _publish(self, channel: bytes, payload: bytes, event: Event | None) -> None:
        """Hand a payload to Redis; never raises. What Redis cannot take is counted, and
        an event kept (the latest per chat) to be published again once it is back."""
        if self._connected and self._client is not None:
            try:
                await self._client.publish(channel, self._origin + payload)
            except (RedisError, OSError) as exc:
                if not self._unsent_logged:
                    self._unsent_logged = True
                    log.warning("redis at %s did not take a notification: %s", self.where, exc)
            else:
                self.counts.published += 1
                return
        self.counts.unsent += 1
        if event is not None:
            kept = self._missed.get(event.chat_id)
            if kept is None or kept.seq < event.seq:
                self._missed[event.chat_id] = event

    async def _publish_missed(self) -> None:
        """Wake the other processes for each chat that had events while Redis was away:
        its latest one is enough, their sockets read the rest from storage."""
        missed, self._missed = self._missed, {}
        for event in missed.values():
            await self._publish(self._chat_channel(event.chat_id), encode_event(event), event)

    # -- the pub/sub connection -----------------------------------------------------------

    async def _keep_connected(self, first: asyncio.Future[None]) -> None:
        """Connect, and connect again whenever the connection is lost, until closed."""
        wait = RETRY_SECONDS[0]
        lost_at: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self._session_until_lost(first, lost_at)
            except Exception as exc:  # whatever ended it, the connection is gone
                if self._connected:
                    self._connected = False
                    lost_at = loop.time()
                    wait = RETRY_SECONDS[0]
                    log.warning(
                        "lost redis at %s (%s): real-time delivery across processes reads "
                        "storage until it is back",
                        self.where,
                        _describe(exc),
                    )
                    self._connection_listeners.call(None, False)
                else:
                    log.debug("redis at %s still unreachable: %s", self.where, _describe(exc))
            if not first.done():
                first.set_result(None)
            await asyncio.sleep(wait * random.uniform(0.5, 1.0))  # noqa: S311 - jitter
            wait = min(wait * 2, RETRY_SECONDS[1])

    async def _session_until_lost(self, first: asyncio.Future[None], lost_at: float | None) -> None:
        """One pub/sub connection: subscribe to every channel wanted, say that it is up
        once Redis acknowledged them all, then serve until something fails (raised)."""
        assert self._pool is not None
        session = _Session(self._pool.make_connection())  # type: ignore[no-untyped-call]
        self._session = session
        tasks: list[asyncio.Task[None]] = []
        try:
            await session.connection.connect()  # type: ignore[no-untyped-call]
            wanted = [self._chat_channel(chat_id) for chat_id in self._listeners.topics()]
            session.send(SUBSCRIBE, self._revoked_channel, *wanted)
            tasks = [
                asyncio.create_task(self._read(session)),
                asyncio.create_task(self._write(session)),
            ]
            await _first_of(tasks, _all_acknowledged(session))
            self._went_up(lost_at)
            if not first.done():
                first.set_result(None)
            await _first_of(tasks)
        finally:
            self._session = None
            session.release()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await session.connection.disconnect(nowait=True)

    def _went_up(self, lost_at: float | None) -> None:
        self._connected = True
        self._unsent_logged = False
        if lost_at is not None:
            self.counts.reconnects += 1
            down = asyncio.get_running_loop().time() - lost_at
            log.warning(
                "redis at %s is back after %.1fs, %d chat channels subscribed again",
                self.where,
                down,
                len(self._listeners.topics()),
            )
        self._connection_listeners.call(None, True)
        if self._missed:
            self._spawn(self._publish_missed())

    async def _read(self, session: _Session) -> None:
        loop = asyncio.get_running_loop()
        while True:
            reply = await session.connection.read_response()
            session.heard_at = loop.time()
            if not isinstance(reply, list) or len(reply) < 2:
                continue  # a PONG before the first subscription, and the like
            kind, channel = reply[0], reply[1]
            if kind == b"message" and len(reply) == 3:
                self._dispatch(channel, reply[2])
            elif kind == b"subscribe":
                session.acknowledged(channel)

    async def _write(self, session: _Session) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                command = await asyncio.wait_for(session.commands.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                if loop.time() - session.heard_at > SILENT_BEATS * HEARTBEAT_SECONDS:
                    raise ConnectionError("redis stopped answering") from None
                command = (PING,)
            await session.connection.send_command(*command, check_health=False)

    def _dispatch(self, channel: bytes, data: bytes) -> None:
        if data.startswith(self._origin):
            return  # our own: its listeners here heard it when it was published
        payload = data[ORIGIN_BYTES:]
        try:
            if channel == self._revoked_channel:
                self._revocation_listeners.call(None, decode_revocation(payload))
            else:
                event = decode_event(payload)
                self._listeners.call(event.chat_id, event)
        except Undecodable as exc:
            self.counts.undecodable += 1
            log.warning("skipped a payload on %r that is not ours: %s", channel, exc)

    # -- helpers --------------------------------------------------------------------------

    def _chat_channel(self, chat_id: int) -> bytes:
        return b"%schat:%d" % (self._prefix, chat_id)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _all_acknowledged(session: _Session) -> None:
    """Until every subscription sent so far (and any sent meanwhile) is acknowledged."""
    while session.acks:
        await asyncio.gather(*[f for waiting in session.acks.values() for f in waiting])


async def _first_of(tasks: list[asyncio.Task[None]], until: Awaitable[None] | None = None) -> None:
    """Wait for ``until`` (forever when None) while the tasks run; a task that ends
    first (they only end by failing) raises its error here."""
    waiting: list[asyncio.Future[None]] = [*tasks]
    goal = None if until is None else asyncio.ensure_future(until)
    if goal is not None:
        waiting.append(goal)
    try:
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if goal is not None and not goal.done():
            goal.cancel()
    for task in tasks:
        if task in done:
            task.result()  # raises what ended it
            raise ConnectionError("the pub/sub connection ended")


def where(url: str) -> str:
    """The Redis a URL names, as a log may show it: host and port, never a password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    try:
        port = parts.port or 6379
    except ValueError:
        port = 6379
    return f"{parts.hostname or 'localhost'}:{port}"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _implements_the_port(notifier: RedisNotifier) -> Notifier:
    return notifier  # mypy checks that RedisNotifier is a Notifier
