"""Real-time delivery: ``/ws/chat/{chat_id}/``.

One :class:`Hub` per process holds the open sockets by chat and subscribes once per
chat to the notifier, so a published message is rendered once and queued to every
local socket of its chat. Each socket has a writer task draining a queue bounded in
bytes: a socket that cannot keep up is closed (1013) and nobody else waits for it. A
socket never sends an id at or below the last it sent, which makes a resume
(``?after=``) gapless and duplicate-free: it subscribes first, replays stored messages
from the database, then goes on with the live ones queued meanwhile.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import attrs
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from chatcore.errors import AuthenticationFailed, NotFound, ValidationFailed
from chatcore.events import Event, MessagePosted
from chatcore.model import Message, Revocation
from chatcore.ports import Notifier, Unsubscribe
from chatcore.rules import MAX_ID, PAGE_MAX
from chatcore.services import Services

from .auth import Credential, authenticate
from .wire import MessageOut, converter, dumps, project

log = logging.getLogger("chatcore.ws")

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008  # credentials revoked, user deactivated
CLOSE_TOO_BIG = 1009
CLOSE_TRY_LATER = 1013  # too slow a reader: reconnect with ?after=
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404
REPLAY_PAGE = PAGE_MAX
WS_PATH = "/ws/chat/{chat_id}/"
FRAME_TYPES = ("message", "chat_message")  # what a client frame's "type" may be


@attrs.frozen
class RealtimeConfig:
    max_frame_bytes: int = 64 * 1024
    queue_bytes: int = 1024 * 1024
    sends_per_second: float = 30.0
    send_burst: int = 60
    allowed_origins: tuple[str, ...] = ()
    recheck_seconds: float = 30.0


def message_frame(message: Message) -> str:
    payload = {"type": "message", "message": converter.unstructure(project(MessageOut, message))}
    return dumps(payload).decode()


def error_frame(code: str, message: str, **extra: object) -> str:
    return dumps({"type": "error", "message": message, "code": code, **extra}).decode()


class TokenBucket:
    """``rate`` sends a second on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self._rate, self._burst = rate, float(burst)
        self._tokens, self._at = float(burst), time.monotonic()

    def take(self) -> float:
        """0 if a send may go now, else the seconds until one may."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate


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


class ChatSocket:
    """The ``/ws/chat/{chat_id}/`` endpoint (an ASGI app per connection)."""

    def __init__(self, services: Services, hub: Hub, config: RealtimeConfig) -> None:
        self._services = services
        self._hub = hub
        self._config = config

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        ws = WebSocket(scope, receive, send)
        try:
            credential, chat_id, after = await self._admit(ws)
        except _Refused as refusal:
            # Accepted first so that a browser can read the close code; nothing of the
            # chat was sent.
            await ws.accept()
            await ws.close(refusal.code)
            return
        digest = self._hub.digest(credential.token)
        conn = Connection(ws, chat_id, credential, digest, self._config.queue_bytes)
        # Join before accepting: once the client's handshake completes, it hears every
        # message stored from then on (what arrives meanwhile waits in its queue).
        try:
            await self._hub.join(conn)
            await ws.accept()
        except Exception:
            self._hub.leave(conn)
            raise
        tasks = [
            asyncio.create_task(self._write(conn, after)),
            asyncio.create_task(self._read(conn)),
            asyncio.create_task(self._watch(conn)),
        ]
        try:
            done, _ = await asyncio.wait([*tasks, conn.closed], return_when=asyncio.FIRST_COMPLETED)
            for task in done - {conn.closed}:
                if not task.cancelled() and (error := task.exception()) is not None:
                    log.error("socket on chat %s failed", chat_id, exc_info=error)
        finally:
            self._hub.leave(conn)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if WebSocketState.DISCONNECTED not in (ws.client_state, ws.application_state):
                with contextlib.suppress(Exception):
                    await ws.close(conn.closing or 1000)
            conn.finished.set()

    async def _admit(self, ws: WebSocket) -> tuple[Credential, int, int | None]:
        try:
            credential = await authenticate(ws, self._services.accounts, query_token=True)
        except AuthenticationFailed:
            raise _Refused(CLOSE_UNAUTHORIZED) from None
        if credential.via_cookie and not self._origin_allowed(ws):
            raise _Refused(CLOSE_UNAUTHORIZED)
        chat_id = int(ws.path_params["chat_id"])
        after = _query_id(ws.query_params.get("after"))
        try:
            if chat_id > MAX_ID:
                raise NotFound
            await self._services.chats.get_chat(credential.user, chat_id)
        except NotFound:
            raise _Refused(CLOSE_NOT_FOUND) from None
        return credential, chat_id, after

    def _origin_allowed(self, ws: WebSocket) -> bool:
        """A cookie travels with any page's request; only our own pages may use it here."""
        origin = ws.headers.get("origin")
        if origin is None:  # not a browser: no cross-site page can be behind it
            return True
        if origin in self._config.allowed_origins:
            return True
        return urlsplit(origin).netloc == ws.headers.get("host")

    async def _write(self, conn: Connection, after: int | None) -> None:
        if after is not None:
            await self._replay(conn, after)
        await conn.drain()

    async def _replay(self, conn: Connection, after: int) -> None:
        """Every stored message after ``after``, page by page; live ones wait queued."""
        while True:
            since = max(after, conn.last_sent_id)
            batch = await self._services.chats.messages_since(conn.user, conn.chat_id, since)
            for message in batch:
                await conn.send(message.id, message_frame(message))
            if len(batch) < REPLAY_PAGE:
                return

    async def _watch(self, conn: Connection) -> None:
        """Re-check the credential now and then: catches expiry, and revocations made by
        another process when the notifier does not cross processes."""
        while True:
            await asyncio.sleep(self._config.recheck_seconds)
            try:
                await self._services.accounts.authenticate(conn.token)
            except AuthenticationFailed:
                conn.close(CLOSE_POLICY)
                return

    async def _read(self, conn: Connection) -> None:
        bucket = TokenBucket(self._config.sends_per_second, self._config.send_burst)
        while True:
            try:
                event = await conn.ws.receive()
            except WebSocketDisconnect:
                return
            if event["type"] == "websocket.disconnect":
                return
            raw = event.get("text")
            if raw is None:
                raw = (event.get("bytes") or b"").decode("utf-8", "replace")
            if _too_big(raw, self._config.max_frame_bytes):
                conn.close(CLOSE_TOO_BIG)
                return
            await self._handle(conn, raw, bucket)

    async def _handle(self, conn: Connection, raw: str, bucket: TokenBucket) -> None:
        try:
            frame = json.loads(raw)
        except ValueError:
            await conn.ws.send_text(error_frame("invalid_json", "The frame is not valid JSON."))
            return
        problem = _frame_problem(frame)
        if problem is not None:
            await conn.ws.send_text(error_frame(*problem))
            return
        wait = bucket.take()
        if wait:
            await conn.ws.send_text(
                error_frame(
                    "rate_limited",
                    "Too many messages; slow down.",
                    retry_after_ms=max(1, round(wait * 1000)),
                )
            )
            return
        try:
            message, created = await self._services.chats.send_message(
                conn.user, conn.chat_id, frame["content"], frame.get("client_id")
            )
        except ValidationFailed as exc:
            field = "content" if "content" in exc.fields else next(iter(exc.fields))
            code = "invalid_content" if field == "content" else "invalid_frame"
            await conn.ws.send_text(error_frame(code, f"{field}: {' '.join(exc.fields[field])}"))
            return
        except NotFound:  # the chat was deleted, or the user removed from it
            conn.close(CLOSE_NOT_FOUND)
            return
        if not created:  # a retried client_id: the original, to this socket only
            await conn.ws.send_text(message_frame(message))


