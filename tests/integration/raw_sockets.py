"""A WebSocket client below the websockets library, for what a real client would never
do: complete the handshake and then stop reading."""

from __future__ import annotations

import asyncio
import socket


def raw_upgrade(port: int, path: str) -> socket.socket:
    """A WebSocket that completes its handshake and then never reads."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += sock.recv(1)
    assert reply.startswith(b"HTTP/1.1 101"), reply
    return sock


async def read_to_end(sock: socket.socket, guard: float) -> bytes:
    """Everything the server sends until it ends the connection (a reset after its
    close handshake timed out is an end too); then the socket is closed. ``guard``
    bounds each read, not the whole."""
    received = bytearray()
    sock.settimeout(guard)
    try:
        while chunk := await asyncio.to_thread(sock.recv, 1 << 16):
            received += chunk
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    return bytes(received)
