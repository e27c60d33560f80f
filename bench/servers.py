"""Starting and stopping the two servers, and the accounts and chats a scenario needs.

Each scenario gets a fresh server process on a fresh SQLite file, and only one server
runs at a time, so neither competes with the other for the two cores.
"""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import psycopg
from psycopg import sql

from lib import HOST, tree_cpu_seconds, tree_status_kib

REPO = Path(__file__).resolve().parent.parent
SEED_DIR = Path("/work/shared/baseline/seed_django")
PASSWORD = "Bench-zebra-7731-quartz"  # noqa: S105 - a throwaway benchmark password


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@attrs.define
class Server:
    """A server process listening on ``127.0.0.1:port``."""

    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    db: Path
    log: Path
    cwd: Path
    ready_timeout: float = 60.0
    nofile: int | None = None  # the process's open-file limit (soft), when set
    proc: subprocess.Popen[bytes] | None = None
    # What outlives the process until it stops (a scratch database), closed by stop().
    resources: contextlib.ExitStack = attrs.Factory(contextlib.ExitStack)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_base(self) -> str:
        return f"ws://{HOST}:{self.port}"

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=None if self.nofile is None else self._limit_files,
            )
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start: {self.log_tail()}")
            try:
                status = httpx.get(f"{self.base}/api/me/", timeout=2).status_code
                if status == 401:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} not ready in {self.ready_timeout} s: {self.log_tail()}")

    def _limit_files(self) -> None:
        assert self.nofile is not None
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, hard))

    def stop(self) -> None:
        with self.resources:
            if self.proc is None or self.proc.poll() is not None:
                return
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def rss_kib(self) -> int | None:
        return tree_status_kib(self.pid, "VmRSS")

    def cpu_seconds(self) -> float | None:
        return tree_cpu_seconds(self.pid)  # a --workers server: its workers too

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@attrs.frozen
class Config:
    """What the run needs to know to start servers."""

    workdir: Path
    seed_venv: Path
    ws_sends_per_second: int
    ws_send_burst: int
    profile_dir: Path | None = None  # py-spy profiles of chatcore's measured windows
    old_root: Path | None = None  # a worktree of an older chatcore, with its own .venv
    scale_out: tuple[str, ...] = ()  # the --scale-out configurations fanout and rest add

    def baseline_available(self) -> bool:
        return (self.seed_venv / "bin" / "daphne").exists() and (SEED_DIR / "run.sh").exists()

    def chatcore_env(self) -> dict[str, str]:
        return {
            "CHATCORE_WS_SENDS_PER_SECOND": str(self.ws_sends_per_second),
            "CHATCORE_WS_SEND_BURST": str(self.ws_send_burst),
        }


REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def chatcore(
    cfg: Config,
    tag: str,
    db: Path | None = None,
    root: Path | None = None,
    workers: int = 1,
    extra: dict[str, str] | None = None,
    name: str | None = None,
    database_url: str | None = None,
) -> Server:
    """This chatcore, or with ``root`` the older one checked out there (its own venv);
    with ``workers`` processes and ``extra`` settings (Redis); on the SQLite file ``db`` (a
    fresh one when None), or on the PostgreSQL database ``database_url`` (then ``db`` only
    names where the log goes)."""
    port = free_port()
    db = db or Path(tempfile.mkdtemp(prefix=f"chatcore-{tag}-", dir=cfg.workdir)) / "db.sqlite3"
    python = sys.executable if root is None else str(root / ".venv" / "bin" / "python")
    argv = [python, "-m", "entrypoints.cli", "serve", "--host", HOST, "--port", str(port)]
    # uvicorn's access log is off at "warning": Daphne runs without one too.
    argv += ["--log-level", "warning", "--workers", str(workers)]
    where = (
        {"CHATCORE_DATABASE_URL": database_url} if database_url else {"CHATCORE_DATABASE": str(db)}
    )
    env = {**where, **cfg.chatcore_env(), **(extra or {})}
    name = name or ("chatcore" if root is None else "old")
    return Server(name, argv, env, port, db, db.with_suffix(".log"), root or REPO)


def redis_settings() -> dict[str, str]:
    """Redis for a scale-out server, under a key prefix of this run's own."""
    return {
        "CHATCORE_REDIS_URL": REDIS_URL,
        "CHATCORE_REDIS_PREFIX": f"bench-{secrets.token_hex(4)}:",
    }


def workers_sqlite(cfg: Config, tag: str) -> Server:
    """Scale-out (b): two worker processes on one SQLite file, real time through Redis."""
    return chatcore(cfg, tag, workers=2, extra=redis_settings(), name="workers_sqlite")


