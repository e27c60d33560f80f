"""chatcore benchmark, against the Django/DRF/Channels/Daphne baseline in the same run.

    .venv/bin/python bench/run.py [--quick] [--only NAME[,NAME]] [--baseline/--no-baseline]
                                   [--ceiling/--no-ceiling] [--compare-ref REV] [--out FILE]
                                   [--seed-venv DIR] [--clients N] [--rest-concurrency N]

Scenarios (``--only`` names): fanout, fanout_heavy, rest, history, history_postgres
(the same on PostgreSQL: a database of its own on 127.0.0.1:5432, or $BENCH_POSTGRES's
server, dropped after), idle_sockets, login_storm, edits, churn, stalled.
``--compare-ref REV`` also runs the fan-out against chatcore at REV (a git worktree in a
temp dir, with its own venv), alternating with this one, and reports this / old;
``--scale-out`` also runs fanout and rest against two workers with Redis, on SQLite and
on PostgreSQL. Progress goes to stderr; one JSON document with every figure to stdout
(and to ``--out``). Every scenario starts its own fresh server process(es) on a fresh
database, one server at a time, and drives it from separate client processes.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scenarios
import servers
from scenarios import guarded

NAMES = (
    "fanout",
    "fanout_heavy",
    "rest",
    "history",
    "history_postgres",
    "idle_sockets",
    "login_storm",
    "edits",
    "churn",
    "stalled",
)
EDIT_MIX = {"send": 0.5, "edit": 0.3, "delete": 0.2}

# Per-socket WebSocket send limit for chatcore during the benchmark (defaults 30/s,
# burst 60): high enough never to trigger, so the fan-out measures delivery, not policy.
WS_RATE = 1_000_000

FULL: dict[str, dict[str, Any]] = {
    "fanout": {"chats": 10, "members": 10, "messages": 20, "repeats": 3},
    "fanout_heavy": {"chats": 20, "members": 10, "messages": 50, "repeats": 3},
    "rest": {"sockets": 10, "concurrency": 16, "count": 2000, "repeats": 3},
    "history": {"small_n": 1000, "big_n": 1_000_000, "reps": 300},
    "history_postgres": {"small_n": 1000, "big_n": 1_000_000, "reps": 300},
    "idle_sockets": {
        "sockets": 10_000,
        "chats": 100,
        "users": 10,
        "concurrency": 100,
        "hold_seconds": 25.0,
    },
    "login_storm": {
        "storm_seconds": 20.0,
        "reference_seconds": 8.0,
        "storm_clients": 3,
        "storm_concurrency": 8,
        "probe_rate": 50.0,
    },
    "edits": {"chats": 10, "members": 10, "ops": 50},
    "churn": {
        "chats": 5,
        "members": 8,
        "ops": 60,
        "churn_workers": 2,
        "churn_pool": 4,
        "churn_cycles": 50,
    },
    "stalled": {
        "connections": 300,
        "seconds": 20.0,
        "rate": 20.0,
        "nofile": 256,
        "reopen_delay": 1.0,
    },
}
QUICK: dict[str, dict[str, Any]] = {
    "fanout": {"chats": 10, "members": 10, "messages": 20, "repeats": 1},
    "fanout_heavy": {"chats": 20, "members": 10, "messages": 20, "repeats": 1},
    "rest": {"sockets": 10, "concurrency": 16, "count": 600, "repeats": 1},
    "history": {"small_n": 1000, "big_n": 100_000, "reps": 100},
    "history_postgres": {"small_n": 1000, "big_n": 100_000, "reps": 100},
    "idle_sockets": {
        "sockets": 3000,
        "chats": 100,
        "users": 10,
        "concurrency": 100,
        "hold_seconds": 5.0,
    },
    "login_storm": {
        "storm_seconds": 10.0,
        "reference_seconds": 4.0,
        "storm_clients": 3,
        "storm_concurrency": 8,
        "probe_rate": 50.0,
    },
    "edits": {"chats": 10, "members": 10, "ops": 20},
    "churn": {
        "chats": 5,
        "members": 8,
        "ops": 25,
        "churn_workers": 2,
        "churn_pool": 4,
        "churn_cycles": 20,
    },
    "stalled": {
        "connections": 300,
        "seconds": 12.0,
        "rate": 20.0,
        "nofile": 256,
        "reopen_delay": 1.0,
    },
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    model = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            model = next((ln.split(":", 1)[1].strip() for ln in info if "model name" in ln), None)
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            mem = int(next(ln for ln in info if ln.startswith("MemTotal")).split()[1]) // 1024
    except (OSError, StopIteration):
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_mib": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "open_files_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "loadavg_at_start": os.getloadavg(),
    }


def git_revision() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=servers.REPO, capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD") or None,
        "uncommitted_changes": bool(git("status", "--porcelain")),
    }


def baseline_versions(cfg: servers.Config) -> dict[str, Any]:
    python = cfg.seed_venv / "bin" / "python"
    code = (
        "import platform, django, rest_framework, channels, daphne; print(platform."
        "python_version(), django.get_version(), rest_framework.VERSION, channels.__version__,"
        " daphne.__version__)"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    parts = done.stdout.split()
    if len(parts) != 5:
        return {"error": done.stderr.strip()[-300:]}
    keys = ("python", "django", "djangorestframework", "channels", "daphne")
    return dict(zip(keys, parts, strict=True))


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the measured value and whether it is met (None: not measured)."""

    def dig(*path: str) -> Any:
        node: Any = results
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    def check(name: str, value: Any, ok: Callable[[Any], bool], goal: str) -> dict[str, Any]:
        return {
            "target": name,
            "goal": goal,
            "value": value,
            "met": None if value is None else ok(value),
        }

    fan = dig("fanout", "ratios", "delivered_per_second_chatcore_over_baseline")
    p99 = dig("fanout", "ratios", "p99_latency_baseline_over_chatcore")
    rest = dig("rest", "ratios", "sends_per_second_chatcore_over_baseline")

    def worst_history(name: str) -> Any:
        hist = [
            dig(name, "ratios", k, "p50_big_over_small")
            for k in ("latest", "before_deep", "after_middle")
        ]
        return None if None in hist else max(hist)

    worst_hist, worst_pg_hist = worst_history("history"), worst_history("history_postgres")
    to_ceiling = dig("rest", "ratios_to_ceiling", "sends_per_second_chatcore_over_ceiling")
    kib = dig("idle_sockets", "kib_per_socket")
    me = dig("login_storm", "me_during_storm", "latency", "p99_ms")
    losses = []
    for name in ("fanout", "fanout_heavy", "rest"):
        for side in ("chatcore", "baseline", *servers.SCALE_OUT):
            lost, dup = dig(name, side, "lost"), dig(name, side, "duplicates")
            if lost is not None:
                losses.append(f"{name}/{side}: lost {lost}, duplicates {dup}")
    to_old = dig("fanout", "ratios_to_old", "delivered_per_second_chatcore_over_old")
    close = dig("churn", "churn", "removal_to_4404_close", "max_ms")
    stall_max = [
        dig("stalled", "with_stalled", k, "latency", "max_ms")
        for k in ("keep_alive", "new_connection_each")
    ]
    worst_stall = None if None in stall_max else max(stall_max)
    stream_faults = []
    for name in ("edits", "churn"):
        node = dig(name)
        if isinstance(node, dict) and "lost" in node:
            stream_faults += [
                node[k]
                for k in (
                    "lost",
                    "duplicated",
                    "misordered",
                    "gaps",
                    "streams_differing_from_replay",
                )
            ]
    clean = [
        dig(n, side, k)
        for n in ("fanout", "fanout_heavy", "rest")
        for side in ("chatcore", *servers.SCALE_OUT)
        for k in ("lost", "duplicates")
    ]
    scale_out = []
    for side in servers.SCALE_OUT:
        for name, rate in (("fanout", "delivered_per_second"), ("rest", "sends_per_second")):
            over_base = dig(name, "scale_out_ratios", side, f"{rate}_over_baseline")
            over_one = dig(name, "scale_out_ratios", side, f"{rate}_over_one_process")
            scale_out.append(
                check(f"{name} {rate}, {side} / baseline", over_base, lambda v: v >= 20, ">= 20")
            )
            if name == "fanout":
                scale_out.append(
                    check(
                        f"{name} {rate}, {side} / one process (SQLite)",
                        over_one,
                        lambda v: v >= 1.3,
                        ">= 1.3",
                    )
                )
    clean_values = [v for v in clean if v is not None]
    return [
        check("fan-out delivered messages/s, chatcore / baseline", fan, lambda v: v >= 20, ">= 20"),
        check("fan-out p99 latency, baseline / chatcore", p99, lambda v: v >= 20, ">= 20"),
        check(
            "fan-out delivered messages/s, chatcore / old chatcore (--compare-ref)",
            to_old,
            lambda v: v >= 0.9,
            ">= 0.9",
        ),
        check(
            "removed user's socket closed 4404, max ms after the DELETE",
            close,
            lambda v: v < 1000,
            "< 1000",
        ),
        check(
            "GET /api/me/ max ms under 300 stalled connections",
            worst_stall,
            lambda v: v < 1000,
            "< 1000",
        ),
        check(
            "edits and churn: lost, duplicated, misordered, gaps, streams unlike the replay",
            stream_faults or None,
            lambda v: not any(v),
            "all 0",
        ),
        check(
            "REST sends/s with sockets attached, chatcore / baseline",
            rest,
            lambda v: v >= 20,
            ">= 20",
        ),
        check(
            "REST sends/s with sockets attached, chatcore / ceiling (durable vs in memory)",
            to_ceiling,
            lambda v: v >= 0.5,
            ">= 0.5",
        ),
        check(
            "history page p50 at the big chat / at 1k (worst of latest, before, after)",
            worst_hist,
            lambda v: v <= 1.2,
            "<= 1.2",
        ),
        check(
            "history page p50 at the big chat / at 1k on PostgreSQL (worst of the three)",
            worst_pg_hist,
            lambda v: v <= 1.2,
            "<= 1.2",
        ),
        *scale_out,
        check("KiB per idle socket", kib, lambda v: v < 40, "< 40"),
        check("GET /api/me/ p99 ms during a login storm", me, lambda v: v < 20, "< 20"),
        {
            "target": "chatcore loses and duplicates nothing",
            "goal": "0",
            "value": losses,
            "met": None if not clean_values else all(v == 0 for v in clean_values),
        },
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller loads, about 3 minutes")
    parser.add_argument("--only", action="append", help=f"run only these: {', '.join(NAMES)}")
    parser.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--ceiling",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run fanout and rest against bench/ceiling.py (chatcore's routes and "
        "uvicorn settings, from memory) and report chatcore / ceiling",
    )
    parser.add_argument(
        "--compare-ref",
        metavar="REV",
        help="also run fanout against chatcore at this git revision (e.g. f612658, main "
        "before the per-chat event log): a detached worktree in the run's temp dir with its "
        "own venv, removed at the end; reports this / old and the server CPU per delivery",
    )
    parser.add_argument(
        "--scale-out",
        action="store_true",
        help="also run fanout and rest against two worker processes on one SQLite file with "
        "Redis (workers_sqlite) and on PostgreSQL with Redis (workers_postgres); Redis at "
        "$BENCH_REDIS_URL (default redis://127.0.0.1:6379/0) under a prefix of the run's own",
    )
    parser.add_argument("--out", type=Path, help="also write the JSON document here")
    parser.add_argument(
        "--seed-venv",
        type=Path,
        default=Path(os.environ.get("SEED_VENV", "/tmp/seed-venv")),
        help="the baseline's venv (from its setup.sh); default $SEED_VENV or /tmp/seed-venv",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy record chatcore's measured windows into this directory (raw collapsed "
        "stacks of GIL-holding samples, per thread); sampling disturbs the server: use it "
        "for diagnosis, not for the figures",
    )
    parser.add_argument(
        "--keep-workdir",
        action="store_true",
        help="keep the servers' databases and logs (kept anyway when a scenario fails)",
    )
    parser.add_argument("--clients", type=int, default=2, help="client processes for the fan-out")
    parser.add_argument(
        "--rest-concurrency", type=int, help="concurrent HTTP clients in rest (default 16)"
    )
    parser.add_argument(
        "--idle-clients", type=int, default=4, help="client processes, idle sockets"
    )
    args = parser.parse_args()
    only = [n.strip() for item in args.only or [] for n in item.split(",") if n.strip()]
    unknown = sorted(set(only) - set(NAMES))
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {', '.join(NAMES)}")
    selected = [n for n in NAMES if not only or n in only]
    params = QUICK if args.quick else FULL
    if args.rest_concurrency:
        params = {**params, "rest": {**params["rest"], "concurrency": args.rest_concurrency}}

    workdir = Path(tempfile.mkdtemp(prefix="chatcore-bench-"))
    old_root, old_commit = None, None
    if args.compare_ref:
        log(f"checking out {args.compare_ref} and installing it into its own venv")
        old_root, old_commit = servers.check_out(args.compare_ref, workdir)
    scale_out = servers.SCALE_OUT if args.scale_out else ()
    cfg = servers.Config(
        workdir, args.seed_venv, WS_RATE, WS_RATE, args.profile, old_root, scale_out
    )
    with_baseline = bool(args.baseline)
    notes = [
        "Client and server processes share the machine's cores: the load generators' CPU "
        "is taken from the same 2 cores the server runs on, so every figure is a "
        "client+server figure (server_cpu_cores_busy shows the server's share).",
        "Only one server runs at a time; each scenario starts a fresh server process on a "
        "fresh SQLite file; the load comes from separate client processes (multiprocessing "
        "'spawn', one asyncio loop each).",
        f"chatcore runs with CHATCORE_WS_SENDS_PER_SECOND={WS_RATE} and "
        f"CHATCORE_WS_SEND_BURST={WS_RATE} (defaults 30 and 60) so its per-socket rate limit "
        "never triggers, and with --log-level warning (no access log; Daphne runs with "
        "--verbosity 0, no access log, from the baseline's own run.sh).",
        "The baseline runs exactly as its run.sh starts it: Daphne, one process, "
        "InMemoryChannelLayer (capacity 100), SQLite in WAL mode, PBKDF2 passwords.",
        "Clients offer no permessage-deflate (to both servers), send {content, client_id} "
        "frames (the baseline ignores client_id) and identify messages by a nonce, the "
        "chat, the sender, a sequence number and the send time embedded in content.",
        "Latencies use CLOCK_MONOTONIC, common to all processes of the machine.",
    ]
    skipped: list[str] = []
    if with_baseline and not cfg.baseline_available():
        with_baseline = False
        msg = (
            f"baseline skipped: no venv at {cfg.seed_venv} (run SEED_VENV={cfg.seed_venv} "
            "bash /work/shared/baseline/seed_django/setup.sh); no comparisons in this run"
        )
        skipped.append(msg)
        log(msg)
    elif not with_baseline:
        skipped.append("baseline skipped by --no-baseline; no comparisons in this run")
    if args.ceiling:
        notes.append(
            "fanout and rest also run against bench/ceiling.py: Starlette and uvicorn under "
            "chatcore's own uvicorn settings, serving the same routes and frames from memory "
            "(plain tokens, no hashing, no database); ratios_to_ceiling gives chatcore / "
            "ceiling and each side's server CPU per send."
        )

    document: dict[str, Any] = {
        "benchmark": "chatcore vs seed_django (Django + DRF + Channels + Daphne) baseline",
        "command": " ".join([Path(sys.executable).as_posix(), *sys.argv]),
        "mode": "quick" if args.quick else "full",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "chatcore": {
            **git_revision(),
            "uvicorn": version("uvicorn"),
            "starlette": version("starlette"),
            "uvloop": version("uvloop"),
            "httptools": version("httptools"),
        },
        "old_chatcore": None
        if old_commit is None
        else {"ref": args.compare_ref, "commit": old_commit, "runs": "fanout"},
        "baseline": baseline_versions(cfg) if with_baseline else None,
        "client": {
            "websockets": version("websockets"),
            "http": "bench/lib.py RawHttp (keep-alive HTTP/1.1)",
        },
        "settings": {
            "scenarios": selected,
            "parameters": {n: params[n] for n in selected},
            "fanout_client_processes": args.clients,
            "idle_client_processes": args.idle_clients,
            "chatcore_env": cfg.chatcore_env(),
            "baseline_env": {"SEED_VENV": str(cfg.seed_venv)} if with_baseline else None,
            "workdir": str(workdir),
            "profile_dir": str(args.profile) if args.profile else None,
        },
        "notes": notes,
        "skipped": skipped,
        "scenarios": {},
    }
    started = time.monotonic()
    results: dict[str, Any] = document["scenarios"]
    for name in selected:
        p = params[name]
        log(f"{name}: {p}")
        if name == "fanout":
            results[name] = scenarios.fanout_pair(
                cfg, with_baseline, args.ceiling, clients=args.clients, **p
            )
        elif name == "fanout_heavy":
            results[name] = scenarios.fanout_pair(cfg, False, False, clients=args.clients, **p)
        elif name == "rest":
            results[name] = scenarios.rest_pair(cfg, with_baseline, args.ceiling, clients=2, **p)
        elif name == "history":
            results[name] = guarded(lambda p=p: scenarios.history(cfg, **p))
        elif name == "history_postgres":
            results[name] = guarded(lambda p=p: scenarios.history_postgres(cfg, **p))
        elif name == "idle_sockets":
            results[name] = guarded(
                lambda p=p: scenarios.idle_sockets(cfg, clients=args.idle_clients, **p)
            )
        elif name == "login_storm":
            results[name] = guarded(lambda p=p: scenarios.login_storm(cfg, **p))
        elif name == "edits":
            results[name] = guarded(
                lambda p=p: scenarios.event_streams(
                    cfg, "edits", clients=args.clients, mix=EDIT_MIX, **p
                )
            )
        elif name == "churn":
            results[name] = guarded(
                lambda p=p: scenarios.event_streams(
                    cfg, "churn", clients=args.clients, mix={"send": 1.0}, **p
                )
            )
        elif name == "stalled":
            results[name] = guarded(lambda p=p: scenarios.stalled(cfg, **p))
        log(f"{name}: done")
    document["targets"] = targets(results)
    document["machine"]["loadavg_at_end"] = os.getloadavg()
    document["duration_seconds"] = round(time.monotonic() - started, 1)
    failed = '"error":' in json.dumps(results)
    if old_root is not None:
        servers.remove_checkout(old_root)
    if args.keep_workdir or failed:
        document["settings"]["workdir_kept"] = True  # server logs and databases, to look at
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(document, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
