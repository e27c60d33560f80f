""":class:`PrometheusMetrics`: the :class:`adapters.metrics.Metrics` that ``GET /metrics``
exposes, in the Prometheus text format, with prometheus-client.

Each instance has a ``CollectorRegistry`` of its own (never prometheus-client's global
``REGISTRY``, a process global): two apps in one process, as the tests build, count
apart. Labels take only fixed values (an event kind, a failure reason).

The two figures counted once per delivered frame, the hottest path of the server, are
plain numbers kept on the event loop's thread and read at scrape time (a scrape runs on
that thread too), because prometheus-client's metrics take a lock on every update: about
a microsecond per frame, which the fan-out would show. The others change at most once
per request, socket or storage batch (the latter from the writer thread), and use
prometheus-client's own thread-safe metrics.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from chatcore.events import Event, EventKind

# The classic text format (0.0.4): every Prometheus version reads it.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)  # engine.MAX_BATCH is 512
BATCH_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_LAG_BOUNDS = (*(repr(float(bound)) for bound in LAG_BUCKETS), "+Inf")  # as "le" labels
LOGIN_FAILURE_REASONS = ("bad_credentials", "throttled")


class _Deliveries:
    """Frames delivered and their lag, counted without a lock on the loop's thread and
    collected by the registry at scrape time."""

    def __init__(self) -> None:
        self.count = 0
        self.lag_counts = [0] * (len(LAG_BUCKETS) + 1)  # the last: above every bound
        self.lag_sum = 0.0

    def observe(self, arrived: float | None) -> None:
        self.count += 1
        if arrived is not None:
            lag = time.monotonic() - arrived
            self.lag_counts[bisect.bisect_left(LAG_BUCKETS, lag)] += 1
            self.lag_sum += lag

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "chatcore_events_delivered",
            "Event frames handed to WebSockets (live or read back from storage).",
            value=self.count,
        )
        cumulative, buckets = 0, []
        for bound, count in zip(_LAG_BOUNDS, self.lag_counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily(
            "chatcore_delivery_lag_seconds",
            "From a live event's notification reaching this process (with the in-process "
            "notifier: its publication, after the commit) to its frame being handed to "
            "the socket.",
            buckets=buckets,
            sum_value=self.lag_sum,
        )


class PrometheusMetrics:
    """The metrics of one app, with their registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._sockets = Gauge(
            "chatcore_websockets_open", "WebSockets open on this process.", registry=r
        )
        self._published = Counter(
            "chatcore_events_published",
            "Stored events this process handed to the notifier, by kind.",
            ["kind"],
            registry=r,
        )
        self._published_by_kind = {kind: self._published.labels(kind.value) for kind in EventKind}
        self._deliveries = _Deliveries()
        r.register(self._deliveries)
        self._slow = Counter(
            "chatcore_slow_consumer_closes",
            "WebSockets closed with 1013 because they read too slowly (queue full).",
            registry=r,
        )
        self._batch_size = Histogram(
            "chatcore_storage_write_batch_size",
            "Writes committed together in one storage transaction.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self._batch_seconds = Histogram(
            "chatcore_storage_write_batch_seconds",
            "Time one storage write transaction took, from its start to its commit.",
            buckets=BATCH_SECONDS_BUCKETS,
            registry=r,
        )
        failures = Counter(
            "chatcore_login_failures",
            "Password guesses that failed: a wrong username or password "
            '(reason="bad_credentials") or refused by the login throttle ("throttled").',
            ["reason"],
            registry=r,
        )
        self._login_failures = {reason: failures.labels(reason) for reason in LOGIN_FAILURE_REASONS}
        self._reconnects = Counter(
            "chatcore_notifier_reconnects",
            "Times the notifier re-established its connection to its broker.",
            registry=r,
        )
        ProcessCollector(registry=r)  # CPU, memory, open files of this process

    def exposition(self) -> bytes:
        """The registry's current figures, in the text format of :data:`CONTENT_TYPE`."""
        return generate_latest(self.registry)

    # adapters.metrics.Metrics

    def socket_opened(self) -> None:
        self._sockets.inc()

    def socket_closed(self) -> None:
        self._sockets.dec()

    def event_published(self, event: Event) -> None:
        self._published_by_kind[event.kind].inc()

    def event_delivered(self, arrived: float | None) -> None:
        self._deliveries.observe(arrived)

    def slow_consumer_closed(self) -> None:
        self._slow.inc()

    def storage_batch(self, size: int, seconds: float) -> None:
        self._batch_size.observe(size)
        self._batch_seconds.observe(seconds)

    def notifier_reconnected(self) -> None:
        self._reconnects.inc()

    def login_failed(self, throttled: bool) -> None:
        self._login_failures["throttled" if throttled else "bad_credentials"].inc()


if TYPE_CHECKING:
    from chatcore.ports import Telemetry

    from .metrics import Metrics

    def _implements_the_ports(metrics: PrometheusMetrics) -> tuple[Metrics, Telemetry]:
        return metrics, metrics  # mypy checks it against the Protocols here
