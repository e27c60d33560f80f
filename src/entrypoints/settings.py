"""Deployment settings, read from environment variables with safe defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

import attrs

from adapters.http.ops_config import OpsConfig
from adapters.http.ws.config import RealtimeConfig
from chatcore.deps import Policy

from .connections import ConnectionLimits

PREFIX = "CHATCORE_"
_REALTIME = RealtimeConfig()
REDIS_SCHEMES = (
    "redis",
    "rediss",
    "unix",
)  # the WebSocket settings' defaults are the adapter's own


class SettingsError(ValueError):
    """An environment variable holds something unusable; the message names it."""


POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_SCHEME = "sqlite:///"


@attrs.frozen
class Settings:
    # Where the data lives: a SQLite file path, ``sqlite:///path``, or a PostgreSQL URL
    # (``postgresql://...``). Read from CHATCORE_DATABASE_URL, or from its v1 spelling
    # CHATCORE_DATABASE (a file path); ``database_url`` only carries the first to
    # from_env, which settles the two into ``database``.
    database: str = "chatcore.db"
    database_url: str = ""
    storage: Literal["sqlite", "memory"] = "sqlite"
    # Real time across processes: redis://[:password@]host:port/db (rediss://, unix://
    # too); empty, it stays in the process. Channels are named under the prefix, so that
    # several deployments (or test runs) can share one Redis.
    redis_url: str = ""
    redis_prefix: str = "chatcore:"
    migrate: bool = True
    token_ttl: int = 30 * 24 * 3600
    login_failure_window: int = 3600
    login_free_failures: int = 5
    login_backoff_seconds: int = 1
    login_backoff_max_seconds: int = 15 * 60
    login_failures_per_account: int = 100
    login_failures_per_address: int = 300
    registrations_per_address: int = 20
    chats_per_user: int = 100
    max_body_bytes: int = 256 * 1024
    secure_cookies: bool = False
    allowed_origins: tuple[str, ...] = _REALTIME.allowed_origins
    # Whole numbers here (what _parse reads from the environment), so the int() of each.
    ws_sends_per_second: int = int(_REALTIME.sends_per_second)
    ws_send_burst: int = _REALTIME.send_burst
    ws_queue_bytes: int = _REALTIME.queue_bytes
    ws_recheck_seconds: int = int(_REALTIME.recheck_seconds)
    # Connection limits, enforced by the server's HTTP protocol (entrypoints.connections).
    header_timeout: int = 10  # seconds to receive a request's head (line and headers)
    body_timeout: int = 30  # seconds to receive a request's whole body once its head is in
    max_header_bytes: int = 16 * 1024  # request line and headers together
    max_headers: int = 100
    max_connections: int = 1000  # lowered to fit the open-file limit (RLIMIT_NOFILE)
    # Operations endpoints (adapters.http.ops): probes for a load balancer or an
    # orchestrator, on by default; metrics, which tell anyone who can read them how busy
    # the server is, off until asked for (and then served to private addresses only).
    healthz: bool = True
    readyz: bool = True
    metrics: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Every field from ``CHATCORE_<FIELD>``; unset ones keep their defaults."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for field in attrs.fields(cls):
            raw = env.get(PREFIX + field.name.upper())
            if raw is not None:
                values[field.name] = _parse(field.name, raw, field.default)
        url = str(values.pop("database_url", "")).strip()
        if url:
            given = values.get("database")
            if given is not None and _location(str(given)) != _location(url):
                raise SettingsError(
                    f"{PREFIX}DATABASE_URL and {PREFIX}DATABASE name different databases: "
                    f"set only {PREFIX}DATABASE_URL"
                )
            values["database"] = url
        settings = cls(**values)  # type: ignore[arg-type]
        if settings.storage not in ("sqlite", "memory"):
            raise SettingsError(
                f"{PREFIX}STORAGE must be sqlite or memory, not {settings.storage!r}"
            )
        scheme = settings.redis_url.partition("://")[0]
        if settings.redis_url and (scheme not in REDIS_SCHEMES or "://" not in settings.redis_url):
            # The value itself is not shown: it may hold a password.
            raise SettingsError(f"{PREFIX}REDIS_URL must start with redis://, rediss:// or unix://")
        return settings

    @property
    def postgres_url(self) -> str | None:
        """The PostgreSQL URL when the database is one, else None (SQLite)."""
        return self.database if self.database.startswith(POSTGRES_SCHEMES) else None

    @property
    def sqlite_path(self) -> str:
        """The SQLite file (``sqlite:///path`` or a plain path)."""
        return _location(self.database)

    @property
    def database_label(self) -> str:
        """The database as it may be printed or logged: a URL without its password."""
        if self.postgres_url is None:
            return self.sqlite_path
        parts = urlsplit(self.database)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        user = f"{parts.username}@" if parts.username else ""
        return f"{parts.scheme}://{user}{host}{port}{parts.path}"

    def realtime(self) -> RealtimeConfig:
        return RealtimeConfig(
            queue_bytes=self.ws_queue_bytes,
            sends_per_second=self.ws_sends_per_second,
            send_burst=self.ws_send_burst,
            allowed_origins=self.allowed_origins,
            recheck_seconds=self.ws_recheck_seconds,
        )

    def connection_limits(self) -> ConnectionLimits:
        return ConnectionLimits(
            header_timeout=self.header_timeout,
            body_timeout=self.body_timeout,
            max_header_bytes=self.max_header_bytes,
            max_headers=self.max_headers,
            max_connections=self.max_connections,
        )

    def operations(self) -> OpsConfig:
        return OpsConfig(healthz=self.healthz, readyz=self.readyz, metrics=self.metrics)

    def policy(self) -> Policy:
        return Policy(
            token_ttl=timedelta(seconds=self.token_ttl),
            login_failure_window=timedelta(seconds=self.login_failure_window),
            login_free_failures=self.login_free_failures,
            login_backoff=timedelta(seconds=self.login_backoff_seconds),
            login_backoff_max=timedelta(seconds=self.login_backoff_max_seconds),
            login_failures_per_account=self.login_failures_per_account,
            login_failures_per_address=self.login_failures_per_address,
            registrations_per_address=self.registrations_per_address,
            chats_per_user=self.chats_per_user,
        )


def _location(database: str) -> str:
    """What a database setting points at: a PostgreSQL URL as given, a SQLite file as
    its path (``sqlite:///chat.db`` and ``chat.db`` are one file)."""
    if database.startswith(SQLITE_SCHEME):
        return database[len(SQLITE_SCHEME) :]
    return database


def _parse(name: str, raw: str, default: object) -> object:
    key = PREFIX + name.upper()
    if isinstance(default, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off", ""):
            return False
        raise SettingsError(f"{key} must be true or false, not {raw!r}")
    if isinstance(default, int):
        try:
            number = int(raw)
        except ValueError:
            raise SettingsError(f"{key} must be a whole number, not {raw!r}") from None
        if number < 1:
            raise SettingsError(f"{key} must be at least 1, not {number}")
        return number
    if isinstance(default, tuple):
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    return raw
