"""The seam between the adapters and the operator's metrics: :class:`Metrics`, the few
calls adapters make when something worth counting happens, and :data:`NO_METRICS`,
which counts nothing (the default, and what runs when ``CHATCORE_METRICS`` is off).

Adapters take a ``Metrics`` as a constructor argument, from the one object that
:func:`entrypoints.bootstrap.adapters_from` builds per app; none of them knows about
Prometheus (:mod:`adapters.prometheus` does) or reaches for a process-global registry.
Every call is about how many or how long, never who or what: no user, chat, address or
credential is ever passed, so no label can hold one and no label set can grow with use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from chatcore.events import Event
from chatcore.model import Revocation
from chatcore.ports import (
    ConnectionListener,
    Listener,
    Notifier,
    RevocationListener,
    Unsubscribe,
)


class Metrics(Protocol):
    """What adapters report. Each call returns at once and never raises. Unless said
    otherwise, calls come from the event loop's thread."""

    def socket_opened(self) -> None:
        """A WebSocket joined the hub (``socket_closed`` when it leaves)."""
        ...

    def socket_closed(self) -> None: ...

    def event_published(self, event: Event) -> None:
        """This process handed a stored event to the notifier."""
        ...

    def event_delivered(self, arrived: float | None) -> None:
        """An event's frame was handed to a socket. ``arrived`` is the
        ``time.monotonic()`` at which its notification reached this process's hub (for
        the in-process notifier: its publication, right after the commit); None for an
        event read back from storage (a gap filled, a resume), whose age says nothing
        about delivery. Called once per frame: the hottest path there is."""
        ...

    def slow_consumer_closed(self) -> None:
        """A socket was closed with 1013 because its queue passed its byte limit."""
        ...

    def storage_batch(self, size: int, seconds: float) -> None:
        """The storage committed (or failed) one transaction of ``size`` writes, taking
        ``seconds`` from its start to its end (the fsync included). Called from the
        storage's writer thread; an adapter that does not batch reports each write as a
        batch of 1."""
        ...

    def notifier_reconnected(self) -> None:
        """A cross-process notifier re-established its connection to the broker after
        losing it (the Redis adapter calls it once per successful reconnection, after
        resubscribing). An in-process notifier never does."""
        ...

    def login_failed(self, throttled: bool) -> None:
        """:class:`chatcore.ports.Telemetry`: a wrong password, or a guess refused by the
        throttle."""
        ...


class NoMetrics:
    """Counts nothing, at the cost of a call."""

    def socket_opened(self) -> None:
        return None

    def socket_closed(self) -> None:
        return None

    def event_published(self, event: Event) -> None:
        return None

    def event_delivered(self, arrived: float | None) -> None:
        return None

    def slow_consumer_closed(self) -> None:
        return None

    def storage_batch(self, size: int, seconds: float) -> None:
        return None

    def notifier_reconnected(self) -> None:
        return None

    def login_failed(self, throttled: bool) -> None:
        return None


NO_METRICS: Metrics = NoMetrics()


class CountingNotifier:
    """A notifier that reports each event published through it, then hands everything
    to ``inner``: counted once here for every notifier adapter there is."""

    def __init__(self, inner: Notifier, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def publish(self, event: Event) -> None:
        await self._inner.publish(event)
        self._metrics.event_published(event)

    async def subscribe(self, chat_id: int, listener: Listener) -> Unsubscribe:
        return await self._inner.subscribe(chat_id, listener)

    async def revoke(self, revocation: Revocation) -> None:
        await self._inner.revoke(revocation)

    def on_revoke(self, listener: RevocationListener) -> Unsubscribe:
        return self._inner.on_revoke(listener)

    @property
    def connected(self) -> bool:
        return self._inner.connected

    def on_connection(self, listener: ConnectionListener) -> Unsubscribe:
        return self._inner.on_connection(listener)

    async def ping(self) -> None:
        await self._inner.ping()


if TYPE_CHECKING:
    from chatcore.ports import Telemetry

    def _implements_the_ports(
        none: NoMetrics, counting: CountingNotifier
    ) -> tuple[Metrics, Telemetry, Notifier]:
        return none, none, counting  # mypy checks them against the Protocols here
