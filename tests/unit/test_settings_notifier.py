"""CHATCORE_REDIS_URL chooses the notifier in the one factory: without it the in-process
one; with it the Redis one, under CHATCORE_REDIS_PREFIX, opened and closed with the other
adapters. A URL that cannot be one is refused, naming the variable, never echoing it."""

from __future__ import annotations

import asyncio

import pytest

from adapters.memory import LocalNotifier
from adapters.redis import RedisNotifier
from chatcore.model import Revocation
from entrypoints.bootstrap import adapters_from
from entrypoints.settings import Settings, SettingsError
from private_redis import PrivateRedis, fresh_prefix


def test_without_a_redis_url_the_notifier_is_the_in_process_one() -> None:
    assert Settings.from_env({}).redis_url == ""
    assert isinstance(adapters_from(Settings(storage="memory")).notifier, LocalNotifier)


@pytest.mark.parametrize("url", ["http://cache:6379", "cache:6379", "redis//x", "postgresql://x"])
def test_a_redis_url_of_another_kind_is_refused_without_being_shown(url: str) -> None:
    with pytest.raises(SettingsError, match="CHATCORE_REDIS_URL") as refused:
        Settings.from_env({"CHATCORE_REDIS_URL": url.replace("//", "//:hunter2@", 1)})
    assert "hunter2" not in str(refused.value)


async def test_with_a_redis_url_the_adapters_open_the_redis_notifier(
    private_redis: PrivateRedis,
) -> None:
    prefix = fresh_prefix()
    env = {"CHATCORE_REDIS_URL": private_redis.url, "CHATCORE_REDIS_PREFIX": prefix}
    settings = Settings.from_env({**env, "CHATCORE_STORAGE": "memory"})
    assert settings.redis_prefix == prefix
    async with adapters_from(settings) as adapters, adapters_from(settings) as other:
        assert isinstance(adapters.notifier, RedisNotifier)
        assert adapters.notifier.connected
        heard: list[Revocation] = []
        other.notifier.on_revoke(heard.append)
        await adapters.services().deps.notifier.revoke(Revocation(1))
        async with asyncio.timeout(10):
            while not heard:  # noqa: ASYNC110 - another "process" hears it
                await asyncio.sleep(0.01)
    assert not adapters.notifier.connected  # closed with the adapters
