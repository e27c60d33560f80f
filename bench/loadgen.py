"""The load generator: what runs in the client processes, never in a server's.

Every worker is a plain function run in its own process (multiprocessing, "spawn") with
its own asyncio event loop. It reports on one queue: ``("ready", index, info)`` once it
is connected and waiting for the start signal, then ``("result", index, dict)``. Every
loop is bounded in count and in time.

Message contents carry their own identity so the same client works with the baseline,
which has no ``client_id`` in its frames: ``TAG|chat|sender|seq|send_time`` where
``send_time`` is CLOCK_MONOTONIC (shared by all processes of the machine).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import multiprocessing.queues
import multiprocessing.synchronize
import random
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import attrs
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from lib import HttpError, RawHttp, monotonic

Spec = dict[str, Any]
Result = dict[str, Any]


@attrs.frozen
class Control:
    index: int
    out: multiprocessing.queues.Queue[tuple[str, int, Any]]
    go: multiprocessing.synchronize.Event
    stop: multiprocessing.synchronize.Event

    def ready(self, info: object = None) -> None:
        self.out.put(("ready", self.index, info))

    async def wait_go(self, timeout: float) -> None:
        if not await asyncio.to_thread(self.go.wait, timeout):
            raise TimeoutError(f"no start signal in {timeout} s")

    async def wait_stop(self, timeout: float) -> bool:
        return await asyncio.to_thread(self.stop.wait, timeout)


Worker = Callable[[Spec, Control], Coroutine[Any, Any, Result]]


def entry(
    kind: str,
    spec: Spec,
    index: int,
    out: multiprocessing.queues.Queue[tuple[str, int, Any]],
    go: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
) -> None:
    """The process's main: run one worker, always report a result (or its error)."""
    ctl = Control(index, out, go, stop)
    result: Result
    try:
        result = asyncio.run(WORKERS[kind](spec, ctl))
    except BaseException as exc:
        result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    out.put(("result", index, result))


async def _run_clients(
    clients: list[Any], loop: Callable[[int, Any], Awaitable[None]]
) -> tuple[float, float, float]:
    """Run ``loop(k, client)`` for every client at once, then close the clients:
    (CPU seconds of this process, monotonic start, monotonic finish)."""
    cpu = time.process_time()
    started = monotonic()
    await asyncio.gather(*(loop(k, c) for k, c in enumerate(clients)))
    finished = monotonic()
    cpu = time.process_time() - cpu
    for client in clients:
        await client.close()
    return cpu, started, finished


async def ws_open(uri: str) -> ClientConnection:
    # No permessage-deflate (same for both servers): the clients share the server's
    # cores, and compressing 100-byte frames buys nothing.
    return await connect(
        uri,
        compression=None,
        ping_interval=None,
        open_timeout=60,
        close_timeout=5,
        max_size=2**22,
    )


async def gather_bounded(
    jobs: list[Callable[[], Awaitable[Any]]], concurrency: int
) -> list[Any | BaseException]:
    """Run the jobs, at most ``concurrency`` at once; exceptions are returned."""
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await job()

    return await asyncio.gather(*(one(j) for j in jobs), return_exceptions=True)


def content(tag: str, chat: int, sender: int, seq: int) -> str:
    return f"{tag}|{chat}|{sender}|{seq}|{monotonic():.6f}"


def describe(exc: BaseException) -> str:
    if isinstance(exc, InvalidStatus):
        return f"handshake HTTP {exc.response.status_code}"
    return f"{type(exc).__name__}: {exc}"[:200]


# --------------------------------------------------------------------------- listening


@attrs.define(eq=False)
class Listener:
    """One client socket on one chat, recording what it hears."""

    ws: ClientConnection
    chat: int
    member: int
    tag: str
    expected: int
    done: asyncio.Event
    latencies: list[float]
    seen: set[tuple[int, int]] = attrs.Factory(set)
    duplicates: int = 0
    misrouted: int = 0
    foreign: int = 0
    error_frames: int = 0
    error_sample: str | None = None
    close_code: int | None = None
    last_at: float = 0.0
    waiting: tuple[int, asyncio.Future[None]] | None = None
    task: asyncio.Task[None] | None = None

    async def listen(self) -> None:
        try:
            async for raw in self.ws:
                now = monotonic()
                frame = json.loads(raw)
                if frame.get("type") != "message":
                    self.error_frames += 1
                    self.error_sample = self.error_sample or str(raw)[:200]
                    continue
                parts = str(frame["message"]["content"]).split("|")
                if len(parts) != 5 or parts[0] != self.tag:
                    self.foreign += 1
                    continue
                if int(parts[1]) != self.chat:
                    self.misrouted += 1
                    continue
                key = (int(parts[2]), int(parts[3]))
                if key in self.seen:
                    self.duplicates += 1
                    continue
                self.seen.add(key)
                self.latencies.append(now - float(parts[4]))
                self.last_at = now
                if len(self.seen) >= self.expected:
                    self.done.set()
                waiting = self.waiting
                if waiting and key == (self.member, waiting[0]) and not waiting[1].done():
                    waiting[1].set_result(None)
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.done.set()

    def report(self) -> dict[str, Any]:
        return {
            "received": len(self.seen),
            "duplicates": self.duplicates,
            "misrouted": self.misrouted,
            "foreign": self.foreign,
            "error_frames": self.error_frames,
            "error_sample": self.error_sample,
            "close_code": self.close_code,
        }


