"""The scenarios: each starts its own fresh server(s), drives them from client processes
(``loadgen``) and returns a JSON-able dict of figures."""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import psycopg

import loadgen
import servers
from lib import machine_busy_seconds, monotonic, proc_fd_count, proc_status_kib, ratio, summary_ms
from servers import Config, Server, scratch_postgres

SPAWN = multiprocessing.get_context("spawn")


class Fleet:
    """Client processes of one kind, started together and released together."""

    def __init__(self, kind: str, specs: list[dict[str, Any]]) -> None:
        self.kind = kind
        self.out: multiprocessing.Queue[tuple[str, int, Any]] = SPAWN.Queue()
        self.go = SPAWN.Event()
        self.stop = SPAWN.Event()
        self.procs = [
            SPAWN.Process(
                target=loadgen.entry,
                args=(kind, spec, i, self.out, self.go, self.stop),
                daemon=True,
                name=f"bench-{kind}-{i}",
            )
            for i, spec in enumerate(specs)
        ]
        self._results: dict[int, dict[str, Any]] = {}

    def __enter__(self) -> Fleet:
        for proc in self.procs:
            proc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.go.set()
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)

    def _next(self, deadline: float) -> tuple[str, int, Any]:
        left = deadline - monotonic()
        if left <= 0:
            raise TimeoutError
        return self.out.get(timeout=left)

    def wait_ready(self, timeout: float) -> list[Any]:
        """Every worker's ready info; a worker that failed before it got ready raises."""
        ready: dict[int, Any] = {}
        deadline = monotonic() + timeout
        while len(ready) < len(self.procs):
            try:
                what, index, info = self._next(deadline)
            except (TimeoutError, queue.Empty):
                raise TimeoutError(
                    f"{self.kind}: {len(ready)}/{len(self.procs)} workers ready in {timeout} s"
                ) from None
            if what == "ready":
                ready[index] = info
            else:
                self._results[index] = info
                raise RuntimeError(f"{self.kind} worker {index} failed: {info.get('error')}")
        return [ready[i] for i in range(len(self.procs))]

    def start_now(self) -> None:
        self.go.set()

    def results(self, timeout: float) -> list[dict[str, Any]]:
        deadline = monotonic() + timeout
        while len(self._results) < len(self.procs):
            try:
                what, index, info = self._next(deadline)
            except (TimeoutError, queue.Empty):
                raise TimeoutError(
                    f"{self.kind}: {len(self._results)}/{len(self.procs)} results in {timeout} s"
                ) from None
            if what == "result":
                self._results[index] = info
        failed = [r for r in self._results.values() if "error" in r]
        if failed:
            raise RuntimeError(f"{self.kind} worker failed: {failed[0]['error']}")
        return [self._results[i] for i in range(len(self.procs))]


def split(items: list[Any], parts: int) -> list[list[Any]]:
    """Round-robin ``items`` into ``parts`` non-empty lists (fewer if too few items)."""
    parts = max(1, min(parts, len(items)))
    return [items[i::parts] for i in range(parts)]


def tag() -> str:
    return "b" + secrets.token_hex(4)


STARTERS = {
    "chatcore": servers.chatcore,
    "old": servers.old_chatcore,
    "baseline": servers.baseline,
    "ceiling": servers.ceiling,
    "workers_sqlite": servers.workers_sqlite,
    "workers_postgres": servers.workers_postgres,
}


def server_for(cfg: Config, which: str, label: str) -> Server:
    return STARTERS[which](cfg, label)


def sides(
    with_baseline: bool, with_ceiling: bool, with_old: bool = False, scale_out: tuple[str, ...] = ()
) -> list[str]:
    """The servers a paired scenario runs, chatcore first."""
    return (
        ["chatcore"]
        + list(scale_out)
        + ["old"] * with_old
        + ["baseline"] * with_baseline
        + ["ceiling"] * with_ceiling
    )


def scale_out_ratios(out: dict[str, Any], rate: str, configurations: tuple[str, ...]) -> None:
    """Each scale-out configuration's rate over one process's (chatcore: SQLite, in-process
    notifier) and over the baseline's, from the same run."""
    one = out["chatcore"].get(rate)
    base = out.get("baseline", {}).get(rate)
    out["scale_out_ratios"] = {
        name: {
            f"{rate}_over_one_process": ratio(out[name].get(rate), one),
            f"{rate}_over_baseline": ratio(out[name].get(rate), base),
        }
        for name in configurations
        if name in out
    }


def per_send_us(resources: dict[str, Any], sends: int) -> float | None:
    """The server's CPU time (all its threads) per stored send, in microseconds."""
    used = resources.get("server_cpu_seconds")
    return None if used is None or not sends else round(used / sends * 1e6, 1)


def ceiling_ratios(out: dict[str, Any], rate: str) -> None:
    """chatcore over the ceiling: its rate and its server CPU per send, both sides'."""
    if "ceiling" not in out:
        return
    c, top = out["chatcore"], out["ceiling"]
    out["ratios_to_ceiling"] = {
        f"{rate}_chatcore_over_ceiling": ratio(c.get(rate), top.get(rate)),
        "server_cpu_us_per_send_chatcore": c.get("server_cpu_us_per_send"),
        "server_cpu_us_per_send_ceiling": top.get("server_cpu_us_per_send"),
        "server_cpu_per_send_chatcore_over_ceiling": ratio(
            c.get("server_cpu_us_per_send"), top.get("server_cpu_us_per_send")
        ),
    }


