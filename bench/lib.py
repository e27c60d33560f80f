"""Small shared pieces of the benchmark: statistics, a minimal keep-alive HTTP/1.1 client
and process helpers.

The HTTP client is deliberately tiny (asyncio streams, no parsing beyond the status line,
the headers and a Content-Length or chunked body): the load generator shares the machine's
two cores with the server, so every cycle the client does not spend is one the server
gets. It is used unchanged against both servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

HOST = "127.0.0.1"


# --------------------------------------------------------------------------- statistics


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summary_ms(seconds: Iterable[float]) -> dict[str, Any]:
    """n, p50, p90, p99, max and mean of durations given in seconds, reported in ms."""
    values = sorted(seconds)
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 3),
        "p90_ms": round(percentile(values, 90) * 1000, 3),
        "p99_ms": round(percentile(values, 99) * 1000, 3),
        "max_ms": round(values[-1] * 1000, 3),
        "mean_ms": round(sum(values) / len(values) * 1000, 3),
    }


def ratio(numerator: float | None, denominator: float | None, digits: int = 2) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    if math.isnan(numerator) or math.isnan(denominator):
        return None
    return round(numerator / denominator, digits)


# --------------------------------------------------------------------------- processes


def proc_status_kib(pid: int, field: str = "VmRSS") -> int | None:
    """A ``kB`` field of /proc/PID/status (VmRSS, VmHWM, ...), or None."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants now (a server with ``--workers`` is a supervisor and
    its worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, ()))
    return tree


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds used so far by ``pid`` and every process below it."""
    used = [proc_cpu_seconds(p) for p in process_tree(pid)]
    known = [u for u in used if u is not None]
    return sum(known) if known else None


def tree_status_kib(pid: int, field: str = "VmRSS") -> int | None:
    """A ``kB`` field of /proc/PID/status summed over ``pid`` and its descendants."""
    sizes = [proc_status_kib(p, field) for p in process_tree(pid)]
    known = [s for s in sizes if s is not None]
    return sum(known) if known else None


def proc_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds the process (all its threads) has used so far."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def machine_busy_seconds() -> float | None:
    """CPU seconds all cores of the machine have spent busy (not idle, not iowait), by
    everyone: with the server's and the clients' own, it shows how noisy a run was."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def proc_fd_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


# --------------------------------------------------------------------------- HTTP client


class HttpError(RuntimeError):
    pass


@attrs.frozen
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class RawHttp:
    """One keep-alive HTTP/1.1 connection to ``127.0.0.1:port``; requests go one at a
    time. A GET on a reused connection that the server had closed is retried once on a
    new connection; a POST never is (it might have been applied)."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.port = port
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.connects = 0

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(HOST, self.port), self.timeout
        )
        self.connects += 1

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 2)

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: object = None,
    ) -> Response:
        payload = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{self.port}", "Accept: */*"]
        if token is not None:
            head.append(f"Authorization: Token {token}")
        if body is not None or method in ("POST", "PUT", "PATCH"):
            head.append("Content-Type: application/json")
            head.append(f"Content-Length: {len(payload)}")
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
        reused = self._writer is not None
        try:
            return await asyncio.wait_for(self._exchange(raw), self.timeout)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            await self.close()
            if reused and method == "GET":
                return await asyncio.wait_for(self._exchange(raw), self.timeout)
            raise HttpError(f"{method} {path}: connection lost ({exc!r})") from exc
        except TimeoutError:
            await self.close()
            raise HttpError(f"{method} {path}: no answer in {self.timeout} s") from None

    async def _exchange(self, raw: bytes) -> Response:
        if self._writer is None:
            await self._connect()
        reader, writer = self._reader, self._writer
        assert reader is not None
        assert writer is not None
        writer.write(raw)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if status in (204, 304) or 100 <= status < 200:
            body = b""  # no body, whatever the headers say (RFC 9110, 6.4.1)
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(parts)
        else:
            body = await reader.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, headers, body)


def monotonic() -> float:
    """CLOCK_MONOTONIC: one clock for every process of the machine on Linux, so times
    taken in different client processes compare."""
    return time.monotonic()