def merge_listeners(listeners: list[Listener]) -> dict[str, Any]:
    lost = sum(max(0, x.expected - len(x.seen)) for x in listeners)
    closed = [x.close_code for x in listeners if x.close_code is not None]
    return {
        "sockets": len(listeners),
        "received": sum(len(x.seen) for x in listeners),
        "expected": sum(x.expected for x in listeners),
        "lost": lost,
        "duplicates": sum(x.duplicates for x in listeners),
        "misrouted": sum(x.misrouted for x in listeners),
        "error_frames": sum(x.error_frames for x in listeners),
        "error_sample": next((x.error_sample for x in listeners if x.error_sample), None),
        "closed_early": len(closed),
        "close_codes": sorted(set(closed)),
        "last_delivery": max((x.last_at for x in listeners), default=0.0),
    }


async def open_listeners(
    ws_base: str,
    chat_members: list[tuple[int, int, str]],
    tag: str,
    expected: int,
    latencies: list[float],
    concurrency: int = 20,
) -> list[Listener]:
    """A socket per (chat, member index, token), each listening in its own task."""

    def opener(chat: int, token: str) -> Callable[[], Awaitable[ClientConnection]]:
        return lambda: ws_open(f"{ws_base}/ws/chat/{chat}/?token={token}")

    opened = await gather_bounded([opener(c, t) for c, _, t in chat_members], concurrency)
    failures = [x for x in opened if isinstance(x, BaseException)]
    if failures:
        for ws in opened:
            if isinstance(ws, ClientConnection):
                await ws.close()
        raise RuntimeError(f"{len(failures)} sockets failed to open: {describe(failures[0])}")
    listeners = []
    for (chat, member, _), ws in zip(chat_members, opened, strict=True):
        assert isinstance(ws, ClientConnection)
        listener = Listener(ws, chat, member, tag, expected, asyncio.Event(), latencies)
        listener.task = asyncio.create_task(listener.listen())
        listeners.append(listener)
    return listeners


async def close_all(listeners: list[Listener]) -> None:
    await gather_bounded([x.ws.close for x in listeners], 50)
    await asyncio.sleep(0)


async def wait_all_done(listeners: list[Listener], timeout: float) -> bool:
    waits = [asyncio.create_task(x.done.wait()) for x in listeners]
    try:
        _, pending = await asyncio.wait(waits, timeout=timeout)
    finally:
        for task in waits:
            task.cancel()
    return not pending


# --------------------------------------------------------------------------- fan-out


async def warm_up(
    listeners: list[Listener], members: dict[int, int], timeout: float
) -> dict[str, Any]:
    """Every socket sends one message under another tag and hears its chat's (ignored
    by the counts): first-use costs on the server are paid before the measurement."""
    for x in listeners:
        await x.ws.send(json.dumps({"content": f"warm-up {x.chat} {x.member}"}))
    deadline = monotonic() + timeout
    while monotonic() < deadline:
        if all(x.foreign >= members[x.chat] for x in listeners):
            break
        await asyncio.sleep(0.05)
    short = [x for x in listeners if x.foreign < members[x.chat]]
    report = {
        "complete": not short,
        "sockets_short": len(short),
        "heard_by_short": sorted(x.foreign for x in short)[:10],
        "error_frames": sum(x.error_frames for x in listeners),
        "error_sample": next((x.error_sample for x in listeners if x.error_sample), None),
        "closed": sum(1 for x in listeners if x.close_code is not None),
    }
    for x in listeners:
        x.foreign = 0
    return report


