"""The ``/ws/chat/{chat_id}/`` endpoint: the handshake's checks, then per socket a writer
(a replay from storage for ``?after=``, then the hub's live frames), a reader of client
frames and a watcher of the credential. A resume subscribes first, replays stored messages
from the database, then goes on with the live ones queued meanwhile.

:data:`CHAT_SOCKET` is the endpoint's row in the OpenAPI document, as an ``Operation`` is
a REST endpoint's: its frames and code tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import urlsplit

import attrs
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from chatcore.errors import AuthenticationFailed, DomainError, NotFound, Throttled, Unavailable
from chatcore.model import Chat
from chatcore.rules import MAX_ID, PAGE_MAX
from chatcore.services import Services

from ..auth import Credential, authenticate
from ..ids import parse_id
from ..wire import query_int
from . import codes
from .codes import CLOSE_NORMAL, CLOSE_TOO_BIG, CloseCode, ErrorCode
from .config import RealtimeConfig
from .frames import EVENT_FRAMES, WsClientFrame, WsErrorFrame, WsMessageFrame, message_frame, text
from .frames import parse_client_frame as parse
from .hub import Connection, Hub
from .ratelimit import TokenBucket

log = logging.getLogger("chatcore.ws")

REPLAY_PAGE = PAGE_MAX
WS_PATH = "/ws/chat/{chat_id}/"


@attrs.frozen
class Socket:
    """A WebSocket endpoint as the document describes it."""

    path: str
    summary: str
    client_frame: type
    event_frames: tuple[type, ...]  # one per event kind, in the order of the kinds
    server_frames: tuple[type, ...]  # the others
    error_frame: type  # the server frame whose ``code`` is one of ``error_codes``
    error_codes: tuple[ErrorCode, ...]
    close_codes: tuple[CloseCode, ...]
    max_frame_bytes: int


CHAT_SOCKET = Socket(
    path=WS_PATH,
    summary="Real-time events of one chat",
    client_frame=WsClientFrame,
    event_frames=tuple(EVENT_FRAMES.values()),
    server_frames=(WsMessageFrame, WsErrorFrame),
    error_frame=WsErrorFrame,
    error_codes=codes.ERROR_CODES,
    close_codes=codes.CLOSE_CODES,
    max_frame_bytes=RealtimeConfig().max_frame_bytes,
)


class ChatSocket:
    """The ``/ws/chat/{chat_id}/`` endpoint (an ASGI app per connection)."""

    def __init__(self, services: Services, hub: Hub, config: RealtimeConfig) -> None:
        self._services = services
        self._hub = hub
        self._config = config

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        ws = WebSocket(scope, receive, send)
        try:
            credential, chat, resume = await self._admit(ws)
        except DomainError as exc:
            code = codes.refusal(exc)
            # Accepted first so that a browser can read the close code; nothing of the
            # chat was sent.
            await ws.accept()
            await ws.close(code)
            return
        chat_id = chat.id
        digest = self._hub.digest(credential.token)
        # The stream starts after ``?since=`` (never past the chat's seq now), else at
        # the chat's seq as admitted: what is stored between admission and the
        # subscription comes from storage in the writer's first catch-up.
        start = chat.seq if resume.since is None else min(resume.since, chat.seq)
        source = self._services.deps.storage.chats.events
        conn = Connection(
            ws,
            chat_id,
            credential,
            digest,
            self._config.queue_bytes,
            source,
            start,
            self._hub.metrics,
        )
        # Join before accepting: once the client's handshake completes, it hears every
        # event stored from then on (what arrives meanwhile waits in its queue).
        try:
            await self._hub.join(conn)
            await ws.accept()
        except Exception:
            self._hub.leave(conn)
            raise
        tasks = [
            asyncio.create_task(self._write(conn, resume)),
            asyncio.create_task(self._read(conn)),
            asyncio.create_task(self._watch(conn)),
        ]
        try:
            done, _ = await asyncio.wait([*tasks, conn.closed], return_when=asyncio.FIRST_COMPLETED)
            for task in done - {conn.closed}:
                if task.cancelled() or (error := task.exception()) is None:
                    continue
                if isinstance(error, Unavailable):  # the database went away: come back later
                    conn.close(codes.CLOSE_TRY_LATER)
                else:
                    log.error("socket on chat %s failed", chat_id, exc_info=error)
        finally:
            self._hub.leave(conn)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if WebSocketState.DISCONNECTED not in (ws.client_state, ws.application_state):
                with contextlib.suppress(Exception):
                    await ws.close(conn.closing or CLOSE_NORMAL)
            conn.finished.set()

    async def _admit(self, ws: WebSocket) -> tuple[Credential, Chat, Resume]:
        credential = await authenticate(ws, self._services.accounts, query_token=True)
        if credential.via_cookie and not self._origin_allowed(ws):
            raise AuthenticationFailed
        chat_id = parse_id(ws.path_params["chat_id"])
        query = ws.query_params
        resume = Resume(_query_id(query.get("since")), _query_id(query.get("after")))
        if chat_id is None:  # no chat has that id
            raise NotFound
        chat = await self._services.chats.get_chat(credential.user, chat_id)
        return credential, chat, resume

    def _origin_allowed(self, ws: WebSocket) -> bool:
        """A cookie travels with any page's request; only our own pages may use it here."""
        origin = ws.headers.get("origin")
        if origin is None:  # not a browser: no cross-site page can be behind it
            return True
        if origin in self._config.allowed_origins:
            return True
        try:
            return urlsplit(origin).netloc == ws.headers.get("host")
        except ValueError:  # "http://[" and the like: no site of ours
            return False

    async def _write(self, conn: Connection, resume: Resume) -> None:
        if resume.since is None and resume.after is not None:
            await self._replay_messages(conn, resume.after)
        await conn.catch_up()
        await conn.drain()

    async def _replay_messages(self, conn: Connection, after: int) -> None:
        """The v1 resume: every stored message after ``after`` by id, page by page, as
        v1 frames (no seq: this replay is by message id); the seq stream goes on from
        the chat's seq at admission, without the messages sent here again. Live events
        wait queued meanwhile."""
        while True:
            since = max(after, conn.replayed_message_id)
            batch = await self._services.chats.messages_since(conn.user, conn.chat_id, since)
            for message in batch:
                await conn.send_text(message_frame(message))
                conn.replayed_message_id = message.id
            if len(batch) < REPLAY_PAGE:
                return

    async def _watch(self, conn: Connection) -> None:
        """Re-check the credential now and then: catches expiry, and revocations made by
        another process when the notifier does not cross processes; and storage, for
        events whose notification was lost (one's own removal among them)."""
        while True:
            await asyncio.sleep(self._config.recheck_seconds)
            conn.recheck()
            try:
                await self._services.accounts.authenticate(conn.token)
            except AuthenticationFailed as exc:
                await _act(conn, codes.answer(exc))
                return
            except Unavailable:  # the database is away: the next round checks again
                continue

    async def _read(self, conn: Connection) -> None:
        bucket = TokenBucket(self._config.sends_per_second, self._config.send_burst)
        while True:
            try:
                event = await conn.ws.receive()
            except WebSocketDisconnect:
                return
            if event["type"] == "websocket.disconnect":
                return
            # A binary frame goes to json.loads as it is: UTF-8 or not, it is measured
            # by its own length, and bytes that are not text fail as invalid JSON.
            raw: str | bytes = event.get("text") or event.get("bytes") or ""
            if _too_big(raw, self._config.max_frame_bytes):
                conn.close(CLOSE_TOO_BIG)
                return
            await self._handle(conn, raw, bucket)

    async def _handle(self, conn: Connection, raw: str | bytes, bucket: TokenBucket) -> None:
        try:
            frame = parse(raw)
            wait = bucket.take()
            if wait:
                raise Throttled(wait)
            message, created = await self._services.chats.send_message(
                conn.user, conn.chat_id, frame.content, frame.client_id
            )
        except codes.ANSWERED as exc:
            await _act(conn, codes.answer(exc))
            return
        if not created:
            # A retried client_id is no event: the original, to this socket only, in
            # the v1 frame (no seq; the event went out, or goes out, at its own seq).
            await conn.send_text(message_frame(message))