def workers_postgres(cfg: Config, tag: str) -> Server:
    """Scale-out (c): two worker processes on PostgreSQL (a scratch database, dropped
    when the server stops), real time through Redis."""
    resources = contextlib.ExitStack()
    url = resources.enter_context(scratch_postgres(tag))
    server = chatcore(
        cfg, tag, workers=2, extra=redis_settings(), name="workers_postgres", database_url=url
    )
    server.resources = resources
    return server


@contextlib.contextmanager
def scratch_postgres(label: str) -> Iterator[str]:
    """A PostgreSQL database of the benchmark's own on the machine's server (a random
    name), dropped afterwards."""
    admin = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"chatcore_bench_{label}_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


SCALE_OUT = ("workers_sqlite", "workers_postgres")


def old_chatcore(cfg: Config, tag: str) -> Server:
    assert cfg.old_root is not None, "no --compare-ref worktree"
    return chatcore(cfg, tag, root=cfg.old_root)


def check_out(ref: str, workdir: Path) -> tuple[Path, str]:
    """A detached git worktree of ``ref`` under ``workdir`` with chatcore installed into
    its own venv (its runtime dependencies only): (its root, the full commit)."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    root = workdir / f"ref-{commit[:12]}"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(root), commit],
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    subprocess.run([sys.executable, "-m", "venv", str(root / ".venv")], check=True)
    pip = [str(root / ".venv" / "bin" / "python"), "-m", "pip", "install", "-q", "-e", str(root)]
    subprocess.run(pip, capture_output=True, check=True)
    return root, commit


def remove_checkout(root: Path) -> None:
    """Undo ``check_out``: the worktree and its registration in the repository."""
    subprocess.run(
        ["git", "worktree", "remove", "--force", str(root)],
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    shutil.rmtree(root, ignore_errors=True)
    subprocess.run(["git", "worktree", "prune"], cwd=REPO, capture_output=True, check=False)


def ceiling(cfg: Config, tag: str) -> Server:
    """The ceiling (bench/ceiling.py): chatcore's routes and uvicorn settings, from memory."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix=f"ceiling-{tag}-", dir=cfg.workdir))
    argv = [sys.executable, str(REPO / "bench" / "ceiling.py"), "--port", str(port)]
    argv += ["--host", HOST, "--log-level", "warning"]
    # Its database path is never opened: the field only names where its log goes.
    db = workdir / "none.sqlite3"
    return Server("ceiling", argv, cfg.chatcore_env(), port, db, db.with_suffix(".log"), REPO)


def baseline(cfg: Config, tag: str) -> Server:
    port = free_port()
    db = Path(tempfile.mkdtemp(prefix=f"seed-{tag}-", dir=cfg.workdir)) / "db.sqlite3"
    argv = ["bash", str(SEED_DIR / "run.sh"), str(port), str(db)]
    env = {"SEED_VENV": str(cfg.seed_venv)}
    return Server("baseline", argv, env, port, db, db.with_suffix(".log"), cfg.workdir)


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- fixtures


@attrs.frozen
class Account:
    id: int
    username: str
    token: str


def _check(response: httpx.Response, expected: int, what: str) -> Any:
    if response.status_code != expected:
        raise RuntimeError(f"{what}: HTTP {response.status_code} {response.text[:300]}")
    return response.json()


def register(server: Server, count: int, prefix: str) -> list[Account]:
    """``count`` new accounts (sequentially: both servers hash passwords on purpose)."""
    accounts = []
    with httpx.Client(base_url=server.base, timeout=60) as client:
        for n in range(count):
            username = f"{prefix}{n}"
            body = {
                "username": username,
                "email": f"{username}@example.com",  # the baseline requires one
                "password": PASSWORD,
                "password_confirm": PASSWORD,
                "user_type": "student",
            }
            data = _check(client.post("/api/register/", json=body), 201, "register")
            accounts.append(Account(int(data["id"]), username, str(data["token"])))
    return accounts


def create_chats(server: Server, owner: Account, members: list[Account], count: int) -> list[int]:
    """``count`` chats, each with every one of ``members`` (``owner`` among them)."""
    ids = []
    with httpx.Client(base_url=server.base, timeout=60) as client:
        for n in range(count):
            body = {"name": f"bench {n}", "participant_ids": [m.id for m in members]}
            data = _check(
                client.post(
                    "/api/chats/", json=body, headers={"Authorization": f"Token {owner.token}"}
                ),
                201,
                "create chat",
            )
            ids.append(int(data["id"]))
    return ids


def tokens(accounts: list[Account]) -> list[str]:
    return [a.token for a in accounts]