async def fanout(spec: Spec, ctl: Control) -> Result:
    """Every member of every given chat connected to it; every member sends ``messages``
    messages, each one after its own echo came back (or ``echo_timeout`` passed)."""
    tag, n_messages = spec["tag"], int(spec["messages"])
    chats: list[dict[str, Any]] = spec["chats"]
    latencies: list[float] = []
    plan = [(c["id"], i, tok) for c in chats for i, tok in enumerate(c["tokens"])]
    members = {c["id"]: len(c["tokens"]) for c in chats}
    listeners = await open_listeners(spec["ws_base"], plan, tag, 0, latencies)
    for x in listeners:
        x.expected = members[x.chat] * n_messages
    warmed = await warm_up(listeners, members, spec["warmup_seconds"])
    ctl.ready({"sockets": len(listeners), "warmed_up": warmed})
    await ctl.wait_go(120)
    loop = asyncio.get_running_loop()
    echo_timeouts = 0
    send_errors: list[str] = []

    async def sender(x: Listener) -> None:
        nonlocal echo_timeouts
        for seq in range(n_messages):
            echo: asyncio.Future[None] = loop.create_future()
            x.waiting = (seq, echo)
            frame = {"content": content(tag, x.chat, x.member, seq), "client_id": f"{tag}-{seq}"}
            try:
                await x.ws.send(json.dumps(frame))
            except ConnectionClosed as exc:
                send_errors.append(describe(exc))
                return
            try:
                await asyncio.wait_for(echo, spec["echo_timeout"])
            except TimeoutError:
                echo_timeouts += 1

    cpu = time.process_time()
    first_send = monotonic()
    try:
        await asyncio.wait_for(
            asyncio.gather(*(sender(x) for x in listeners)), spec["max_send_seconds"]
        )
        sends_finished = True
    except TimeoutError:
        sends_finished = False
    last_send = monotonic()
    drained = await wait_all_done(listeners, spec["drain_seconds"])
    merged = merge_listeners(listeners)
    cpu = time.process_time() - cpu
    await close_all(listeners)
    return {
        **merged,
        "cpu_seconds": cpu,
        "first_send": first_send,
        "last_send": last_send,
        "sends_finished": sends_finished,
        "drained": drained,
        "echo_timeouts": echo_timeouts,
        "send_errors": send_errors[:5],
        "latencies": latencies,
    }


# --------------------------------------------------------------------------- REST sends


async def ws_listen(spec: Spec, ctl: Control) -> Result:
    """Sockets on one chat that expect ``count`` messages each (sent by others)."""
    chat, tokens, count = spec["chat"], spec["tokens"], int(spec["count"])
    latencies: list[float] = []
    plan = [(chat, i, tok) for i, tok in enumerate(tokens)]
    listeners = await open_listeners(spec["ws_base"], plan, spec["tag"], count, latencies)
    ctl.ready(len(listeners))
    await ctl.wait_go(120)
    # Done when every socket has every message, or `drain_seconds` after the senders
    # finished (the parent sets `stop`), or at `max_seconds` in any case.
    cpu = time.process_time()
    everyone = asyncio.create_task(wait_all_done(listeners, spec["max_seconds"]))
    stopped = asyncio.create_task(ctl.wait_stop(spec["max_seconds"]))
    await asyncio.wait([everyone, stopped], return_when=asyncio.FIRST_COMPLETED)
    if not everyone.done():
        await asyncio.wait([everyone], timeout=spec["drain_seconds"])
    everyone.cancel()
    merged = merge_listeners(listeners)
    cpu = time.process_time() - cpu
    await close_all(listeners)
    stopped.cancel()
    return {**merged, "cpu_seconds": cpu, "latencies": latencies}


async def rest_send(spec: Spec, ctl: Control) -> Result:
    """``concurrency`` keep-alive connections POSTing send_message for the given seqs."""
    tag, chat, tokens = spec["tag"], spec["chat"], spec["tokens"]
    todo = collections.deque(spec["seqs"])
    latencies: list[float] = []
    statuses: collections.Counter[int] = collections.Counter()
    errors: list[str] = []
    clients = [RawHttp(spec["port"]) for _ in range(spec["concurrency"])]
    for client in clients:  # connect now, not inside the measured window
        await client.request("GET", "/api/me/", token=tokens[0])
    ctl.ready(len(clients))
    await ctl.wait_go(120)
    deadline = monotonic() + spec["max_seconds"]

    async def loop(k: int, client: RawHttp) -> None:
        while todo and monotonic() < deadline:
            seq = todo.popleft()
            sender = (spec["index"] * 1000 + k) % len(tokens)
            body = {"content": content(tag, chat, sender, seq), "client_id": f"{tag}-{seq}"}
            started = monotonic()
            try:
                response = await client.request(
                    "POST", f"/api/chats/{chat}/send_message/", token=tokens[sender], body=body
                )
            except HttpError as exc:
                errors.append(str(exc)[:200])
                continue
            latencies.append(monotonic() - started)
            statuses[response.status] += 1

    cpu, started, finished = await _run_clients(clients, loop)
    return {
        "cpu_seconds": cpu,
        "started": started,
        "finished": finished,
        "statuses": {str(k): v for k, v in statuses.items()},
        "errors": len(errors),
        "error_sample": errors[:3],
        "unsent": len(todo),
        "latencies": latencies,
    }


