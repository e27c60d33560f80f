"""Real time across processes: the same fan-out over one server, over two servers sharing
one SQLite file and one Redis (sockets on one, sends through the other: every delivery
crosses Redis), and over `chatcore serve --workers 2` with Redis.

    .venv/bin/python bench/cross_process.py [--sockets 40] [--messages 300]
                                            [--concurrency 8] [--redis-url URL]

Prints one JSON document: per configuration, deliveries/s (sockets x messages over the
time from the first send to the last delivery), the delivery latency (send started to
frame received) and lost / duplicated / misordered counts, which must be 0. The client
runs in this one process, on the cores the servers use: figures are client+server ones,
for comparing the configurations with each other, not absolute capacities.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import websockets

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "Quartz-lantern-7781"  # noqa: S105 - the throwaway accounts' password
READY_SECONDS = 30.0
SERVE = [sys.executable, "-m", "entrypoints.cli", "serve"]
RUN_SECONDS = 300.0  # a hang guard for one configuration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Serve:
    def __init__(self, db: Path, env: dict[str, str], args: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("CHATCORE_")}
        self.log = db.with_suffix(f".{self.port}.log").open("wb")
        self.process = subprocess.Popen(
            [*SERVE, "--port", str(self.port), "--log-level", "warning", *args],
            env={
                **clean,
                "CHATCORE_DATABASE": str(db),
                "CHATCORE_REGISTRATIONS_PER_ADDRESS": "1000000",
                "CHATCORE_WS_SENDS_PER_SECOND": "100000",
                "CHATCORE_WS_SEND_BURST": "100000",
                **env,
            },
            cwd=REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + READY_SECONDS
        while True:
            try:
                httpx.get(self.url + "/api/me/", timeout=1)
                return
            except httpx.TransportError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server on {self.port} did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


async def register(http: httpx.AsyncClient) -> tuple[int, str]:
    name = f"b{uuid.uuid4().hex[:10]}"
    body = {"username": name, "password": PASSWORD, "password_confirm": PASSWORD}
    response = await http.post("/api/register/", json=body)
    response.raise_for_status()
    http.cookies.clear()
    data = response.json()
    return int(data["id"]), str(data["token"])


async def fan_out(
    socket_base: str, send_base: str, sockets: int, messages: int, concurrency: int
) -> dict[str, Any]:
    async with (
        httpx.AsyncClient(base_url=socket_base, timeout=60) as at_sockets,
        httpx.AsyncClient(base_url=send_base, timeout=60) as at_sends,
    ):
        _, owner_token = await register(at_sockets)
        reader_id, reader_token = await register(at_sockets)
        response = await at_sockets.post(
            "/api/chats/",
            json={"name": "bench", "participant_ids": [reader_id]},
            headers=_auth(owner_token),
        )
        response.raise_for_status()
        chat = int(response.json()["id"])
        ws_base = socket_base.replace("http://", "ws://")
        conns = [
            await websockets.connect(
                f"{ws_base}/ws/chat/{chat}/?token={(owner_token, reader_token)[i % 2]}",
                max_size=None,
            )
            for i in range(sockets)
        ]
        started: dict[str, float] = {}
        received: list[list[tuple[int, str, float]]] = [[] for _ in conns]

        async def read(i: int) -> None:
            while len(received[i]) < messages:
                frame = json.loads(await conns[i].recv())
                if frame.get("type") == "message" and "seq" in frame:
                    content = frame["message"]["content"]
                    received[i].append((frame["seq"], content, time.perf_counter()))

        readers = [asyncio.create_task(read(i)) for i in range(len(conns))]
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(messages):
            queue.put_nowait(n)

        async def send() -> None:
            while not queue.empty():
                content = f"m{queue.get_nowait()}"
                started[content] = time.perf_counter()
                response = await at_sends.post(
                    f"/api/chats/{chat}/send_message/",
                    json={"content": content},
                    headers=_auth(owner_token),
                )
                response.raise_for_status()

        first = time.perf_counter()
        await asyncio.gather(*(send() for _ in range(concurrency)))
        await asyncio.wait_for(asyncio.gather(*readers), RUN_SECONDS)
        last = max(t for got in received for _, _, t in got)
        for conn in conns:
            await conn.close()
    latencies = sorted(t - started[c] for got in received for _, c, t in got)
    lost = duplicated = misordered = 0
    for got in received:
        got_seqs = [seq for seq, _, _ in got]
        lost += messages - len(set(got_seqs))
        duplicated += len(got_seqs) - len(set(got_seqs))
        misordered += sum(1 for x, y in itertools.pairwise(got_seqs) if y <= x)
    return {
        "deliveries": len(latencies),
        "deliveries_per_s": round(len(latencies) / (last - first)),
        "latency_ms": {
            "p50": round(1000 * latencies[len(latencies) // 2], 1),
            "p99": round(1000 * latencies[int(len(latencies) * 0.99)], 1),
        },
        "lost": lost,
        "duplicated": duplicated,
        "misordered": misordered,
    }


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=40)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="chatcore-cross-"))
    load = (args.sockets, args.messages, args.concurrency)
    results: dict[str, Any] = {"sockets": args.sockets, "messages": args.messages}

    def redis_env() -> dict[str, str]:
        return {
            "CHATCORE_REDIS_URL": args.redis_url,
            "CHATCORE_REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:8]}:",
        }

    one = Serve(workdir / "one.sqlite3", {}, [])
    try:
        results["one_server"] = asyncio.run(fan_out(one.url, one.url, *load))
    finally:
        one.stop()
    env = redis_env()
    a = Serve(workdir / "two.sqlite3", env, [])
    b = Serve(workdir / "two.sqlite3", env, [])
    try:
        results["two_servers_via_redis"] = asyncio.run(fan_out(a.url, b.url, *load))
    finally:
        a.stop()
        b.stop()
    workers = Serve(workdir / "workers.sqlite3", redis_env(), ["--workers", "2"])
    try:
        results["workers_2_redis"] = asyncio.run(fan_out(workers.url, workers.url, *load))
    finally:
        workers.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
