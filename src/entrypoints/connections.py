"""uvicorn's httptools protocol with the connection limits uvicorn lacks.

uvicorn bounds idle keep-alive connections (``timeout_keep_alive``) and nothing else on
the way in: a client may take forever to send a request's head or body, send a head of
any size (httptools grows a header by concatenation, so a 32 MiB one also costs CPU),
and hold as many connections as the process has file descriptors, after which
``accept()`` fails and nobody is served. uvicorn's ``limit_concurrency`` does not help:
it counts stalled connections too and answers everyone beyond it 503.

So each connection here has a deadline for its head (from when the connection opens or
its previous response ends) and one for its body (from when its head is complete), a
cap on head bytes and header count (431), and a per-server cap on open connections
below the open-file limit: past the cap, the connection that has waited longest for a
head is closed to make room, and only when none is waiting is the newcomer refused
(503). A stalled client thus loses its place to a live one instead of starving it.
"""

from __future__ import annotations

import asyncio
import json
import resource
import weakref
from typing import Any

import attrs
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

FD_RESERVE = 64  # descriptors kept for the database, the listener, logs and the loop
LINGER_SECONDS = 2.0  # how long a refused client may go on sending before it is cut off
LINGER_BYTES = 1024 * 1024  # and how much


@attrs.frozen
class ConnectionLimits:
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    max_connections: int = 1000

    def fitted(self) -> ConnectionLimits:
        """These limits with ``max_connections`` lowered to what the open-file limit
        allows: a cap above it would let ``accept()`` fail before the cap is reached."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return self
        room = max(1, soft - FD_RESERVE)
        return attrs.evolve(self, max_connections=min(self.max_connections, room))


class LimitedConfig(Config):
    """uvicorn's Config carrying our limits to every protocol instance (and, being a
    module-level class, picklable for uvicorn's worker processes)."""

    def __init__(self, app: Any, *, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(app, http=LimitedHttpProtocol, **kwargs)
        self.limits = limits.fitted()


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing; uvicorn then answers through
    ``send_400_response``, which sends our status instead."""


# Per server: the connections waiting for a request head, longest-waiting first.
_WAITING: weakref.WeakKeyDictionary[ServerState, dict[LimitedHttpProtocol, None]] = (
    weakref.WeakKeyDictionary()
)


class LimitedHttpProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits: ConnectionLimits = getattr(config, "limits", None) or ConnectionLimits()
        self._waiting = _WAITING.setdefault(server_state, {})
        self._timer: asyncio.TimerHandle | None = None
        self._in_head = False  # between the previous response (or connect) and a full head
        self._head_started = False  # some byte of the awaited head has arrived
        self._head_bytes = 0  # bytes received since the head was awaited
        self._head_size = 0  # the parsed head's size: its URL and "name: value" lines
        self._header_count = 0
        self._lingering = False
        self._body_done = True  # the last request's body is all in (or there was none)
        self._refusal: tuple[int, str] | None = None

    # --- the connection's phases ------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()
        if len(self.connections) > self.limits.max_connections:
            longest = next(iter(self._waiting), self)
            if longest is self:  # every other connection is busy: no room
                self._reply(503, "The server is at its connection limit; try again later.")
            else:
                longest._give_up(503, "The server needed this connection for another client.")

    def connection_lost(self, exc: Exception | None) -> None:
        self._leave_head()
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:  # the answer is out; what the client still sends is dropped
            self._head_bytes += len(data)
            if self._head_bytes > LINGER_BYTES:
                self.transport.close()
            return
        if self._in_head and self._head_started:  # a head that began in an earlier read
            self._head_bytes += len(data)
        super().data_received(data)
        # A head still incomplete after this much is refused now, before httptools
        # buffers (and re-copies) any more of it.
        if self._in_head and self._head_bytes > self.limits.max_header_bytes:
            self._reply(431, "Request header fields too large.", linger=True)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_started = True
        self._header_count = self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url), 414, "Request-URI too long.")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._refuse(431, f"More than {self.limits.max_headers} header fields.")
        self._count_head(len(name) + len(value) + 4, 431, "Request header fields too large.")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._leave_head()
        self._body_done = False
        self._arm(self.limits.body_timeout, self._body_timed_out)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._body_done = True
        answered = self.cycle is not None and self.cycle.response_complete
        super().on_message_complete()
        if answered:  # answered early (413, 401...), the rest of the body read since
            self._await_head()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # a next request whose head is already in
        super().on_response_complete()
        # The next head is awaited once the body is read too; until then the body's
        # deadline still runs.
        if self._body_done and not pipelined and not self.transport.is_closing():
            self._await_head()

    def handle_websocket_upgrade(self) -> None:
        self._leave_head()  # the WebSocket protocol takes over; it has its own pings
        self._disarm()
        super().handle_websocket_upgrade()

    def send_400_response(self, msg: str) -> None:
        if self._refusal is None:
            super().send_400_response(msg)
        else:
            self._reply(*self._refusal, linger=True)

    # --- helpers ----------------------------------------------------------------------

    def _await_head(self) -> None:
        self._in_head, self._head_started, self._head_bytes = True, False, 0
        self._waiting.pop(self, None)
        self._waiting[self] = None  # now the newest waiter
        self._arm(self.limits.header_timeout, self._head_timed_out)

    def _leave_head(self) -> None:
        self._in_head = False
        self._waiting.pop(self, None)

    def _head_timed_out(self) -> None:
        self._give_up(408, "The request head took too long to arrive.")

    def _body_timed_out(self) -> None:
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()  # too late for a status: the answer is under way
        else:
            self._reply(408, "The request body took too long to arrive.")

    def _give_up(self, status: int, detail: str) -> None:
        """Drop a connection waiting for a head: with a status if a head had begun, or
        silently if it was idle (as uvicorn drops idle keep-alive connections)."""
        if self._head_started:
            self._reply(status, detail)
        else:
            self._leave_head()
            self._disarm()
            self.transport.close()

    def _count_head(self, size: int, status: int, detail: str) -> None:
        self._head_size += size
        if self._head_size > self.limits.max_header_bytes:
            self._refuse(status, detail)

    def _refuse(self, status: int, detail: str) -> None:
        self._refusal = (status, detail)
        raise _Refused(detail)

    def _reply(self, status: int, detail: str, *, linger: bool = False) -> None:
        """Answer ``{"detail": ...}`` with ``status`` and close, outside the app.

        With ``linger``, for a client likely still sending (an oversized head), only our
        side is shut at first and its further bytes are read and dropped for a moment:
        closing a socket with unread input resets it, and the reset can destroy the
        answer before the client reads it."""
        self._leave_head()
        self._disarm()
        if self.transport.is_closing():
            return
        body = json.dumps({"detail": detail}).encode()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join([*head, body]))
        if linger and self.transport.can_write_eof():
            self._lingering, self._head_bytes = True, 0
            self.flow.resume_reading()
            self.transport.write_eof()
            self._arm(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()

    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