@attrs.define
class Usage:
    """Server CPU and memory over a measured window; with ``--profile``, a py-spy record
    of chatcore over the same window (a separate, profiled run: sampling slows it)."""

    server: Server
    cpu_before: float | None
    at: float
    machine_before: float | None = None
    profiler: subprocess.Popen[bytes] | None = None
    profile: Path | None = None

    @classmethod
    def begin(cls, cfg: Config, server: Server, label: str) -> Usage:
        usage = cls(server, server.cpu_seconds(), monotonic())
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if cfg.profile_dir is not None and server.name == "chatcore" and Path(spy).exists():
            cfg.profile_dir.mkdir(parents=True, exist_ok=True)
            usage.profile = cfg.profile_dir / f"{label}.txt"
            # --gil: only samples holding the GIL, i.e. what occupies the interpreter;
            # --nonblocking: do not pause the server to sample it.
            argv = [spy, "record", "--pid", str(server.pid), "--rate", "200", "--threads"]
            argv += ["--gil", "--nonblocking"]
            argv += ["--format", "raw", "--output", str(usage.profile)]
            usage.profiler = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(1)  # py-spy attaches
            usage.at, usage.cpu_before = monotonic(), server.cpu_seconds()
        usage.machine_before = machine_busy_seconds()
        return usage

    def end(self) -> dict[str, Any]:
        cpu = self.server.cpu_seconds()
        wall = monotonic() - self.at
        used = None if cpu is None or self.cpu_before is None else cpu - self.cpu_before
        busy = machine_busy_seconds()
        everyone = (
            None if busy is None or self.machine_before is None else busy - self.machine_before
        )
        out: dict[str, Any] = {
            "measured_window_seconds": round(wall, 2),
            "server_cpu_seconds": None if used is None else round(used, 2),
            "server_cpu_cores_busy": None if used is None else round(used / wall, 2),
            "machine_cpu_cores_busy": None if everyone is None else round(everyone / wall, 2),
            "server_rss_kib": self.server.rss_kib(),
        }
        if self.profiler is not None:
            self.profiler.send_signal(signal.SIGINT)
            try:
                self.profiler.wait(30)
            except subprocess.TimeoutExpired:
                self.profiler.kill()
            out["profile"] = str(self.profile)
        return out


# --------------------------------------------------------------------------- a. fan-out


def fanout(
    cfg: Config, which: str, chats: int, members: int, messages: int, clients: int
) -> dict[str, Any]:
    server = server_for(cfg, which, "fanout")
    run_tag = tag()
    with servers.running(server):
        accounts = servers.register(server, members, f"fan{run_tag}_")
        chat_ids = servers.create_chats(server, accounts[0], accounts, chats)
        toks = servers.tokens(accounts)
        chat_specs = [{"id": c, "tokens": toks} for c in chat_ids]
        specs = [
            {
                "ws_base": server.ws_base,
                "chats": part,
                "messages": messages,
                "tag": run_tag,
                "echo_timeout": 5.0,
                "warmup_seconds": 30.0,
                "max_send_seconds": 240.0,
                "drain_seconds": 10.0,
            }
            for part in split(chat_specs, clients)
        ]
        with Fleet("fanout", specs) as fleet:
            ready = fleet.wait_ready(180)
            usage = Usage.begin(cfg, server, f"fanout_{which}_{chats}x{members}x{messages}")
            fleet.start_now()
            results = fleet.results(400)
            resources = usage.end()
    latencies = [x for r in results for x in r.pop("latencies")]
    first = min(r["first_send"] for r in results)
    last = max(r["last_delivery"] for r in results)
    received = sum(r["received"] for r in results)
    wall = last - first if last > first else float("nan")
    expected = chats * members * messages * members
    return {
        "server": which,
        "shape": {"chats": chats, "members": members, "messages_per_member": messages},
        "client_processes": len(specs),
        "sockets": chats * members,
        "messages_sent": chats * members * messages,
        "deliveries_expected": expected,
        "deliveries_received": received,
        "wall_seconds": round(wall, 3),
        "delivered_per_second": round(received / wall, 1) if wall == wall else None,
        "stored_per_second": round(chats * members * messages / wall, 1) if wall == wall else None,
        "latency": summary_ms(latencies),
        "lost": sum(r["lost"] for r in results),
        "duplicates": sum(r["duplicates"] for r in results),
        "misrouted": sum(r["misrouted"] for r in results),
        "error_frames": sum(r["error_frames"] for r in results),
        "error_sample": next((r["error_sample"] for r in results if r["error_sample"]), None),
        "echo_timeouts": sum(r["echo_timeouts"] for r in results),
        "sockets_closed_early": sum(r["closed_early"] for r in results),
        "close_codes": sorted({c for r in results for c in r["close_codes"]}),
        "all_drained": all(r["drained"] for r in results),
        "warm_up_complete": all(info["warmed_up"]["complete"] for info in ready),
        "warm_up": [info["warmed_up"] for info in ready],
        "client_cpu_seconds": round(sum(r["cpu_seconds"] for r in results), 2),
        "client_cpu_cores_busy": round(sum(r["cpu_seconds"] for r in results) / wall, 2)
        if wall == wall
        else None,
        "server_cpu_us_per_send": per_send_us(resources, chats * members * messages),
        "server_cpu_us_per_delivery": per_send_us(resources, received),
        **resources,
    }


