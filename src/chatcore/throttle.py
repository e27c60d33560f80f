"""Throttling rules, as pure functions of what an :class:`~chatcore.ports.AttemptStore`
has counted. The store runs a rule inside the one atomic step that also counts the
attempt it admits, so concurrent callers (in any number of processes sharing the store)
are decided one after another and cannot all slip under a limit together."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import attrs

from .errors import Throttled
from .ports import AttemptStore, Tally

_DOUBLINGS_BEFORE_ANY_CAP = 40  # 2**40 seconds outlasts every sensible cap


def wait_until(moment: datetime, now: datetime) -> float | None:
    """Seconds from ``now`` to ``moment``, or None when it has passed."""
    seconds = (moment - now).total_seconds()
    return seconds if seconds > 0 else None


def bound(tally: Tally, limit: int, window: timedelta, now: datetime) -> float | None:
    """At most ``limit`` attempts in any ``window``: past it, wait until the oldest one
    leaves the window. (When more than ``limit`` are counted, which another rule may
    allow, this is the earliest moment the count drops, a lower bound on the wait.)"""
    if tally.count < limit or tally.oldest is None:
        return None
    return wait_until(tally.oldest + window, now)


@attrs.frozen
class Backoff:
    """``free`` attempts at once, then each further one only ``first`` after the
    previous, doubling with each attempt counted past ``free``, up to ``longest``."""

    free: int
    first: timedelta
    longest: timedelta

    def delay(self, count: int) -> timedelta | None:
        """The pause owed after the newest of ``count`` attempts (None: no pause)."""
        if count < self.free:
            return None
        doublings = count - self.free
        if doublings >= _DOUBLINGS_BEFORE_ANY_CAP:
            return self.longest
        return min(self.longest, self.first * (1 << doublings))

    def wait(self, tally: Tally, now: datetime) -> float | None:
        delay = self.delay(tally.count)
        if delay is None or tally.newest is None:
            return None
        return wait_until(tally.newest + delay, now)


def longest(*waits: float | None) -> float | None:
    """The longest of the waits that apply, or None when none does."""
    return max((w for w in waits if w is not None), default=None)


async def take(store: AttemptStore, key: str, limit: int, window: timedelta, now: datetime) -> None:
    """Count one attempt of ``key`` at ``now``, or raise :class:`Throttled` when
    ``limit`` are already counted in the window (the refused one is not counted)."""

    def rule(tallies: Sequence[Tally]) -> float | None:
        return bound(tallies[0], limit, window, now)

    wait = await store.hit([key], now, window, rule)
    if wait is not None:
        raise Throttled(wait)
