"""Black-box wiring for the integration suite: real `chatcore serve` processes on free ports,
each with its own SQLite file (or, as a `cluster`, several sharing one storage and one
Redis), spoken to over HTTP with httpx.

Everything here follows the wire contract (../shared/API.md), never the server's code.
Helpers reach the tests as fixtures (`api`, `server`, `server_factory`, `client`), because a
second `conftest` module cannot be imported by name beside tests/conftest.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from browsing import Watched, chromium
from playwright.sync_api import Browser

from pg_support import scratch_database
from private_redis import SHARED_REDIS_URL, fresh_prefix

READY_DEADLINE = 20.0
STOP_DEADLINE = 10.0
CLI_DEADLINE = 120.0
HTTP_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Database = Path | str  # a SQLite file, or a PostgreSQL URL


def cli_env(db: Database, **extra: str) -> dict[str, str]:
    """The child's environment: ours minus any stray CHATCORE_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCORE_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    if isinstance(db, Path):
        env["CHATCORE_DATABASE"] = str(db)
    else:
        env["CHATCORE_DATABASE_URL"] = db
    # Every client of the suite is 127.0.0.1 and the shared server serves the whole
    # session: it signs up and creates far more than one real address or user would.
    # Tests of those limits start a server of their own with the limit they test.
    env["CHATCORE_REGISTRATIONS_PER_ADDRESS"] = str(10**6)
    env["CHATCORE_CHATS_PER_USER"] = str(10**6)
    env.update(extra)
    return env


def run_cli(
    *args: str, db: Database, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """`python -m entrypoints.cli ARGS` against the database `db` (a SQLite file, or a
    PostgreSQL URL: then `cwd` is needed); output captured."""
    if cwd is None:
        assert isinstance(db, Path), "a PostgreSQL database needs a cwd"
        cwd = db.parent
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *args],
        env=cli_env(db, **env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=CLI_DEADLINE,
        check=False,
        stdin=subprocess.DEVNULL,
    )


class Server:
    """One `chatcore serve` process. Its output goes to a file, not an unread pipe."""

    def __init__(
        self, db: Database, workdir: Path, env: Mapping[str, str], args: Sequence[str] = ()
    ) -> None:
        self.db = db
        self.workdir = workdir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = dict(env)
        self.log_path = workdir / f"server-{self.port}-{uuid.uuid4().hex[:6]}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        try:
            self.process: subprocess.Popen[bytes] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "entrypoints.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    *args,
                ],
                env=cli_env(db, **self.settings),
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
        except BaseException:
            self._log.close()
            raise
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_DEADLINE
        with httpx.Client(base_url=self.url, timeout=2.0) as probe:
            while True:
                if self.process.poll() is not None:
                    pytest.fail(
                        f"chatcore serve exited with {self.process.returncode} before "
                        f"answering:\n{self.output()}",
                        pytrace=False,
                    )
                try:
                    probe.get("/api/me/")
                except httpx.TransportError:
                    pass
                else:
                    return
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"chatcore serve did not answer GET /api/me/ within "
                        f"{READY_DEADLINE:.0f}s:\n{self.output()}",
                        pytrace=False,
                    )
                time.sleep(0.05)

    def output(self) -> str:
        """Everything the server has written so far (stdout and stderr)."""
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        return httpx.Client(base_url=self.url, **kwargs)

    def kill(self) -> None:
        """kill -9: gone at once, as a crash, with no goodbye to its sockets."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=STOP_DEADLINE)

    def stop(self) -> None:
        """SIGTERM, wait, kill after a bound; always closes the log file."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=STOP_DEADLINE)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=STOP_DEADLINE)
        finally:
            self._log.close()