# --------------------------------------------------------------------------- history pages


async def http_probe(spec: Spec, ctl: Control) -> Result:
    """GET each labelled path ``reps`` times, one request at a time, the labels in a
    fresh random order each round (so slow moments of a noisy machine spread evenly)."""
    client = RawHttp(spec["port"])
    token = spec["token"]
    paths: dict[str, str] = spec["paths"]
    latencies: dict[str, list[float]] = {label: [] for label in paths}
    info: dict[str, dict[str, Any]] = {label: {} for label in paths}
    for label, path in paths.items():  # warm-up, and what each page holds
        for _ in range(spec["warmup"]):
            response = await client.request("GET", path, token=token)
        items = response.json()
        info[label] = {
            "status": response.status,
            "bytes": len(response.body),
            "items": len(items) if isinstance(items, list) else None,
            "first_id": items[0]["id"] if isinstance(items, list) and items else None,
            "last_id": items[-1]["id"] if isinstance(items, list) and items else None,
        }
    ctl.ready()
    await ctl.wait_go(120)
    rng = random.Random(spec.get("seed", 1))
    bad = 0
    deadline = monotonic() + spec["max_seconds"]
    labels = list(paths)
    for _ in range(spec["reps"]):
        if monotonic() > deadline:
            break
        rng.shuffle(labels)
        for label in labels:
            started = monotonic()
            response = await client.request("GET", paths[label], token=token)
            latencies[label].append(monotonic() - started)
            bad += response.status != 200
    await client.close()
    return {"latencies": latencies, "pages": info, "non_200": bad}


# --------------------------------------------------------------------------- idle sockets


async def idle(spec: Spec, ctl: Control) -> Result:
    """Open a socket per (chat, token) target, report, hold them until told to close."""
    targets: list[tuple[int, str]] = spec["targets"]
    started = monotonic()

    def opener(chat: int, token: str) -> Callable[[], Awaitable[ClientConnection]]:
        return lambda: ws_open(f"{spec['ws_base']}/ws/chat/{chat}/?token={token}")

    opened = await gather_bounded([opener(c, t) for c, t in targets], spec["concurrency"])
    sockets = [ws for ws in opened if isinstance(ws, ClientConnection)]
    failures = [describe(x) for x in opened if isinstance(x, BaseException)]
    ctl.ready(
        {
            "opened": len(sockets),
            "failed": len(failures),
            "failure_sample": failures[:3],
            "open_seconds": monotonic() - started,
        }
    )
    await ctl.wait_stop(spec["max_hold_seconds"])
    alive = sum(1 for ws in sockets if ws.close_code is None)
    unexpected = sorted({ws.close_code for ws in sockets if ws.close_code is not None})
    started = monotonic()
    await gather_bounded([ws.close for ws in sockets], spec["concurrency"])
    return {
        "opened": len(sockets),
        "failed": len(failures),
        "alive_at_end": alive,
        "closed_by_server_codes": unexpected,
        "close_seconds": monotonic() - started,
    }


# --------------------------------------------------------------------------- login storm


async def login_storm(spec: Spec, ctl: Control) -> Result:
    """``concurrency`` connections logging in with good passwords until ``seconds``."""
    creds: list[tuple[str, str]] = spec["creds"]
    clients = [RawHttp(spec["port"], timeout=60) for _ in range(spec["concurrency"])]
    ctl.ready()
    await ctl.wait_go(120)
    end = monotonic() + spec["seconds"]
    statuses: collections.Counter[int] = collections.Counter()
    latencies: list[float] = []
    errors = 0

    async def loop(k: int, client: RawHttp) -> None:
        nonlocal errors
        n = k
        while monotonic() < end:
            username, password = creds[n % len(creds)]
            n += 1
            started = monotonic()
            try:
                response = await client.request(
                    "POST", "/api/login/", body={"username": username, "password": password}
                )
            except HttpError:
                errors += 1
                continue
            statuses[response.status] += 1
            latencies.append(monotonic() - started)

    cpu, started, finished = await _run_clients(clients, loop)
    return {
        "cpu_seconds": cpu,
        "started": started,
        "finished": finished,
        "statuses": {str(k): v for k, v in statuses.items()},
        "errors": errors,
        "latencies": latencies,
    }