async def _act(conn: Connection, answer: codes.Answer) -> None:
    """Send the error frame, or close with the code, that the table answered."""
    if isinstance(answer, int):
        conn.close(answer)
    else:
        await conn.ws.send_text(text(answer))


def _too_big(raw: str | bytes, limit: int) -> bool:
    """Whether the frame's UTF-8 form passes ``limit`` bytes, encoding it only when its
    length alone cannot tell (a character is 1 to 4 bytes): not on every frame."""
    if len(raw) > limit:
        return True
    if isinstance(raw, bytes):
        return False
    return len(raw) * 4 > limit and len(raw.encode("utf-8", "surrogatepass")) > limit


@attrs.frozen
class Resume:
    """Where a socket's stream starts: ``?since=<seq>`` (the events after it), or the v1
    ``?after=<message id>`` (the messages after it, then the events from now on). Both
    given: ``since``. Neither: the events from now on."""

    since: int | None = None
    after: int | None = None


def _query_id(raw: str | None) -> int | None:
    """``?since=`` or ``?after=``: a seq or message id, 0 for the whole history; anything
    else is ignored (as v1 did for ``after``)."""
    value = None if raw is None else query_int(raw)
    return value if value is not None and 0 <= value <= MAX_ID else None


def realtime_routes(services: Services, hub: Hub, config: RealtimeConfig) -> list[BaseRoute]:
    endpoint = ChatSocket(services, hub, config)
    # Any segment: one that is not a chat id is refused with 4404 like a chat that is
    # not there (see _admit), which a browser can read, where a failed route could not.
    return [WebSocketRoute(variant, endpoint) for variant in (WS_PATH, WS_PATH.rstrip("/"))]