class ServerFactory:
    """Starts servers (each its own process and port) and stops every one of them."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.servers: list[Server] = []

    def new_db(self) -> Path:
        return self.workdir / f"chatcore-{uuid.uuid4().hex[:8]}.sqlite3"

    def __call__(self, db: Database | None = None, args: Sequence[str] = (), **env: str) -> Server:
        server = Server(db or self.new_db(), self.workdir, env, args)
        self.servers.append(server)
        return server

    def close(self) -> None:
        errors: list[BaseException] = []
        for server in reversed(self.servers):
            try:
                server.stop()
            except BaseException as exc:  # keep stopping the others
                errors.append(exc)
        self.servers.clear()
        if errors:
            raise errors[0]


class Cluster:
    """Servers that make one deployment: each its own process and port, all on one storage
    (given as the settings that name it) and one Redis, under a key prefix of their own."""

    def __init__(
        self,
        factory: ServerFactory,
        storage: Mapping[str, str],
        redis_url: str,
        env: Mapping[str, str],
    ) -> None:
        self.factory = factory
        self.storage = dict(storage)
        # The database CLI helpers (createsuperuser) work on: the SQLite file or the URL.
        url = self.storage.get("CHATCORE_DATABASE_URL")
        self.db: Database = (
            url if url else Path(self.storage.get("CHATCORE_DATABASE", factory.new_db()))
        )
        self.settings = {
            **self.storage,
            "CHATCORE_REDIS_URL": redis_url,
            "CHATCORE_REDIS_PREFIX": fresh_prefix(),
            **env,
        }
        self.servers: list[Server] = []

    def start(self, count: int = 1, args: Sequence[str] = ()) -> list[Server]:
        """``count`` more servers, one after the other (each answering before the next)."""
        started = [self.factory(db=self.db, args=args, **self.settings) for _ in range(count)]
        self.servers += started
        return started


# --- helpers for the tests, handed out by the `api` fixture -------------------------------

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$")


class Api:
    """Contract constants, request helpers and shape assertions."""

    PASSWORD = "Quartz-lantern-7781"
    USER_KEYS = frozenset({"id", "username", "user_type"})
    ME_KEYS = USER_KEYS | {"email", "date_joined", "is_admin"}
    AUTH_KEYS = ME_KEYS | {"token"}
    CHAT_KEYS = frozenset(
        {"id", "name", "participants", "created_at", "last_message", "admins", "seq"}
    )
    MESSAGE_KEYS = frozenset(
        {"id", "chat", "sender", "content", "timestamp", "client_id", "edited_at"}
    )
    ADMIN_USER_KEYS = frozenset(
        {"id", "username", "email", "user_type", "date_joined", "is_admin", "is_active"}
    )
    USER_TYPES = frozenset({"owner", "student", "staff"})

    # requests ------------------------------------------------------------------------------

    @staticmethod
    def unique(prefix: str = "u") -> str:
        return f"{prefix}{uuid.uuid4().hex[:12]}"

    @staticmethod
    def auth(token: str, scheme: str = "Token") -> dict[str, str]:
        return {"Authorization": f"{scheme} {token}"}

    def register(
        self, client: httpx.Client, username: str | None = None, **fields: Any
    ) -> tuple[dict[str, Any], str]:
        """Registers a fresh user; returns (user json without token, token).

        The client's cookie jar is cleared afterwards so that later token-authenticated
        requests on the same client never also carry someone's session cookie."""
        body: dict[str, Any] = {
            "username": username or self.unique(),
            "email": "",
            "password": self.PASSWORD,
            "password_confirm": self.PASSWORD,
            "user_type": "student",
        }
        body.update(fields)
        if not body["email"]:
            del body["email"]
        response = client.post("/api/register/", json=body)
        client.cookies.clear()
        assert response.status_code == 201, (response.status_code, response.text)
        data = response.json()
        token = data.pop("token")
        assert isinstance(token, str)
        assert token
        return data, token

    def login(
        self, client: httpx.Client, username: str, password: str | None = None
    ) -> httpx.Response:
        response = client.post(
            "/api/login/",
            json={"username": username, "password": password or self.PASSWORD},
        )
        client.cookies.clear()
        return response

    def create_chat(
        self,
        client: httpx.Client,
        token: str,
        *,
        name: str | None = None,
        ids: list[int] | None = None,
        usernames: list[str] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name or self.unique("chat-")}
        if ids is not None:
            body["participant_ids"] = ids
        if usernames is not None:
            body["participant_usernames"] = usernames
        if ids is None and usernames is None:
            body["participant_ids"] = []
        response = client.post("/api/chats/", json=body, headers=self.auth(token))
        assert response.status_code == 201, (response.status_code, response.text)
        chat = response.json()
        self.assert_chat(chat)
        return chat

    def send(
        self,
        client: httpx.Client,
        token: str,
        chat_id: int,
        content: str,
        client_id: str | None = None,
        expect: int = 201,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"content": content}
        if client_id is not None:
            body["client_id"] = client_id
        response = client.post(
            f"/api/chats/{chat_id}/send_message/", json=body, headers=self.auth(token)
        )
        assert response.status_code == expect, (response.status_code, response.text)
        message = response.json()
        self.assert_message(message)
        return message

    def history(self, client: httpx.Client, token: str, chat_id: int) -> list[dict[str, Any]]:
        """Every message of the chat, read back page by page through the prev links."""
        response = client.get(
            f"/api/chats/{chat_id}/messages/", params={"limit": 1000}, headers=self.auth(token)
        )
        assert response.status_code == 200, response.text
        messages: list[dict[str, Any]] = response.json()
        while "prev" in response.links:
            response = client.get(response.links["prev"]["url"], headers=self.auth(token))
            assert response.status_code == 200, response.text
            messages = response.json() + messages
        return messages

    # link headers --------------------------------------------------------------------------

    @staticmethod
    def link_params(response: httpx.Response, rel: str) -> dict[str, str]:
        """The query of the Link header's `rel` URL, one value per key."""
        url = response.links[rel]["url"]
        query = parse_qs(urlsplit(url).query, keep_blank_values=True)
        return {key: values[-1] for key, values in query.items()}

    @staticmethod
    def set_cookies(response: httpx.Response) -> dict[str, tuple[str, dict[str, Any]]]:
        """name -> (value, attributes by lower-cased name; flags are True), parsed from
        every Set-Cookie header of the response."""
        cookies: dict[str, tuple[str, dict[str, Any]]] = {}
        for header in response.headers.get_list("set-cookie"):
            first, *rest = (part.strip() for part in header.split(";"))
            name, _, value = first.partition("=")
            attrs: dict[str, Any] = {}
            for part in rest:
                key, eq, attr_value = part.partition("=")
                attrs[key.strip().lower()] = attr_value.strip() if eq else True
            cookies[name.strip()] = (value.strip().strip('"'), attrs)
        return cookies

    # assertions ----------------------------------------------------------------------------

    @staticmethod
    def assert_time(value: Any) -> datetime:
        assert isinstance(value, str), value
        assert ISO_UTC.match(value), f"not ISO 8601 UTC with Z/+00:00: {value!r}"
        parsed = datetime.fromisoformat(value)
        assert parsed.utcoffset() == timedelta(0)
        return parsed

    @staticmethod
    def assert_id(value: Any) -> None:
        assert isinstance(value, int), value
        assert not isinstance(value, bool), value
        assert value > 0, value

    def assert_user(self, user: Any) -> None:
        assert isinstance(user, dict), user
        assert set(user) == self.USER_KEYS, sorted(user)
        self.assert_id(user["id"])
        assert isinstance(user["username"], str)
        assert user["user_type"] in self.USER_TYPES

    def assert_me(self, me: Any, *, with_token: bool = False) -> None:
        assert isinstance(me, dict), me
        assert set(me) == (self.AUTH_KEYS if with_token else self.ME_KEYS), sorted(me)
        self.assert_id(me["id"])
        assert isinstance(me["username"], str)
        assert me["user_type"] in self.USER_TYPES
        assert me["email"] is None or isinstance(me["email"], str)
        self.assert_time(me["date_joined"])
        assert isinstance(me["is_admin"], bool)

    def assert_admin_user(self, user: Any) -> None:
        assert isinstance(user, dict), user
        assert set(user) == self.ADMIN_USER_KEYS, sorted(user)
        self.assert_id(user["id"])
        assert user["user_type"] in self.USER_TYPES
        assert isinstance(user["is_admin"], bool)
        assert isinstance(user["is_active"], bool)
        self.assert_time(user["date_joined"])

    def assert_message(self, message: Any) -> None:
        assert isinstance(message, dict), message
        assert set(message) == self.MESSAGE_KEYS, sorted(message)
        self.assert_id(message["id"])
        self.assert_id(message["chat"])
        self.assert_user(message["sender"])
        assert isinstance(message["content"], str)
        self.assert_time(message["timestamp"])
        assert message["client_id"] is None or isinstance(message["client_id"], str)
        if message["edited_at"] is not None:
            assert self.assert_time(message["edited_at"]) >= self.assert_time(message["timestamp"])

    def assert_chat(self, chat: Any) -> None:
        assert isinstance(chat, dict), chat
        assert set(chat) == self.CHAT_KEYS, sorted(chat)
        self.assert_id(chat["id"])
        assert isinstance(chat["name"], str)
        assert isinstance(chat["participants"], list)
        for user in chat["participants"]:
            self.assert_user(user)
        self.assert_time(chat["created_at"])
        assert chat["admins"] == sorted(set(chat["admins"])), chat["admins"]
        assert set(chat["admins"]) <= {user["id"] for user in chat["participants"]}
        assert chat["admins"], "a chat always has an admin"
        assert isinstance(chat["seq"], int), chat["seq"]
        assert chat["seq"] >= 0, chat["seq"]
        if chat["last_message"] is not None:
            self.assert_message(chat["last_message"])
            assert chat["last_message"]["chat"] == chat["id"]

    def assert_page(self, response: httpx.Response) -> list[dict[str, Any]]:
        """A 200 message list: an array of Messages, oldest (lowest id) first."""
        assert response.status_code == 200, (response.status_code, response.text)
        messages = response.json()
        assert isinstance(messages, list), messages
        for message in messages:
            self.assert_message(message)
        ids = [m["id"] for m in messages]
        assert ids == sorted(ids), ids
        assert len(set(ids)) == len(ids), ids
        return messages

    @staticmethod
    def assert_json(response: httpx.Response) -> Any:
        content_type = response.headers.get("content-type", "")
        assert "json" in content_type, (response.status_code, content_type, response.text)
        assert "Traceback" not in response.text, response.text
        return json.loads(response.content)

    def assert_detail(self, response: httpx.Response, status: int) -> str:
        """`{"detail": "message"}` with the given status."""
        assert response.status_code == status, (response.status_code, response.text)
        body = self.assert_json(response)
        assert isinstance(body, dict), body
        assert set(body) == {"detail"}, body
        assert isinstance(body["detail"], str), body
        assert body["detail"], body
        if status == 401:
            assert response.headers.get("www-authenticate"), dict(response.headers)
        if status == 429:
            retry_after = response.headers.get("retry-after", "")
            assert re.fullmatch(r"\d+", retry_after), f"Retry-After {retry_after!r}"
            assert int(retry_after) > 0, retry_after
        return str(body["detail"])

    def assert_field_error(self, response: httpx.Response, *fields: str) -> dict[str, Any]:
        """A DRF 400: `{"field": ["message", ...]}`, naming (at least) every one of `fields`.

        With several `fields` given, one of them being named is enough (for rules whose
        field the contract leaves open)."""
        assert response.status_code == 400, (response.status_code, response.text)
        body = self.assert_json(response)
        assert isinstance(body, dict), body
        assert body, body
        for key, messages in body.items():
            assert isinstance(key, str)
            assert isinstance(messages, list), (key, messages)
            assert messages, (key, messages)
            assert all(isinstance(m, str) and m for m in messages), (key, messages)
        assert any(field in body for field in fields), (fields, body)
        return dict(body)


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def api() -> Api:
    return Api()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the whole session: tests on it use fresh, uniquely named users."""
    factory = ServerFactory(tmp_path_factory.mktemp("chatcore-shared"))
    try:
        yield factory()
    finally:
        factory.close()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server over PostgreSQL (CHATCORE_DATABASE_URL: a database of this session's
    own on the machine's server, dropped after), for the tests that run on it."""
    with scratch_database("serve") as url:
        factory = ServerFactory(tmp_path_factory.mktemp("chatcore-postgres"))
        try:
            yield factory(url)
        finally:
            factory.close()