FANOUT_RULE = (
    "every member's socket sends its next message only after its own echo came back (5 s "
    "echo timeout), the same rule for both servers; before the measured phase every socket "
    "sends one warm-up message (not counted) and hears its chat's"
)


def fanout_pair(
    cfg: Config,
    with_baseline: bool,
    with_ceiling: bool,
    repeats: int,
    chats: int,
    members: int,
    messages: int,
    clients: int,
) -> dict[str, Any]:
    with_old = cfg.old_root is not None
    out = paired(
        sides(with_baseline, with_ceiling, with_old, cfg.scale_out),
        repeats,
        lambda which: fanout(cfg, which, chats, members, messages, clients),
        {
            "delivered_per_second": ("delivered_per_second",),
            "server_cpu_us_per_send": ("server_cpu_us_per_send",),
            "server_cpu_us_per_delivery": ("server_cpu_us_per_delivery",),
            "p50_ms": ("latency", "p50_ms"),
            "p99_ms": ("latency", "p99_ms"),
            "server_cpu_cores_busy": ("server_cpu_cores_busy",),
            "client_cpu_cores_busy": ("client_cpu_cores_busy",),
            "machine_cpu_cores_busy": ("machine_cpu_cores_busy",),
        },
    )
    if with_baseline:
        c, b = out["chatcore"], out["baseline"]
        out["ratios"] = {
            "delivered_per_second_chatcore_over_baseline": ratio(
                c.get("delivered_per_second"), b.get("delivered_per_second")
            ),
            "p99_latency_baseline_over_chatcore": ratio(b.get("p99_ms"), c.get("p99_ms")),
            "p50_latency_baseline_over_chatcore": ratio(b.get("p50_ms"), c.get("p50_ms")),
        }
    if with_old:
        c, o = out["chatcore"], out["old"]
        per_c, per_o = c.get("server_cpu_us_per_delivery"), o.get("server_cpu_us_per_delivery")
        out["ratios_to_old"] = {
            "delivered_per_second_chatcore_over_old": ratio(
                c.get("delivered_per_second"), o.get("delivered_per_second")
            ),
            "p99_latency_chatcore_over_old": ratio(c.get("p99_ms"), o.get("p99_ms")),
            "server_cpu_us_per_delivery_chatcore": per_c,
            "server_cpu_us_per_delivery_old": per_o,
            "server_cpu_per_delivery_chatcore_over_old": ratio(per_c, per_o),
            # What the per-chat event log (the seq) costs each delivery, in server CPU.
            "seq_cost_us_per_delivery": None
            if per_c is None or per_o is None
            else round(per_c - per_o, 1),
        }
    ceiling_ratios(out, "delivered_per_second")
    scale_out_ratios(out, "delivered_per_second", cfg.scale_out)
    return {"rule": FANOUT_RULE, **out}


def paired(
    sides: list[str],
    repeats: int,
    run: Callable[[str], dict[str, Any]],
    figures: dict[str, tuple[str, ...]],
) -> dict[str, Any]:
    """``repeats`` runs per server, alternating the servers (so a noisy stretch of the
    shared machine hits each); per server the median of each figure over its runs, and
    lost / duplicate / error counts summed over them. Every run is kept under "runs"."""
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for _ in range(repeats):
        for side in sides:
            runs[side].append(guarded(lambda side=side: run(side)))
    out: dict[str, Any] = {"repeats": repeats}
    for side in sides:
        good = [r for r in runs[side] if "error" not in r]
        summary: dict[str, Any] = {"runs_ok": len(good), "runs_failed": len(runs[side]) - len(good)}
        if len(good) < len(runs[side]):
            summary["errors"] = [r["error"] for r in runs[side] if "error" in r]
        for name, path in figures.items():
            values = [v for r in good if (v := dig(r, path)) is not None]
            summary[name] = statistics.median(values) if values else None
            summary[f"{name}_runs"] = values
        for name in ("lost", "duplicates", "misrouted", "sockets_closed_early"):
            summary[name] = sum(r.get(name, 0) for r in good) if good else None
        out[side] = summary
    out["runs"] = runs
    return out


