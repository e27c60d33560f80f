"""The one adapter factory (issue 8, item 9): what each setting builds, and the lifecycle
that opens and closes it, for every entrypoint alike."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.sqlite import Closed, SchemaOutOfDate
from chatcore.accounts import Registration
from entrypoints.bootstrap import adapters_from
from entrypoints.settings import Settings

PASSWORD = "Quartz-lantern-7781"


async def _register(settings: Settings, username: str) -> int:
    """Register ``username`` through adapters opened for the job; the users stored."""
    async with adapters_from(settings) as adapters:
        services = adapters.services(settings.policy())
        await services.accounts.register(Registration(username, PASSWORD, PASSWORD))
        return (await services.deps.storage.counts()).users


def test_memory_storage_has_no_schema_and_keeps_nothing(tmp_path: Path) -> None:
    settings = Settings(storage="memory", database=str(tmp_path / "unused.db"))
    assert adapters_from(settings).migrate is None
    assert asyncio.run(_register(settings, "ann")) == 1
    assert asyncio.run(_register(settings, "ann")) == 1  # a new, empty store each time
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("migrate", [True, False])
def test_sqlite_storage_opens_and_closes_with_the_lifecycle(tmp_path: Path, migrate: bool) -> None:
    settings = Settings(database=str(tmp_path / "chat.db"), migrate=migrate)
    if not migrate:
        with pytest.raises(SchemaOutOfDate):
            asyncio.run(_register(settings, "bob"))
        applied = adapters_from(settings).migrate
        assert applied is not None
        assert applied()  # the refused open applied nothing
    assert asyncio.run(_register(settings, "bob")) == 1
    assert asyncio.run(_register(settings, "cy")) == 2  # the same file, reopened

    adapters = adapters_from(settings)

    async def use_after_close() -> None:
        async with adapters:
            pass
        await adapters.storage.counts()

    with pytest.raises(Closed):
        asyncio.run(use_after_close())