async def steady_probe(spec: Spec, ctl: Control) -> Result:
    """GET ``path`` at a fixed rate for ``seconds``. Each request leaves at its scheduled
    time on a free keep-alive connection (a new one if all are busy), so a stalled server
    cannot hide the requests it delayed (no coordinated omission)."""
    interval = 1.0 / spec["rate"]
    free: list[RawHttp] = [RawHttp(spec["port"]) for _ in range(4)]
    for client in free:
        await client.request("GET", spec["path"], token=spec["token"])
    ctl.ready()
    await ctl.wait_go(120)
    await asyncio.sleep(spec.get("delay", 0.0))
    latencies: list[float] = []
    statuses: collections.Counter[int] = collections.Counter()
    errors = 0
    extra_connections = 0

    fresh = bool(spec.get("fresh"))  # a new connection for every request

    async def one() -> None:
        nonlocal errors, extra_connections
        if fresh:
            client = RawHttp(spec["port"])
        elif free:
            client = free.pop()
        else:
            client = RawHttp(spec["port"])
            extra_connections += 1
        started = monotonic()
        try:
            response = await client.request("GET", spec["path"], token=spec["token"])
        except HttpError:
            errors += 1
            await client.close()
            return
        latencies.append(monotonic() - started)
        statuses[response.status] += 1
        if fresh:
            await client.close()
        else:
            free.append(client)

    t0 = monotonic()
    count = int(spec["seconds"] * spec["rate"])
    tasks = []
    for i in range(count):
        delay = t0 + i * interval - monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.wait(tasks, timeout=30)
    for client in free:
        await client.close()
    return {
        "sent": count,
        "answered": len(latencies),
        "statuses": {str(k): v for k, v in statuses.items()},
        "errors": errors,
        "extra_connections": extra_connections,
        "seconds": monotonic() - t0,
        "latencies": latencies,
    }


# --------------------------------------------------------------------------- event streams