def dig(node: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


# --------------------------------------------------------------------------- b. REST sends


def rest(
    cfg: Config, which: str, sockets: int, concurrency: int, count: int, clients: int
) -> dict[str, Any]:
    server = server_for(cfg, which, "rest")
    run_tag = tag()
    with servers.running(server):
        accounts = servers.register(server, sockets, f"rest{run_tag}_")
        (chat,) = servers.create_chats(server, accounts[0], accounts, 1)
        toks = servers.tokens(accounts)
        listen_spec = {
            "ws_base": server.ws_base,
            "chat": chat,
            "tokens": toks,
            "count": count,
            "tag": run_tag,
            "max_seconds": 300.0,
            "drain_seconds": 10.0,
        }
        seq_parts = split(list(range(count)), clients)
        send_specs = [
            {
                "port": server.port,
                "chat": chat,
                "tokens": toks,
                "tag": run_tag,
                "seqs": part,
                "index": i,
                "concurrency": max(1, concurrency // len(seq_parts)),
                "max_seconds": 240.0,
            }
            for i, part in enumerate(seq_parts)
        ]
        with (
            Fleet("ws_listen", [listen_spec]) as listeners,
            Fleet("rest_send", send_specs) as senders,
        ):
            listeners.wait_ready(120)
            senders.wait_ready(120)
            usage = Usage.begin(cfg, server, f"rest_{which}")
            listeners.start_now()
            senders.start_now()
            sent = senders.results(300)
            resources = usage.end()
            listeners.stop.set()
            (heard,) = listeners.results(60)
    started = min(r["started"] for r in sent)
    finished = max(r["finished"] for r in sent)
    statuses: dict[str, int] = {}
    for r in sent:
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    created = statuses.get("201", 0)
    wall = finished - started
    return {
        "server": which,
        "listening_sockets": sockets,
        "concurrent_http_clients": sum(s["concurrency"] for s in send_specs),
        "client_processes": len(send_specs) + 1,
        "requests": count,
        "statuses": statuses,
        "request_errors": sum(r["errors"] for r in sent),
        "request_error_sample": next((r["error_sample"] for r in sent if r["error_sample"]), []),
        "wall_seconds": round(wall, 3),
        "sends_per_second": round(created / wall, 1),
        "request_latency": summary_ms(x for r in sent for x in r["latencies"]),
        "deliveries_expected": sockets * count,
        "deliveries_received": heard["received"],
        "lost": heard["lost"],
        "duplicates": heard["duplicates"],
        "misrouted": heard["misrouted"],
        "sockets_closed_early": heard["closed_early"],
        "delivery_latency": summary_ms(heard["latencies"]),
        "client_cpu_seconds": round(heard["cpu_seconds"] + sum(r["cpu_seconds"] for r in sent), 2),
        "server_cpu_us_per_send": per_send_us(resources, created),
        **resources,
    }


def rest_pair(
    cfg: Config,
    with_baseline: bool,
    with_ceiling: bool,
    repeats: int,
    sockets: int,
    concurrency: int,
    count: int,
    clients: int,
) -> dict[str, Any]:
    out = paired(
        sides(with_baseline, with_ceiling, scale_out=cfg.scale_out),
        repeats,
        lambda which: rest(cfg, which, sockets, concurrency, count, clients),
        {
            "sends_per_second": ("sends_per_second",),
            "server_cpu_us_per_send": ("server_cpu_us_per_send",),
            "request_p50_ms": ("request_latency", "p50_ms"),
            "request_p99_ms": ("request_latency", "p99_ms"),
            "delivery_p99_ms": ("delivery_latency", "p99_ms"),
            "server_cpu_cores_busy": ("server_cpu_cores_busy",),
            "machine_cpu_cores_busy": ("machine_cpu_cores_busy",),
        },
    )
    if with_baseline:
        c, b = out["chatcore"], out["baseline"]
        out["ratios"] = {
            "sends_per_second_chatcore_over_baseline": ratio(
                c.get("sends_per_second"), b.get("sends_per_second")
            ),
            "p99_request_latency_baseline_over_chatcore": ratio(
                b.get("request_p99_ms"), c.get("request_p99_ms")
            ),
        }
    ceiling_ratios(out, "sends_per_second")
    scale_out_ratios(out, "sends_per_second", cfg.scale_out)
    return out


# --------------------------------------------------------------------------- c. history


def fill_history(db: Path, sender: int, small: int, small_n: int, big: int, big_n: int) -> float:
    """Store ``big_n`` messages in chat ``big`` with ``small_n`` of chat ``small`` spread
    evenly among them, straight into the file the server created (it is not running),
    and point each chat's last_message_id / last_activity at its newest message."""
    started = monotonic()
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    every = max(1, big_n // small_n)
    filler = " lorem ipsum dolor sit amet, consectetur adipiscing elit"

    def rows() -> Any:
        s = 0
        for i in range(big_n):
            at = (t0 + timedelta(milliseconds=10 * i)).isoformat(timespec="microseconds")
            yield (big, sender, f"big {i}{filler}", at)
            if i % every == 0 and s < small_n:
                yield (small, sender, f"small {s}{filler}", at)
                s += 1

    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO messages (chat_id, sender_id, content, timestamp, client_id)"
            " VALUES (?, ?, ?, ?, NULL)",
            rows(),
        )
        conn.execute(
            "UPDATE chats SET"
            " last_message_id = (SELECT max(id) FROM messages WHERE chat_id = chats.id),"
            " last_activity = coalesce((SELECT timestamp FROM messages"
            "   WHERE id = (SELECT max(id) FROM messages WHERE chat_id = chats.id)),"
            "   last_activity)"
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return monotonic() - started


def message_id_at(db: Path, chat: int, fraction: float) -> tuple[int, int]:
    """(id of the message at ``fraction`` of the chat's history, how many there are)."""
    conn = sqlite3.connect(db)
    try:
        (total,) = conn.execute(
            "SELECT count(*) FROM messages WHERE chat_id = ?", (chat,)
        ).fetchone()
        (found,) = conn.execute(
            "SELECT id FROM messages WHERE chat_id = ? ORDER BY id LIMIT 1 OFFSET ?",
            (chat, int(total * fraction)),
        ).fetchone()
    finally:
        conn.close()
    return int(found), int(total)


def fill_history_postgres(
    url: str, sender: int, small: int, small_n: int, big: int, big_n: int
) -> float:
    """As :func:`fill_history`, into a PostgreSQL database, in one INSERT ... SELECT over
    generate_series (ids in the same interleaved order), then ANALYZE."""
    started = monotonic()
    every = max(1, big_n // small_n)
    filler = " lorem ipsum dolor sit amet, consectetur adipiscing elit"
    with psycopg.connect(url) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute(
            "INSERT INTO messages (chat_id, sender_id, content, timestamp)"
            " SELECT v.chat, %(sender)s, v.content, %(t0)s + i * interval '10 milliseconds'"
            " FROM generate_series(0, %(n)s - 1) AS i CROSS JOIN LATERAL (VALUES"
            "  (%(big)s::bigint, 'big ' || i || %(filler)s, 0),"
            "  (%(small)s::bigint, 'small ' || (i / %(every)s) || %(filler)s, 1))"
            "  AS v(chat, content, k)"
            " WHERE v.k = 0 OR (i %% %(every)s = 0 AND i / %(every)s < %(small_n)s)"
            " ORDER BY i, v.k",
            {
                "sender": sender,
                "t0": datetime(2025, 1, 1, tzinfo=UTC),
                "n": big_n,
                "big": big,
                "small": small,
                "every": every,
                "small_n": small_n,
                "filler": filler,
            },
        )
        conn.execute(
            "UPDATE chats SET last_message_id = last.id, last_activity = last.timestamp"
            " FROM (SELECT DISTINCT ON (chat_id) chat_id, id, timestamp FROM messages"
            "  ORDER BY chat_id, id DESC) last WHERE last.chat_id = chats.id"
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE messages")
    return monotonic() - started


def message_id_at_postgres(url: str, chat: int, fraction: float) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM messages WHERE chat_id = %s", (chat,)).fetchone()
        assert row is not None
        total = int(row[0])
        found = conn.execute(
            "SELECT id FROM messages WHERE chat_id = %s ORDER BY id LIMIT 1 OFFSET %s",
            (chat, int(total * fraction)),
        ).fetchone()
        assert found is not None
    return int(found[0]), total


def history_postgres(cfg: Config, small_n: int, big_n: int, reps: int) -> dict[str, Any]:
    """The history scenario with chatcore on PostgreSQL (a database of its own)."""
    with scratch_postgres("history") as url:
        return history(cfg, small_n, big_n, reps, database_url=url)


def history(
    cfg: Config, small_n: int, big_n: int, reps: int, database_url: str | None = None
) -> dict[str, Any]:
    first = servers.chatcore(cfg, "history", database_url=database_url)
    with servers.running(first):
        (user,) = servers.register(first, 1, f"hist{tag()}_")
        small, big = servers.create_chats(first, user, [user], 2)
    if database_url is None:
        fill_seconds = fill_history(first.db, user.id, small, small_n, big, big_n)
    else:
        fill_seconds = fill_history_postgres(database_url, user.id, small, small_n, big, big_n)
    pages: dict[str, str] = {}
    stored: dict[str, int] = {}
    for name, chat in (("small", small), ("big", big)):
        if database_url is None:
            deep, total = message_id_at(first.db, chat, 0.1)
            middle, _ = message_id_at(first.db, chat, 0.5)
        else:
            deep, total = message_id_at_postgres(database_url, chat, 0.1)
            middle, _ = message_id_at_postgres(database_url, chat, 0.5)
        stored[name] = total
        base = f"/api/chats/{chat}/messages/?limit=100"
        pages[f"{name}_latest"] = base
        pages[f"{name}_before_deep"] = f"{base}&before={deep}"
        pages[f"{name}_after_middle"] = f"{base}&after={middle}"
    server = servers.chatcore(cfg, "history", db=first.db, database_url=database_url)
    spec = {
        "port": server.port,
        "token": user.token,
        "paths": pages,
        "reps": reps,
        "warmup": 20,
        "max_seconds": 120.0,
    }
    with servers.running(server), Fleet("http_probe", [spec]) as fleet:
        fleet.wait_ready(120)
        usage = Usage.begin(cfg, server, "history")
        fleet.start_now()
        (result,) = fleet.results(200)
        resources = usage.end()
    lat = {label: summary_ms(values) for label, values in result["latencies"].items()}
    ratios = {}
    for kind in ("latest", "before_deep", "after_middle"):
        b, s = lat[f"big_{kind}"], lat[f"small_{kind}"]
        ratios[kind] = {
            "p50_big_over_small": ratio(b.get("p50_ms"), s.get("p50_ms")),
            "p99_big_over_small": ratio(b.get("p99_ms"), s.get("p99_ms")),
        }
    return {
        "server": "chatcore",
        "storage": "sqlite" if database_url is None else "postgresql",
        "stored_messages": stored,
        "database_bytes": _database_bytes(first.db, database_url),
        "fill_seconds": round(fill_seconds, 1),
        "limit": 100,
        "repetitions_each": reps,
        "order": "one request at a time from one client process, page kinds shuffled per round",
        "paths": pages,
        "pages": result["pages"],
        "non_200": result["non_200"],
        "latency": lat,
        "ratios": ratios,
        **resources,
    }


def _database_bytes(db: Path, database_url: str | None) -> int:
    if database_url is None:
        return db.stat().st_size
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        assert row is not None
        return int(row[0])


# --------------------------------------------------------------------------- d. idle sockets


def idle_sockets(
    cfg: Config,
    sockets: int,
    chats: int,
    users: int,
    clients: int,
    concurrency: int,
    hold_seconds: float,
) -> dict[str, Any]:
    """``sockets`` idle WebSockets to one chatcore process; its RSS before, 5 s after the
    last one opened, and at the end of the hold (by then the server has pinged every
    socket at least once when the hold passes its 20 s ping interval)."""
    server = servers.chatcore(cfg, "idle")
    # Every socket is a connection: the default cap of 1,000 per process would refuse
    # the rest with 503 (README, CHATCORE_MAX_CONNECTIONS); an operator sizing a process
    # for this many sockets raises it (it is lowered to the open-file limit anyway).
    server.env["CHATCORE_MAX_CONNECTIONS"] = str(sockets + 1000)
    with servers.running(server):
        accounts = servers.register(server, users, f"idle{tag()}_")
        chat_ids = servers.create_chats(server, accounts[0], accounts, chats)
        targets = [
            (chat_ids[n % chats], accounts[(n // chats) % users].token) for n in range(sockets)
        ]
        specs = [
            {
                "ws_base": server.ws_base,
                "targets": part,
                "concurrency": concurrency,
                "max_hold_seconds": 400.0,
            }
            for part in split(targets, clients)
        ]
        time.sleep(2)
        rss_before = server.rss_kib()
        fds_before = proc_fd_count(server.pid)
        started = monotonic()
        with Fleet("idle", specs) as fleet:
            ready = fleet.wait_ready(300)
            open_seconds = monotonic() - started
            time.sleep(5)  # let the server settle (tasks started, buffers allocated)
            rss_settled = server.rss_kib()
            time.sleep(max(0.0, hold_seconds - 5))
            rss_held = server.rss_kib()
            rss_open = max(rss_settled or 0, rss_held or 0) or None
            hwm_open = proc_status_kib(server.pid, "VmHWM")
            fds_open = proc_fd_count(server.pid)
            fleet.stop.set()
            results = fleet.results(180)
        time.sleep(3)
        rss_closed = server.rss_kib()
        fds_closed = proc_fd_count(server.pid)
        alive_server = server.proc is not None and server.proc.poll() is None
    opened = sum(r["opened"] for r in results)
    grown = None if rss_open is None or rss_before is None else rss_open - rss_before
    return {
        "server": "chatcore",
        "sockets_requested": sockets,
        "sockets_opened": opened,
        "sockets_failed": sum(r["failed"] for r in results),
        "failure_sample": [s for info in ready for s in info["failure_sample"]][:3],
        "alive_when_closing": sum(r["alive_at_end"] for r in results),
        "closed_by_server_codes": sorted({c for r in results for c in r["closed_by_server_codes"]}),
        "chats": chats,
        "users": users,
        "client_processes": len(specs),
        "open_seconds": round(open_seconds, 1),
        "opened_per_second": round(opened / open_seconds, 1),
        "server_rss_kib_before": rss_before,
        "hold_seconds": hold_seconds,
        "server_rss_kib_open_after_5s": rss_settled,
        "server_rss_kib_open_at_end_of_hold": rss_held,
        "server_rss_kib_after_close": rss_closed,
        "server_vmhwm_kib": hwm_open,
        "server_fds": {"before": fds_before, "open": fds_open, "after_close": fds_closed},
        "kib_per_socket": round(grown / opened, 2) if grown is not None and opened else None,
        "kib_per_socket_basis": "(larger of the two RSS readings while open - RSS before) "
        "/ sockets opened",
        "server_alive_at_end": alive_server,
    }


# --------------------------------------------------------------------------- e. login storm


def login_storm(
    cfg: Config,
    storm_seconds: float,
    reference_seconds: float,
    storm_clients: int,
    storm_concurrency: int,
    probe_rate: float,
) -> dict[str, Any]:
    server = servers.chatcore(cfg, "storm")
    # A login is counted as a guess before its password is checked (README, "Guessing"),
    # so 24 concurrent logins from one address on 4 accounts are mostly refused 429 under
    # the default throttle; the storm measures hashing pressure, so the throttle is lifted.
    server.env.update(
        {
            "CHATCORE_LOGIN_FREE_FAILURES": "1000000",
            "CHATCORE_LOGIN_FAILURES_PER_ACCOUNT": "1000000",
            "CHATCORE_LOGIN_FAILURES_PER_ADDRESS": "1000000",
        }
    )
    with servers.running(server):
        accounts = servers.register(server, 5, f"storm{tag()}_")
        probe, stormers = accounts[0], accounts[1:]
        probe_spec = {
            "port": server.port,
            "token": probe.token,
            "path": "/api/me/",
            "rate": probe_rate,
            "seconds": reference_seconds,
        }
        with Fleet("steady_probe", [probe_spec]) as fleet:
            fleet.wait_ready(60)
            fleet.start_now()
            (quiet,) = fleet.results(reference_seconds + 60)
        creds = [(a.username, servers.PASSWORD) for a in stormers]
        storm_specs = [
            {
                "port": server.port,
                "creds": creds,
                "concurrency": storm_concurrency,
                "seconds": storm_seconds,
            }
            for _ in range(storm_clients)
        ]
        # The probe starts 1 s into the storm and stops 1 s before its end.
        busy_spec = {**probe_spec, "seconds": storm_seconds - 2, "delay": 1.0}
        with Fleet("login_storm", storm_specs) as storm, Fleet("steady_probe", [busy_spec]) as pr:
            storm.wait_ready(60)
            pr.wait_ready(60)
            usage = Usage.begin(cfg, server, "login_storm")
            storm.start_now()
            pr.start_now()
            (busy,) = pr.results(storm_seconds + 90)
            logins = storm.results(storm_seconds + 90)
            resources = usage.end()
    ok = sum(r["statuses"].get("200", 0) for r in logins)
    started = min(r["started"] for r in logins)
    finished = max(r["finished"] for r in logins)
    statuses: dict[str, int] = {}
    for r in logins:
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v

    def probe_report(r: dict[str, Any]) -> dict[str, Any]:
        return {
            "requests": r["sent"],
            "answered": r["answered"],
            "statuses": r["statuses"],
            "errors": r["errors"],
            "extra_connections_needed": r["extra_connections"],
            "latency": summary_ms(r["latencies"]),
        }

    return {
        "server": "chatcore",
        "storm": {
            "client_processes": storm_clients,
            "concurrent_logins": storm_clients * storm_concurrency,
            "seconds": round(finished - started, 2),
            "logins_ok": ok,
            "logins_per_second": round(ok / (finished - started), 1),
            "statuses": statuses,
            "errors": sum(r["errors"] for r in logins),
            "login_latency": summary_ms(x for r in logins for x in r["latencies"]),
            "client_cpu_seconds": round(sum(r["cpu_seconds"] for r in logins), 2),
        },
        "probe": f"GET /api/me/ at {probe_rate:g}/s from its own process",
        "me_without_storm": probe_report(quiet),
        "me_during_storm": probe_report(busy),
        **resources,
    }


# --------------------------------------------------------------------------- f. changing chats


def event_streams(
    cfg: Config,
    label: str,
    chats: int,
    members: int,
    ops: int,
    clients: int,
    mix: dict[str, float],
    churn_workers: int = 0,
    churn_pool: int = 0,
    churn_cycles: int = 0,
) -> dict[str, Any]:
    """Members of ``chats`` chats send, edit and delete (``mix``) over their sockets and
    REST, each waiting for its own event; with churn, pool users are added to and removed
    from every chat meanwhile. Every socket's stream is checked against the replay."""
    server = servers.chatcore(cfg, label)
    run_tag = tag()
    with servers.running(server):
        accounts = servers.register(server, members + churn_pool, f"{label}{run_tag}_")
        core, pool = accounts[:members], accounts[members:]
        chat_ids = servers.create_chats(server, core[0], core, chats)
        chat_specs = [{"id": c, "members": [(a.id, a.token) for a in core]} for c in chat_ids]
        churn = (
            {
                "workers": churn_workers,
                "pool": [(a.id, a.token) for a in pool],
                "cycles": churn_cycles,
            }
            if churn_workers
            else None
        )
        specs = [
            {
                "port": server.port,
                "ws_base": server.ws_base,
                "tag": run_tag,
                "chats": part,
                "mix": mix,
                "ops": ops,
                "event_timeout": 10.0,
                "max_seconds": 300.0,
                "drain_seconds": 15.0,
                "churn": churn,
                "seed": 1,
            }
            for part in split(chat_specs, clients)
        ]
        with Fleet("event_mix", specs) as fleet:
            fleet.wait_ready(180)
            usage = Usage.begin(cfg, server, label)
            fleet.start_now()
            results = fleet.results(420)
            resources = usage.end()
    started = min(r["started"] for r in results)
    last = max(r["last_delivery"] for r in results)
    wall = last - started
    deliveries = sum(r["deliveries"] for r in results)
    op_counts: dict[str, int] = {}
    for r in results:
        for k, v in r["ops"].items():
            op_counts[k] = op_counts.get(k, 0) + v
    faults: dict[str, int] = {"duplicated": 0, "misordered": 0, "gaps": 0, "closed_early": 0}
    for r in results:
        for k, v in r["faults"].items():
            faults[k] = faults.get(k, 0) + v
    out: dict[str, Any] = {
        "server": "chatcore",
        "shape": {"chats": chats, "members": members, "ops_per_member": ops, "mix": mix},
        "client_processes": len(specs),
        "sockets": sum(r["sockets"] for r in results),
        "ops_done": op_counts,
        "op_rule": "each member's next operation waits for its previous one's event on its "
        "own socket (10 s timeout); sends are WebSocket frames, edits PATCH and deletes "
        "DELETE /api/messages/{id}/ over keep-alive HTTP",
        "events_stored": sum(r["events_stored"] for r in results),
        "deliveries": deliveries,
        "wall_seconds": round(wall, 3),
        "delivered_per_second": round(deliveries / wall, 1) if wall > 0 else None,
        "op_latency": {
            k: summary_ms(x for r in results for x in r["op_latencies"][k])
            for k in ("send", "edit", "delete")
        },
        "verified_against": "GET /api/chats/{id}/events/?since=0 at the end, both rendered "
        "alike (latest content; a message deleted later shown as message_deleted)",
        "lost": sum(r["lost"] for r in results),
        "duplicated": faults["duplicated"],
        "misordered": faults["misordered"],
        "gaps": faults["gaps"],
        "sockets_closed_early": faults["closed_early"],
        "streams_differing_from_replay": sum(r["mismatched_streams"] for r in results),
        "mismatch_sample": [x for r in results for x in r["mismatch_sample"]][:3],
        "event_timeouts": sum(r["event_timeouts"] for r in results),
        "request_problems": sum(r["problem_count"] for r in results),
        "problem_sample": [x for r in results for x in r["problems"]][:3],
        "frames_outside_the_stream": sum(r["other_frames"] for r in results),
        "all_ops_finished": all(r["finished_ops"] for r in results),
        "client_cpu_seconds": round(sum(r["cpu_seconds"] for r in results), 2),
        "server_cpu_us_per_delivery": per_send_us(resources, deliveries),
        **resources,
    }
    if churn is not None:
        begun = [r["churn_started"] for r in results if r["churn_started"] is not None]
        ended = [r["churn_finished"] for r in results if r["churn_finished"] is not None]
        churn_wall = max(ended) - min(begun) if begun and ended else None
        changes = sum(r["churn_ops"] for r in results)
        churn_faults: dict[str, int] = {}
        for r in results:
            for k, v in r["churn_faults"].items():
                churn_faults[k] = churn_faults.get(k, 0) + v
        out["churn"] = {
            "rule": f"{churn_workers} loops per chat, each: the chat's admin adds a pool user "
            "(POST participants), the user's socket opens (?since= its member_added) and "
            "hears that event, then the admin removes it or, every other time, the user "
            "leaves (DELETE participants/{user_id}/); the next cycle starts once the socket "
            "closed",
            "pool_users": churn_pool,
            "changes": changes,
            "change_seconds": None if churn_wall is None else round(churn_wall, 3),
            "changes_per_second": round(changes / churn_wall, 1) if churn_wall else None,
            "removed_sockets": sum(r["churn_sockets"] for r in results),
            "removal_to_4404_close": summary_ms(x for r in results for x in r["removal_to_close"]),
            "removal_to_close_basis": "from the DELETE request being written to the 4404 "
            "close frame arriving on the removed user's socket",
            "removed_socket_faults": churn_faults,
            "problems": sum(r["churn_problem_count"] for r in results),
            "problem_sample": [x for r in results for x in r["churn_problems"]][:3],
        }
    return out


# --------------------------------------------------------------------------- g. stalled connections


def stalled(
    cfg: Config, connections: int, seconds: float, rate: float, nofile: int, reopen_delay: float
) -> dict[str, Any]:
    """Normal requests while ``connections`` connections each hold half a request head,
    on a server whose open-file limit is ``nofile``; the same requests with none stalled
    first, for comparison."""
    server = servers.chatcore(cfg, "stalled")
    server.nofile = nofile
    with servers.running(server):
        (user,) = servers.register(server, 1, f"stall{tag()}_")
        probes = [
            {
                "port": server.port,
                "token": user.token,
                "path": "/api/me/",
                "rate": rate,
                "seconds": seconds,
                "fresh": fresh,
            }
            for fresh in (False, True)
        ]

        def probe(with_stall: bool) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
            stall_spec = {
                "port": server.port,
                "count": connections,
                "max_reopens": 20 * connections,
                "reopen_delay": reopen_delay,
                "max_seconds": seconds + 120,
            }
            with contextlib.ExitStack() as stack:
                stall_result = None
                if with_stall:
                    staller = stack.enter_context(Fleet("stall", [stall_spec]))
                    staller.wait_ready(120)
                    time.sleep(1)  # the server has them all (or dropped the excess)
                    fds = proc_fd_count(server.pid)
                prober = stack.enter_context(Fleet("steady_probe", probes))
                prober.wait_ready(60)
                prober.start_now()
                if with_stall:
                    time.sleep(seconds / 2)
                    fds_mid = proc_fd_count(server.pid)
                out = prober.results(seconds + 90)
                if with_stall:
                    staller.stop.set()
                    (stall_result,) = staller.results(90)
                    stall_result.update(server_fds_after_opening=fds, server_fds_mid_window=fds_mid)
            return out, stall_result

        quiet, _ = probe(False)
        usage = Usage.begin(cfg, server, "stalled")
        busy, stall_report = probe(True)
        resources = usage.end()
        alive = server.proc is not None and server.proc.poll() is None

    def report(r: dict[str, Any]) -> dict[str, Any]:
        return {
            "requests": r["sent"],
            "answered": r["answered"],
            "statuses": r["statuses"],
            "errors": r["errors"],
            "latency": summary_ms(r["latencies"]),
        }

    def both(results: list[dict[str, Any]]) -> dict[str, Any]:
        keep_alive, fresh = results
        return {"keep_alive": report(keep_alive), "new_connection_each": report(fresh)}

    without, with_ = both(quiet), both(busy)
    return {
        "server": "chatcore",
        "open_file_limit": nofile,
        "connection_cap": f"CHATCORE_MAX_CONNECTIONS default, fitted to {nofile} - 64",
        "stalled_connections": connections,
        "stall": "each sends half a request head (request line, Host, half a header name) "
        f"and nothing more; one the server drops comes back {reopen_delay:g} s later",
        "probe": f"GET /api/me/ at {rate:g}/s for {seconds:g} s from each of two processes: "
        "one on keep-alive connections, one opening a new connection per request",
        "without_stalled": without,
        "with_stalled": with_,
        "stallers": stall_report,
        "p99_ratio_with_over_without": {
            k: ratio(with_[k]["latency"].get("p99_ms"), without[k]["latency"].get("p99_ms"))
            for k in with_
        },
        "server_alive_at_end": alive,
        **resources,
    }


def guarded(job: Any) -> dict[str, Any]:
    """Run a scenario; an error becomes ``{"error": ...}`` so the others still run."""
    started = monotonic()
    try:
        result: dict[str, Any] = job()
    except Exception as exc:
        import traceback

        result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    result["scenario_seconds"] = round(monotonic() - started, 1)
    return result