class _Refused(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def _too_big(text: str, limit: int) -> bool:
    """Whether the frame's UTF-8 form passes ``limit`` bytes, encoding it only when its
    length alone cannot tell (a character is 1 to 4 bytes): not on every frame."""
    if len(text) > limit:
        return True
    return len(text) * 4 > limit and len(text.encode("utf-8", "surrogatepass")) > limit


def _query_id(raw: str | None) -> int | None:
    if raw is None or not raw.isdecimal():
        return None
    value = int(raw)
    return value if 0 <= value <= MAX_ID else None


def _frame_problem(frame: object) -> tuple[str, str] | None:
    """What is wrong with a client frame's shape, as (code, message), or None."""
    if not isinstance(frame, dict):
        return "invalid_frame", "A frame must be a JSON object."
    kind = frame.get("type", "message")
    if kind not in FRAME_TYPES:
        return "unknown_type", f"Unknown frame type: {str(kind)[:64]!r}."
    content = frame.get("content")
    if not isinstance(content, str):
        return "invalid_content", "content must be a string."
    client_id = frame.get("client_id")
    if client_id is not None and not isinstance(client_id, str):
        return "invalid_frame", "client_id must be a string."
    return None


def realtime_routes(services: Services, hub: Hub, config: RealtimeConfig) -> list[BaseRoute]:
    endpoint = ChatSocket(services, hub, config)
    path = WS_PATH.replace("{chat_id}", "{chat_id:int}")
    return [WebSocketRoute(variant, endpoint) for variant in (path, path.rstrip("/"))]