@attrs.define(eq=False)
class EventSocket:
    """One socket on one chat's event stream (``?since=``), keeping every event frame it
    hears, in order, and waking whoever waits for a given (type, key)."""

    ws: ClientConnection
    chat: int
    user: int
    events: list[dict[str, Any]] = attrs.Factory(list)
    other_frames: int = 0
    other_sample: str | None = None
    close_code: int | None = None
    closed_at: float | None = None
    waiters: dict[tuple[str, Any], asyncio.Future[dict[str, Any]]] = attrs.Factory(dict)
    caught_up: asyncio.Event = attrs.Factory(asyncio.Event)
    want_seq: int = 0
    last_at: float = 0.0
    task: asyncio.Task[None] | None = None

    @property
    def last_seq(self) -> int:
        return int(self.events[-1]["seq"]) if self.events else 0

    def expect(self, kind: str, key: Any) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiters[(kind, key)] = future
        return future

    async def listen(self) -> None:
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                if "seq" not in frame:
                    self.other_frames += 1
                    self.other_sample = self.other_sample or str(raw)[:200]
                    continue
                self.events.append(frame)
                self.last_at = monotonic()
                kind = frame["type"]
                if kind == "message":
                    key: Any = frame["message"].get("client_id")
                elif kind == "message_edited":
                    key = frame["message"]["id"]
                elif kind == "message_deleted":
                    key = frame["message_id"]
                else:
                    key = frame.get("user", {}).get("id")
                waiter = self.waiters.pop((kind, key), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(frame)
                if self.last_seq >= self.want_seq:
                    self.caught_up.set()
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed_at = monotonic()
            for waiter in self.waiters.values():
                if not waiter.done():
                    waiter.cancel()


async def open_event_socket(
    ws_base: str, chat: int, user: int, token: str, since: int
) -> EventSocket:
    ws = await ws_open(f"{ws_base}/ws/chat/{chat}/?token={token}&since={since}")
    sock = EventSocket(ws, chat, user)
    sock.task = asyncio.create_task(sock.listen())
    return sock


def stream_faults(events: list[dict[str, Any]], first: int) -> dict[str, int]:
    """Duplicated, misordered and missing seqs of one socket's stream, which should be
    exactly first, first+1, ..., its last."""
    seen: set[int] = set()
    duplicates = misordered = 0
    previous = first - 1
    for frame in events:
        seq = int(frame["seq"])
        if seq in seen:
            duplicates += 1
            continue
        if seq < previous:
            misordered += 1
        seen.add(seq)
        previous = max(previous, seq)
    missing = len(set(range(first, previous + 1)) - seen)
    return {"duplicated": duplicates, "misordered": misordered, "gaps": missing}


def rendered(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """A stream rendered as API.md renders a replay: each message with its latest
    content, and every event carrying a message deleted later as ``message_deleted``.
    Applied to a replay (already rendered) it changes nothing, so a live stream and the
    replay of the same seqs compare equal exactly when they hold the same events."""
    latest: dict[int, str] = {}
    deleted: set[int] = set()
    for frame in events:
        if frame["type"] in ("message", "message_edited"):
            latest[frame["message"]["id"]] = frame["message"]["content"]
        elif frame["type"] == "message_deleted":
            deleted.add(frame["message_id"])
    out: list[tuple[Any, ...]] = []
    for frame in events:
        kind, seq = frame["type"], int(frame["seq"])
        if kind in ("message", "message_edited"):
            mid = frame["message"]["id"]
            if mid in deleted:
                out.append(("message_deleted", seq, mid))
            else:
                out.append((kind, seq, mid, frame["message"]["sender"]["id"], latest[mid]))
        elif kind == "message_deleted":
            out.append((kind, seq, frame["message_id"]))
        elif kind in ("member_added", "member_removed"):
            out.append((kind, seq, frame["user"]["id"], frame["by"]["id"]))
        else:
            out.append((kind, seq))
    return out


async def read_events(http: RawHttp, chat: int, token: str) -> tuple[list[dict[str, Any]], int]:
    """Every event of the chat by ``GET /api/chats/{id}/events/?since=``, page by page."""
    events: list[dict[str, Any]] = []
    seq = 0
    for _ in range(10_000):  # bounded: 10 M events
        response = await http.request(
            "GET", f"/api/chats/{chat}/events/?since={seq}&limit=1000", token=token
        )
        if response.status != 200:
            raise HttpError(f"events: HTTP {response.status} {response.body[:200]!r}")
        page = response.json()
        events.extend(page["events"])
        if not page["events"]:
            return events, int(page["seq"])
        seq = int(page["events"][-1]["seq"])
    raise HttpError("events: more pages than the bound")


async def event_mix(spec: Spec, ctl: Control) -> Result:
    """Each member of each given chat has a socket on it (``?since=0``) and runs ``ops``
    operations one after the other, each waiting for its own event on its socket: a
    send (a WebSocket frame), an edit (``PATCH /api/messages/{id}/``) or a delete
    (``DELETE /api/messages/{id}/``) of one of its own messages, drawn by ``mix``.
    With ``churn``, ``churn_workers`` loops per chat meanwhile add a pool user (the chat's
    first member, an admin, adds), open its socket, and remove it (the admin, or the user
    leaving, in turn), timing the removal to the socket's 4404 close. At the end every
    socket's stream is checked against ``GET /api/chats/{id}/events/?since=0``."""
    rng = random.Random(spec.get("seed", 1) * 1000 + ctl.index)
    tag, port, ws_base = spec["tag"], spec["port"], spec["ws_base"]
    chats: list[dict[str, Any]] = spec["chats"]  # {"id", "members": [(user id, token)]}
    mix: dict[str, float] = spec["mix"]
    n_ops, timeout = int(spec["ops"]), float(spec["event_timeout"])
    churn: dict[str, Any] | None = spec.get("churn")
    sockets: dict[tuple[int, int], EventSocket] = {}
    opened = await gather_bounded(
        [
            (lambda c=c, u=u, t=t: open_event_socket(ws_base, c["id"], u, t, 0))
            for c in chats
            for u, t in c["members"]
        ],
        20,
    )
    failed = [x for x in opened if isinstance(x, BaseException)]
    if failed:
        raise RuntimeError(f"{len(failed)} sockets failed to open: {describe(failed[0])}")
    for sock in opened:
        assert isinstance(sock, EventSocket)
        sockets[(sock.chat, sock.user)] = sock
    https = {key: RawHttp(port) for key in sockets}
    for (_, user), http in https.items():  # connected now, outside the measured window
        token = next(t for c in chats for u, t in c["members"] if u == user)
        await http.request("GET", "/api/me/", token=token)
    ctl.ready({"sockets": len(sockets)})
    await ctl.wait_go(120)

    kinds = list(mix)
    weights = [mix[k] for k in kinds]
    ops: collections.Counter[str] = collections.Counter()
    op_latency: dict[str, list[float]] = {k: [] for k in ("send", "edit", "delete")}
    problems: list[str] = []
    timeouts = 0

    async def member(chat: int, user: int, token: str) -> None:
        nonlocal timeouts
        sock, http = sockets[(chat, user)], https[(chat, user)]
        mine: list[int] = []
        for n in range(n_ops):
            kind = rng.choices(kinds, weights)[0] if mine else "send"
            started = monotonic()
            if kind == "send":
                client_id = f"{tag}-{user}-{n}"
                waiter = sock.expect("message", client_id)
                body = {"content": content(tag, chat, user, n), "client_id": client_id}
                await sock.ws.send(json.dumps(body))
            elif kind == "edit":
                target = rng.choice(mine)
                waiter = sock.expect("message_edited", target)
                response = await http.request(
                    "PATCH",
                    f"/api/messages/{target}/",
                    token=token,
                    body={"content": f"edited {content(tag, chat, user, n)}"},
                )
                if response.status != 200:
                    problems.append(f"PATCH {response.status} {response.body[:120]!r}")
            else:
                target = mine.pop(rng.randrange(len(mine)))
                waiter = sock.expect("message_deleted", target)
                response = await http.request("DELETE", f"/api/messages/{target}/", token=token)
                if response.status != 204:
                    problems.append(f"DELETE {response.status} {response.body[:120]!r}")
            try:
                frame = await asyncio.wait_for(waiter, timeout)
            except (TimeoutError, asyncio.CancelledError):
                timeouts += 1
                if sock.close_code is not None:
                    problems.append(f"socket closed {sock.close_code}")
                    return
                continue
            op_latency[kind].append(monotonic() - started)
            ops[kind] += 1
            if kind == "send":
                mine.append(int(frame["message"]["id"]))

    churn_ops = 0
    removal_to_close: list[float] = []
    churned: list[tuple[EventSocket, int]] = []  # (socket, the seq of its member_added)
    churn_problems: list[str] = []
    churn_times: list[float] = []

    async def churner(chat: int, admin: str, pool: list[tuple[int, str]], cycles: int) -> None:
        nonlocal churn_ops
        http = RawHttp(port)
        try:
            for n in range(cycles):
                user, token = pool[n % len(pool)]
                churn_times.append(monotonic())
                response = await http.request(
                    "POST",
                    f"/api/chats/{chat}/participants/",
                    token=admin,
                    body={"participant_ids": [user]},
                )
                if response.status != 200:
                    churn_problems.append(f"add {response.status} {response.body[:120]!r}")
                    continue
                churn_ops += 1
                added_at = int(response.json()["seq"])  # at or past its member_added
                sock = await open_event_socket(ws_base, chat, user, token, added_at - 1)
                sock.want_seq = added_at
                if sock.last_seq < added_at:
                    sock.caught_up.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(sock.caught_up.wait(), timeout)
                churned.append((sock, added_at))
                leaving = n % 2 == 1  # in turn: removed by the admin, or leaving
                removed = monotonic()
                response = await http.request(
                    "DELETE",
                    f"/api/chats/{chat}/participants/{user}/",
                    token=token if leaving else admin,
                )
                if response.status != 204:
                    churn_problems.append(f"remove {response.status} {response.body[:120]!r}")
                    await sock.ws.close()
                    continue
                churn_ops += 1
                assert sock.task is not None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(sock.task), timeout)
                if sock.closed_at is None or sock.close_code != 4404:
                    churn_problems.append(f"removed socket not closed 4404: {sock.close_code}")
                    await sock.ws.close()
                else:
                    removal_to_close.append(sock.closed_at - removed)
                churn_times.append(monotonic())
        finally:
            await http.close()

    cpu = time.process_time()
    started = monotonic()
    jobs = [member(c["id"], u, t) for c in chats for u, t in c["members"]]
    if churn is not None:
        for c in chats:
            admin = c["members"][0][1]
            for w in range(churn["workers"]):
                pool = churn["pool"][w :: churn["workers"]]
                jobs.append(churner(c["id"], admin, pool, churn["cycles"]))
    try:
        await asyncio.wait_for(asyncio.gather(*jobs), spec["max_seconds"])
        finished_ops = True
    except TimeoutError:
        finished_ops = False
    ops_done = monotonic()

    # The end: every remaining socket must reach its chat's latest seq, then equal the
    # chat's replay from 0.
    reader = RawHttp(port)
    finals: dict[int, tuple[list[dict[str, Any]], int]] = {}
    for c in chats:
        finals[c["id"]] = await read_events(reader, c["id"], c["members"][0][1])
    deadline = monotonic() + spec["drain_seconds"]
    while monotonic() < deadline:
        if all(s.last_seq >= finals[s.chat][1] for s in sockets.values()):
            break
        await asyncio.sleep(0.05)
    everyone = [*sockets.values(), *(sock for sock, _ in churned)]
    last_delivery = max((sock.last_at for sock in everyone), default=0.0)
    cpu = time.process_time() - cpu
    faults = collections.Counter[str]()
    mismatched = 0
    lost = 0
    sample: list[str] = []
    for sock in sockets.values():
        replay, final = finals[sock.chat]
        for name, count in stream_faults(sock.events, 1).items():
            faults[name] += count
        seqs = {int(f["seq"]) for f in sock.events}
        lost += len(set(range(1, final + 1)) - seqs)
        unique = {int(f["seq"]): f for f in sock.events}
        mine_rendered = rendered([unique[s] for s in sorted(unique)])
        if mine_rendered != rendered(replay):
            mismatched += 1
            if len(sample) < 3:
                diff = next(
                    (p for p in zip(mine_rendered, rendered(replay), strict=False) if p[0] != p[1]),
                    ("lengths", len(mine_rendered), len(replay)),
                )
                sample.append(str(diff)[:300])
        if sock.close_code is not None:
            faults["closed_early"] += 1
    # A churned socket heard a gapless stream from its start to its own removal (its
    # last event), equal to the replay's events at those seqs (before later renderings).
    churn_faults = collections.Counter[str]()
    for sock, added_at in churned:
        for name, count in stream_faults(sock.events, added_at).items():
            churn_faults[name] += count
        last = sock.events[-1] if sock.events else {}
        if sock.close_code == 4404 and not (
            last.get("type") == "member_removed" and last.get("user", {}).get("id") == sock.user
        ):
            churn_faults["last_not_own_removal"] += 1
        replay = {int(f["seq"]): f for f in finals[sock.chat][0]}
        for frame in sock.events:
            if replay.get(int(frame["seq"]), {}).get("type") not in (
                frame["type"],
                "message_deleted",
            ):
                churn_faults["differs_from_replay"] += 1
    deliveries = sum(len(s.events) for s in sockets.values()) + sum(
        len(s.events) for s, _ in churned
    )
    await close_all_ws([s.ws for s in sockets.values()])
    for http in [*https.values(), reader]:
        await http.close()
    return {
        "cpu_seconds": cpu,
        "started": started,
        "ops_done": ops_done,
        "last_delivery": last_delivery,
        "finished_ops": finished_ops,
        "ops": dict(ops),
        "op_latencies": op_latency,
        "event_timeouts": timeouts,
        "problems": problems[:5],
        "problem_count": len(problems),
        "sockets": len(sockets),
        "deliveries": deliveries,
        "events_stored": sum(final for _, final in finals.values()),
        "lost": lost,
        "faults": dict(faults),
        "mismatched_streams": mismatched,
        "mismatch_sample": sample,
        "other_frames": sum(s.other_frames for s in sockets.values()),
        "other_sample": next((s.other_sample for s in sockets.values() if s.other_sample), None),
        "churn_ops": churn_ops,
        "churn_started": min(churn_times, default=None),
        "churn_finished": max(churn_times, default=None),
        "churn_sockets": len(churned),
        "churn_faults": dict(churn_faults),
        "churn_problems": churn_problems[:5],
        "churn_problem_count": len(churn_problems),
        "removal_to_close": removal_to_close,
    }


async def close_all_ws(sockets: list[ClientConnection]) -> None:
    await gather_bounded([ws.close for ws in sockets], 50)


# --------------------------------------------------------------------------- stalled connections


async def stall(spec: Spec, ctl: Control) -> Result:
    """``count`` connections that each send half a request head and nothing more. One the
    server drops is opened again ``reopen_delay`` later (at most ``max_reopens`` in all)
    until ``stop``: the stall goes on for the whole window, whatever the server's
    deadlines."""
    port, count = spec["port"], int(spec["count"])
    half = f"GET /api/me/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthoriz".encode()
    stopping = asyncio.Event()
    reopens = dropped = refused = failures = 0
    budget = int(spec["max_reopens"])
    opened_first = asyncio.Event()
    first_round = 0

    async def one() -> None:
        nonlocal reopens, dropped, refused, failures, budget, first_round
        first = True
        while not stopping.is_set():
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port), 10
                )
            except (OSError, TimeoutError):
                failures += 1
                await asyncio.sleep(0.1)
                continue
            writer.write(half)
            if first:
                first = False
                first_round += 1
                if first_round == count:
                    opened_first.set()
            read = asyncio.create_task(reader.read(1024))
            done = asyncio.create_task(stopping.wait())
            await asyncio.wait([read, done], return_when=asyncio.FIRST_COMPLETED)
            done.cancel()
            if read.done():
                data = read.result() if not read.exception() else b""
                dropped += 1
                refused += data.startswith(b"HTTP/1.1 503")
            else:
                read.cancel()
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 2)
            if stopping.is_set() or budget <= 0:
                return
            budget -= 1
            reopens += 1
            with contextlib.suppress(TimeoutError):  # a stalled client that comes back
                await asyncio.wait_for(stopping.wait(), spec["reopen_delay"])

    tasks = [asyncio.create_task(one()) for _ in range(count)]
    await asyncio.wait_for(opened_first.wait(), 60)
    ctl.ready({"open": count})
    await ctl.wait_stop(spec["max_seconds"])
    stopping.set()
    await asyncio.wait(tasks, timeout=30)
    return {
        "connections": count,
        "dropped_by_server": dropped,
        "answered_503": refused,
        "reopened": reopens,
        "connect_failures": failures,
    }


WORKERS: dict[str, Worker] = {
    "fanout": fanout,
    "ws_listen": ws_listen,
    "rest_send": rest_send,
    "http_probe": http_probe,
    "idle": idle,
    "login_storm": login_storm,
    "steady_probe": steady_probe,
    "event_mix": event_mix,
    "stall": stall,
}
