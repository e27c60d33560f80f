"""One burst of concurrent hits on one key under a bound, shared by the SQLite attempt
tests and the process they start."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from storage_support import START

from chatcore.ports import AttemptStore, Tally
from chatcore.throttle import bound

KEY = "login-account:shared"
WINDOW = timedelta(hours=1)


async def burst(store: AttemptStore, hits: int, limit: int) -> int:
    """Fire ``hits`` hits of KEY at once; how many the bound of ``limit`` admitted."""

    def rule(tallies: Sequence[Tally]) -> float | None:
        return bound(tallies[0], limit, WINDOW, START)

    outcomes = await asyncio.gather(*(store.hit([KEY], START, WINDOW, rule) for _ in range(hits)))
    return sum(wait is None for wait in outcomes)