@pytest.fixture
def pg_database() -> Iterator[str]:
    """The URL of an empty PostgreSQL database of the test's own, dropped after it."""
    with scratch_database("it") as url:
        yield url


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """Starts extra servers, `server_factory(db=None, **env)`; all are stopped after."""
    factory = ServerFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(params=["sqlite", "postgres"])
def shared_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The settings that give several servers one storage: a SQLite file (processes of
    one host), or a PostgreSQL database of the test's own (servers on several hosts)."""
    if request.param == "sqlite":
        yield {"CHATCORE_DATABASE": str(tmp_path / "shared.sqlite3")}
        return
    with scratch_database("cluster") as url:
        yield {"CHATCORE_DATABASE_URL": url}


@pytest.fixture
def cluster_factory(server_factory: ServerFactory, shared_storage: dict[str, str]) -> Any:
    """`cluster_factory(redis_url=<the machine's Redis>, **env)`: a :class:`Cluster` on
    the shared storage; its servers are stopped after the test with the others."""

    def make(redis_url: str = SHARED_REDIS_URL, **env: str) -> Cluster:
        return Cluster(server_factory, shared_storage, redis_url, env)

    return make


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


def _make_admin(server: Server, client: httpx.Client, api: Api) -> dict[str, Any]:
    username = api.unique("admin")
    result = run_cli(
        "createsuperuser",
        "--username",
        username,
        "--email",
        f"{username}@example.com",
        "--no-input",
        db=server.db,
        cwd=server.workdir,
        **{**server.settings, "CHATCORE_SUPERUSER_PASSWORD": api.PASSWORD},
    )
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    response = api.login(client, username)
    assert response.status_code == 200, (response.status_code, response.text)
    data = response.json()
    return {"user": data, "token": data["token"], "username": username}


@pytest.fixture(scope="session")
def make_admin() -> Any:
    """`make_admin(server, client, api)`: `createsuperuser` on that server's database, then
    a login; returns {"user", "token", "username"}."""
    return _make_admin


@pytest.fixture(scope="session")
def admin(server: Server, api: Api) -> dict[str, Any]:
    """An admin on the shared server, made once (tests must not change or revoke it)."""
    with server.client() as http:
        return _make_admin(server, http, api)


@pytest.fixture(scope="session")
def cli() -> Any:
    """`cli(*args, db=path, **env)` runs `python -m entrypoints.cli` to completion."""
    return run_cli


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium for a module's browser tests (skipped where it is missing)."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def watched(browser: Browser, server: Server) -> Iterator[Watched]:
    """A fresh browser context and page that may reach only the shared server."""
    watched = Watched(browser, server.url)
    try:
        yield watched
    finally:
        watched.close()
