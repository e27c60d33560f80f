"""The fan-out: one :class:`Hub` per process holds the open sockets by chat and
subscribes once per chat to the notifier, so a published message is rendered once and
queued to every local socket of its chat. Each :class:`Connection` has a writer task
draining a queue bounded in bytes: a socket that cannot keep up is closed (1013) and
nobody else waits for it. A socket never sends an id at or below the last it sent, which
makes a resume (``?after=``) gapless and duplicate-free.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable

from starlette.websockets import WebSocket

from chatcore.events import Event, MessagePosted
from chatcore.model import Revocation
from chatcore.ports import Notifier, Unsubscribe

from ..auth import Credential
from .codes import CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_TRY_LATER
from .frames import message_frame


class Connection:
    """One open socket on one chat, and its outbound queue."""

    def __init__(
        self, ws: WebSocket, chat_id: int, credential: Credential, token_digest: str, limit: int
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
        self._queue: collections.deque[tuple[int, str]] = collections.deque()
        self._queued_bytes = 0
        self._ready = asyncio.Event()
        self.last_sent_id = 0
        self.closing: int | None = None

    def push(self, message_id: int, frame: str) -> None:
        """Queue a frame; past the byte limit, give up on this reader instead."""
        if self.closing is not None:
            return
        if self._queued_bytes + len(frame) > self._limit:
            self.close(CLOSE_TRY_LATER)
            return
        self._queue.append((message_id, frame))
        self._queued_bytes += len(frame)
        self._ready.set()

    def close(self, code: int) -> None:
        """Drop what is queued and have the socket closed with ``code``, even while a
        send is stuck on a reader that stopped reading."""
        if self.closing is None:
            self.closing = code
            self._queue.clear()
            self._queued_bytes = 0
            self.closed.set_result(None)

    async def send(self, message_id: int, frame: str) -> None:
        """Send unless an equal or later id went already: ids only grow on a socket."""
        if message_id > self.last_sent_id:
            self.last_sent_id = message_id
            # Straight to the server's ASGI send: the hot path of every delivery, with
            # none of Starlette's per-message state bookkeeping (the socket is open).
            await self._send({"type": "websocket.send", "text": frame})

    async def drain(self) -> None:
        """Send queued frames, forever (the connection's owner cancels it)."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._queue:
                message_id, frame = self._queue.popleft()
                self._queued_bytes -= len(frame)
                await self.send(message_id, frame)


class Hub:
    """This process's open sockets, by chat; one notifier subscription per busy chat."""

    def __init__(self, notifier: Notifier, digest: Callable[[str], str]) -> None:
        self._notifier = notifier
        self.digest = digest
        self._by_chat: dict[int, set[Connection]] = {}
        # One subscription per chat, made by its first joiner; later joiners wait for it.
        self._subscriptions: dict[int, asyncio.Future[Unsubscribe]] = {}
        self._stop_revocations = notifier.on_revoke(self._revoked)

    async def join(self, conn: Connection) -> None:
        """Returns once the chat's subscription is live: every event published from then
        on reaches the connection."""
        members = self._by_chat.setdefault(conn.chat_id, set())
        members.add(conn)
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

    def leave(self, conn: Connection) -> None:
        members = self._by_chat.get(conn.chat_id)
        if members is None:
            return
        members.discard(conn)
        if not members:
            del self._by_chat[conn.chat_id]
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

    def _deliver(self, event: Event) -> None:
        if not isinstance(event, MessagePosted):  # other kinds: v2 frames, still to come
            return
        message = event.message
        frame = message_frame(message)  # rendered once for every local socket
        for conn in list(self._by_chat.get(message.chat_id, ())):
            conn.push(message.id, frame)

    def _revoked(self, revocation: Revocation) -> None:
        for conn in self.connections():
            if revocation.covers(conn.user.id, conn.token_digest):
                conn.close(CLOSE_POLICY)


def _unsubscribe(subscription: asyncio.Future[Unsubscribe]) -> None:
    """Once a subscription nobody needs any more is live (or has failed), end it."""
    if not subscription.cancelled() and subscription.exception() is None:
        subscription.result()()
