"""The fan-out: one :class:`Hub` per process holds the open sockets by chat and
subscribes once per chat to the notifier, so a published event is rendered once and
queued to every local socket of its chat. Each :class:`Connection` has a writer task
draining a queue bounded in bytes: a socket that cannot keep up is closed (1013) and
nobody else waits for it. A socket delivers by seq: it never sends a seq at or below the
last it sent, and fills a gap from storage, which makes a resume (``?since=``) gapless
and duplicate-free whatever order notifications arrive in.

While the notifier has lost its connection (Redis gone), the hub reads its chats' new
events from storage itself, once every ``poll_seconds`` per chat (not per socket), and
hands them on as if they had been notified; once the notifier is back, it reads once
more, so that nothing published during the outage stays unheard.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from starlette.websockets import WebSocket

from adapters.metrics import NO_METRICS, Metrics
from chatcore.events import ChatDeleted, Event, MemberRemoved, MessagePosted
from chatcore.model import Revocation
from chatcore.ports import Notifier, Unsubscribe

from ..auth import Credential
from .codes import CLOSE_GOING_AWAY, CLOSE_NOT_FOUND, CLOSE_POLICY, CLOSE_TRY_LATER
from .frames import event_frame

EventSource = Callable[[int, int, int], Awaitable[list[Event]]]
"""``(chat_id, since, limit)``: up to ``limit`` of the chat's stored events after
``since``, in seq order, rendered as things are now (``ChatStore.events``): where a socket
fills a gap from. The socket was admitted to the chat, and it is closed at its own
``member_removed``, so it reads no further than the events it may see."""

FILL_PAGE = 1000

log = logging.getLogger("chatcore.ws")


def ends_the_socket(event: Event, user_id: int) -> bool:
    """Whether, once ``event`` is sent, the socket of ``user_id`` on its chat is over: its
    user was removed (or left), or the chat is gone. It is closed with 4404 after the
    frame, so that the client sees why."""
    if isinstance(event, ChatDeleted):
        return True
    return isinstance(event, MemberRemoved) and event.user.id == user_id


class Connection:
    """One open socket on one chat, and its outbound queue.

    Delivery is by seq (DESIGN.md, "Events, ordering and scale-out"): the socket remembers
    the last seq it sent; a live event at or below it is a duplicate and dropped, and one
    past the next seq is a gap, filled from storage before the live event goes out. So
    the order the notifications arrive in never shows on the socket."""

    def __init__(
        self,
        ws: WebSocket,
        chat_id: int,
        credential: Credential,
        token_digest: str,
        limit: int,
        source: EventSource,
        last_seq: int,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.ws = ws
        self._send = ws._send
        self.chat_id = chat_id
        self.user = credential.user
        self.token = credential.token
        self.token_digest = token_digest
        # Set when close() is called; a bare future, awaited beside the tasks.
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.finished = asyncio.Event()  # the socket is closed and forgotten
        self._limit = limit
        self._source = source
        self._metrics = metrics
        # Each live event with its frame and when its notification arrived (monotonic).
        self._queue: collections.deque[tuple[Event, str, float]] = collections.deque()
        self._queued_bytes = 0
        self._ready = asyncio.Event()
        self.last_seq = last_seq
        # A ``?after=`` resume sent messages up to this id by id, outside the seq
        # stream: their ``message`` events are not sent again.
        self.replayed_message_id = 0
        self.closing: int | None = None
        self._recheck = False

    def push(self, event: Event, frame: str, arrived: float) -> None:
        """Queue an event and its frame (its notification came at ``arrived``, by
        ``time.monotonic()``); past the byte limit, give up on this reader."""
        if self.closing is not None:
            return
        if self._queued_bytes + len(frame) > self._limit:
            self.close(CLOSE_TRY_LATER)
            self._metrics.slow_consumer_closed()
            return
        self._queue.append((event, frame, arrived))
        self._queued_bytes += len(frame)
        self._ready.set()

    def recheck(self) -> None:
        """Have the writer look in storage for events no notification brought (a lost
        one, a notifier that was down): late, but never missed, even with no event
        after them to reveal the gap."""
        self._recheck = True
        self._ready.set()

    def close(self, code: int) -> None:
        """Drop what is queued and have the socket closed with ``code``, even while a
        send is stuck on a reader that stopped reading."""
        if self.closing is None:
            self.closing = code
            self._queue.clear()
            self._queued_bytes = 0
            self.closed.set_result(None)

    async def deliver(self, event: Event, frame: str, arrived: float | None = None) -> None:
        """A live event: dropped at or below the last seq sent, sent after what storage
        holds between the two when past the next one."""
        if event.seq > self.last_seq + 1:
            await self.catch_up(until=event.seq - 1)
        await self._emit(event, frame, arrived)

    async def catch_up(self, until: int | None = None) -> None:
        """Send the stored events after the last seq sent, up to ``until`` (all of them
        when None), page by page; live ones wait queued meanwhile."""
        while self.closing is None and (until is None or self.last_seq < until):
            wanted = FILL_PAGE if until is None else min(FILL_PAGE, until - self.last_seq)
            batch = await self._source(self.chat_id, self.last_seq, wanted)
            for event in batch:
                await self._emit(event, event_frame(event))
            if len(batch) < wanted:  # all there is (a deleted chat: nothing)
                return

    async def send_text(self, frame: str) -> None:
        """A frame outside the seq stream (a replay by message id, a retry's answer)."""
        if self.closing is None:
            await self._send({"type": "websocket.send", "text": frame})

    async def _emit(self, event: Event, frame: str, arrived: float | None = None) -> None:
        """Send one event (``arrived`` set for a live one: see Metrics.event_delivered)."""
        if self.closing is not None or event.seq <= self.last_seq:
            return
        self.last_seq = event.seq
        if not (isinstance(event, MessagePosted) and event.message.id <= self.replayed_message_id):
            # Straight to the server's ASGI send: the hot path of every delivery, with
            # none of Starlette's per-message state bookkeeping (the socket is open).
            await self._send({"type": "websocket.send", "text": frame})
            self._metrics.event_delivered(arrived)
        if ends_the_socket(event, self.user.id):
            self.close(CLOSE_NOT_FOUND)

    async def drain(self) -> None:
        """Send queued events, forever (the connection's owner cancels it)."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            if self._recheck:
                self._recheck = False
                await self.catch_up()
            while self._queue:
                event, frame, arrived = self._queue.popleft()
                self._queued_bytes -= len(frame)
                await self.deliver(event, frame, arrived)


class Hub:
    """This process's open sockets, by chat; one notifier subscription per busy chat."""

    def __init__(
        self,
        notifier: Notifier,
        digest: Callable[[str], str],
        source: EventSource,
        poll_seconds: float,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._notifier = notifier
        self.digest = digest
        self._source = source
        self._poll_seconds = poll_seconds
        self.metrics = metrics  # handed to each Connection by the endpoint
        self._by_chat: dict[int, set[Connection]] = {}
        # One subscription per chat, made by its first joiner; later joiners wait for it.
        self._subscriptions: dict[int, asyncio.Future[Unsubscribe]] = {}
        # Per chat, the highest seq handed to its sockets: where reading storage resumes
        # while the notifier is away. (Each socket fills any gap below what it is handed.)
        self._handed: dict[int, int] = {}
        self._poller: asyncio.Task[None] | None = None
        self._poll_now = asyncio.Event()
        self._read_again = False  # the notifier came or went since the round began
        self._stop_revocations = notifier.on_revoke(self._revoked)
        self._stop_connection = notifier.on_connection(self._connection_changed)

    async def join(self, conn: Connection) -> None:
        """Returns once the chat's subscription is live: every event published from then
        on reaches the connection (from the notifier, or read from storage while the
        notifier is not connected)."""
        members = self._by_chat.get(conn.chat_id)
        if members is None:
            members = self._by_chat[conn.chat_id] = set()
            self._handed[conn.chat_id] = conn.last_seq
        members.add(conn)
        self.metrics.socket_opened()
        subscription = self._subscriptions.get(conn.chat_id)
        if subscription is None:
            subscription = asyncio.ensure_future(
                self._notifier.subscribe(conn.chat_id, self._deliver)
            )
            self._subscriptions[conn.chat_id] = subscription
        try:
            await asyncio.shield(subscription)
        except BaseException:
            self.leave(conn)
            raise
        if not self._notifier.connected:
            self._start_polling()

    def leave(self, conn: Connection) -> None:
        members = self._by_chat.get(conn.chat_id)
        if members is None or conn not in members:
            return
        members.discard(conn)
        self.metrics.socket_closed()
        if not members:
            del self._by_chat[conn.chat_id]
            del self._handed[conn.chat_id]
            self._subscriptions.pop(conn.chat_id).add_done_callback(_unsubscribe)

    def connections(self) -> list[Connection]:
        return [conn for members in self._by_chat.values() for conn in members]

    def close_all(self, code: int = CLOSE_GOING_AWAY) -> None:
        for conn in self.connections():
            conn.close(code)

    async def close_and_wait(self, code: int = CLOSE_GOING_AWAY, wait: float = 5.0) -> None:
        """Close every socket and wait (up to ``wait`` seconds) for their close frames to
        go out: the server calls it first thing on shutdown, before it cuts connections."""
        connections = self.connections()
        self.close_all(code)
        if connections:
            await asyncio.wait(
                [asyncio.create_task(c.finished.wait()) for c in connections], timeout=wait
            )

    def stop(self) -> None:
        self.close_all()
        self._stop_revocations()
        self._stop_connection()
        if self._poller is not None:
            self._poller.cancel()

    def _deliver(self, event: Event) -> None:
        members = self._by_chat.get(event.chat_id)
        if not members:
            return
        if event.seq > self._handed[event.chat_id]:
            self._handed[event.chat_id] = event.seq
        frame = event_frame(event)  # rendered once for every local socket
        arrived = time.monotonic()
        for conn in list(members):
            conn.push(event, frame, arrived)

    def _revoked(self, revocation: Revocation) -> None:
        for conn in self.connections():
            if revocation.covers(conn.user.id, conn.token_digest):
                conn.close(CLOSE_POLICY)

    # -- without the notifier -------------------------------------------------------------

    def _connection_changed(self, connected: bool) -> None:
        """Lost: read storage now, then every ``poll_seconds``. Back: read it once more
        (a round that starts now), for what was published before the subscriptions were
        live again."""
        self._read_again = True
        self._poll_now.set()
        self._start_polling()

    def _start_polling(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.ensure_future(self._poll())

    async def _poll(self) -> None:
        while True:
            self._read_again = False
            await self._read_storage()
            if self._read_again:
                continue
            if self._notifier.connected:
                return
            self._poll_now.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poll_now.wait(), self._poll_seconds)

    async def _read_storage(self) -> None:
        """One round: each chat's events after the last handed to its sockets, one read
        per chat, handed on as the notifier would have."""
        for chat_id in list(self._by_chat):
            since = self._handed.get(chat_id)
            if since is None:  # everyone left meanwhile
                continue
            try:
                events = await self._source(chat_id, since, FILL_PAGE)
            except Exception as exc:  # storage away too: the next round tries again
                log.warning("could not read chat %s's events: %s", chat_id, exc)
                continue
            for event in events:
                self._deliver(event)


def _unsubscribe(subscription: asyncio.Future[Unsubscribe]) -> None:
    """Once a subscription nobody needs any more is live (or has failed), end it."""
    if not subscription.cancelled() and subscription.exception() is None:
        subscription.result()()
