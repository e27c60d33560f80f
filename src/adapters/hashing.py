"""Argon2id password hashing over argon2-cffi, off the event loop in a bounded pool.

Parameters: argon2-cffi's RFC 9106 "low memory" profile (time_cost=3, memory_cost=64 MiB,
parallelism=4), about 125 ms wall and 190 ms of CPU a hash on this 2-core machine: slow
enough to make an offline guess at a leaked hash expensive, cheap enough for interactive
logins (about 11 a second per 2 cores). The pool
is bounded so that a burst of logins queues instead of taking every core and all memory
(each hash holds memory_cost while it runs), and its threads run at a lower priority so
that other requests keep being served promptly during a login storm.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Callable
from typing import TypeVar

import argon2
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

R = TypeVar("R")

PRODUCTION = RFC_9106_LOW_MEMORY
# Real Argon2id at the smallest cost the library allows, for test suites only: it makes
# thousands of registrations affordable while exercising the same code path.
FAST_INSECURE = argon2.Parameters(
    type=argon2.Type.ID,
    version=19,
    salt_len=16,
    hash_len=16,
    time_cost=1,
    memory_cost=8,
    parallelism=1,
)


HASHING_NICENESS = 10


def _yield_the_cpu() -> None:
    """Lower this hashing thread's priority (Linux schedules threads one by one): a
    login storm then takes the cores only when the event loop does not need them, so
    other requests keep their latency while logins keep their rate."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


class Argon2Hasher:
    def __init__(self, parameters: argon2.Parameters = PRODUCTION, max_workers: int = 2) -> None:
        self._hasher = argon2.PasswordHasher.from_parameters(parameters)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="argon2", initializer=_yield_the_cpu
        )

    async def hash(self, password: str) -> str:
        return await self._run(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await self._run(self._verify, password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError, UnicodeEncodeError):
            return False

    async def _run(self, fn: Callable[..., R], *args: str) -> R:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
