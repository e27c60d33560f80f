"""The ceiling server: what Starlette and uvicorn alone cost for the benchmark's routes.

It serves the routes the REST-send and fan-out scenarios use, with chatcore's JSON
shapes and WebSocket frames, under chatcore's own uvicorn settings (the same
``entrypoints.server.config``: httptools with chatcore's connection-limit protocol, the
same WebSocket frame size and pings), but from memory: tokens are plain (no hashing), no
password is hashed, nothing is stored in a database, nothing is fsync'd. chatcore's
figure over this one is how close the real server gets to doing no work of its own.

    python bench/ceiling.py --port PORT        # from the repository root

Routes: POST /api/register/, GET /api/me/, POST /api/chats/,
POST /api/chats/{id}/send_message/, WebSocket /ws/chat/{id}/?token=. Anything else 404.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from entrypoints import server as chatcore_server

JSON = "application/json"


def dumps(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def now_text() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def reply(data: object, status: int = 200) -> Response:
    return Response(dumps(data), status, media_type=JSON)


UNAUTHORIZED = reply({"detail": "Authentication credentials were not provided."}, 401)


class Socket:
    """One open WebSocket and its outbound queue, drained by one writer task (as
    chatcore's sockets are: a sender never waits for a listener)."""

    def __init__(self, ws: WebSocket) -> None:
        self.send = ws._send
        self.queue: collections.deque[str] = collections.deque()
        self.ready = asyncio.Event()

    def push(self, frame: str) -> None:
        self.queue.append(frame)
        self.ready.set()

    async def drain(self) -> None:
        while True:
            await self.ready.wait()
            self.ready.clear()
            while self.queue:
                await self.send({"type": "websocket.send", "text": self.queue.popleft()})


class State:
    """Users by plain token, chats with their members, messages by client_id."""

    def __init__(self) -> None:
        self.users: dict[int, dict[str, Any]] = {}
        self.by_token: dict[str, dict[str, Any]] = {}
        self.members: dict[int, set[int]] = {}
        self.chats: dict[int, dict[str, Any]] = {}
        self.sockets: dict[int, set[Socket]] = {}
        self.sent: dict[tuple[int, int, str], dict[str, Any]] = {}
        self.next_message = 1

    def user(self, request: Request | WebSocket) -> dict[str, Any] | None:
        header = request.headers.get("authorization", "")
        token = header.split(" ", 1)[1] if " " in header else request.query_params.get("token")
        return self.by_token.get(token or "")

    def send(self, user: dict[str, Any], chat_id: int, body: Any) -> tuple[dict[str, Any], bool]:
        key = (chat_id, user["id"], body.get("client_id"))
        if key[2] is not None and key in self.sent:
            return self.sent[key], False
        message = {
            "id": self.next_message,
            "chat": chat_id,
            "sender": {k: user[k] for k in ("id", "username", "user_type")},
            "content": body["content"],
            "timestamp": now_text(),
            "client_id": key[2],
        }
        self.next_message += 1
        if key[2] is not None:
            self.sent[key] = message
        frame = dumps({"type": "message", "message": message}).decode()
        for sock in self.sockets.get(chat_id, ()):
            sock.push(frame)
        return message, True


STATE = State()


async def register(request: Request) -> Response:
    body = await request.json()
    user_id = len(STATE.users) + 1
    user = {
        "id": user_id,
        "username": body["username"],
        "email": body.get("email", ""),
        "user_type": body.get("user_type", "student"),
        "date_joined": now_text(),
        "is_admin": False,
    }
    token = secrets.token_urlsafe(32)
    STATE.users[user_id] = user
    STATE.by_token[token] = user
    return reply({**user, "token": token}, 201)


async def me(request: Request) -> Response:
    user = STATE.user(request)
    return UNAUTHORIZED if user is None else reply(user)


async def create_chat(request: Request) -> Response:
    user = STATE.user(request)
    if user is None:
        return UNAUTHORIZED
    body = await request.json()
    chat_id = len(STATE.chats) + 1
    members = {user["id"], *body.get("participant_ids", ())}
    people = [{k: STATE.users[m][k] for k in ("id", "username", "user_type")} for m in members]
    chat = {
        "id": chat_id,
        "name": body.get("name", ""),
        "participants": people,
        "created_at": now_text(),
        "last_message": None,
    }
    STATE.chats[chat_id] = chat
    STATE.members[chat_id] = members
    return reply(chat, 201)


async def send_message(request: Request) -> Response:
    user = STATE.user(request)
    if user is None:
        return UNAUTHORIZED
    chat_id = request.path_params["chat_id"]
    if user["id"] not in STATE.members.get(chat_id, ()):
        return reply({"detail": "Not found."}, 404)
    message, created = STATE.send(user, chat_id, json.loads(await request.body()))
    return reply(message, 201 if created else 200)


async def chat_socket(ws: WebSocket) -> None:
    user = STATE.user(ws)
    chat_id = ws.path_params["chat_id"]
    await ws.accept()
    if user is None or user["id"] not in STATE.members.get(chat_id, ()):
        await ws.close(4401 if user is None else 4404)
        return
    sock = Socket(ws)
    STATE.sockets.setdefault(chat_id, set()).add(sock)
    writer = asyncio.create_task(sock.drain())
    try:
        while True:
            frame = json.loads(await ws.receive_text())
            STATE.send(user, chat_id, frame)
    except WebSocketDisconnect:
        pass
    finally:
        STATE.sockets[chat_id].discard(sock)
        writer.cancel()


def create_app() -> Starlette:
    routes: list[Any] = []
    for path, endpoint, methods in (
        ("/api/register/", register, ["POST"]),
        ("/api/me/", me, ["GET"]),
        ("/api/chats/", create_chat, ["POST"]),
        ("/api/chats/{chat_id:int}/send_message/", send_message, ["POST"]),
    ):
        routes += [Route(v, endpoint, methods=methods) for v in (path, path.rstrip("/"))]
    ws_path = "/ws/chat/{chat_id:int}/"
    routes += [WebSocketRoute(v, chat_socket) for v in (ws_path, ws_path.rstrip("/"))]
    return Starlette(routes=routes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    cfg = chatcore_server.config(
        args.host, args.port, app="ceiling:create_app", log_level=args.log_level
    )
    chatcore_server.Server(cfg).run()


if __name__ == "__main__":
    main()
