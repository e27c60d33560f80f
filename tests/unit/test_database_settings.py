"""Which database the settings name (API.md, "Scale-out"): CHATCORE_DATABASE_URL, a file
path, ``sqlite:///path`` or ``postgresql://...``; its v1 spelling CHATCORE_DATABASE; and
what the one adapter factory builds for each."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.postgres import PostgresStorage
from adapters.sqlite import SqliteStorage
from chatcore.accounts import Registration
from entrypoints.bootstrap import CannotBackUp, adapters_from
from entrypoints.settings import Settings, SettingsError
from pg_support import scratch_database

PG = "postgresql://chat:s3cret-pw@db.example:5433/chatcore"


@pytest.mark.parametrize(
    ("env", "path", "url"),
    [
        ({}, "chatcore.db", None),
        ({"CHATCORE_DATABASE": "v1.db"}, "v1.db", None),
        ({"CHATCORE_DATABASE_URL": "chat.db"}, "chat.db", None),
        ({"CHATCORE_DATABASE_URL": "sqlite:///chat.db"}, "chat.db", None),
        ({"CHATCORE_DATABASE_URL": "sqlite:////srv/chat.db"}, "/srv/chat.db", None),
        ({"CHATCORE_DATABASE_URL": PG}, PG, PG),
        ({"CHATCORE_DATABASE_URL": "postgres://h/db"}, "postgres://h/db", "postgres://h/db"),
        # both spellings naming one database are fine
        (
            {"CHATCORE_DATABASE_URL": "sqlite:///same.db", "CHATCORE_DATABASE": "same.db"},
            "same.db",
            None,
        ),
    ],
)
def test_the_database_setting(env: dict[str, str], path: str, url: str | None) -> None:
    settings = Settings.from_env(env)
    assert settings.postgres_url == url
    if url is None:
        assert settings.sqlite_path == path


def test_both_spellings_naming_different_databases_are_refused() -> None:
    with pytest.raises(SettingsError, match="CHATCORE_DATABASE_URL and CHATCORE_DATABASE"):
        Settings.from_env({"CHATCORE_DATABASE_URL": PG, "CHATCORE_DATABASE": "chat.db"})


def test_the_printed_database_has_no_password() -> None:
    label = Settings.from_env({"CHATCORE_DATABASE_URL": PG}).database_label
    assert label == "postgresql://chat@db.example:5433/chatcore"
    assert Settings(database="sqlite:///a.db").database_label == "a.db"


def test_the_factory_builds_the_storage_the_url_names(tmp_path: Path) -> None:
    sqlite = adapters_from(Settings(database=f"sqlite:///{tmp_path / 'a.db'}"))
    assert isinstance(sqlite.storage, SqliteStorage)
    assert Path(sqlite.storage.path) == tmp_path / "a.db"
    pg = adapters_from(Settings(database=PG))  # builds, opens nothing
    assert isinstance(pg.storage, PostgresStorage)
    assert pg.migrate is not None
    assert pg.migrations is not None
    with pytest.raises(CannotBackUp, match="pg_dump"):
        pg.backup(tmp_path / "copy", False)


def test_postgres_storage_opens_migrates_and_closes_with_the_lifecycle() -> None:
    async def register(settings: Settings, username: str) -> int:
        async with adapters_from(settings) as adapters:
            services = adapters.services(settings.policy())
            password = "Quartz-lantern-7781"
            await services.accounts.register(Registration(username, password, password))
            return (await services.deps.storage.counts()).users

    with scratch_database("factory") as url:
        settings = Settings.from_env({"CHATCORE_DATABASE_URL": url})
        assert asyncio.run(register(settings, "ann")) == 1
        assert asyncio.run(register(settings, "ben")) == 2  # the same database, reopened
        migrations = adapters_from(settings).migrations
        assert migrations is not None
        assert all(applied for _, _, applied in migrations())
