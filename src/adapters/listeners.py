"""What every notifier does with its listeners: keep them by topic (a chat id; one topic
for revocations), call each in turn, and keep one that raises from costing the others the
event."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from chatcore.ports import Unsubscribe

log = logging.getLogger("chatcore.notifier")

K = TypeVar("K", bound=Hashable)
E = TypeVar("E")


class Listeners(Generic[K, E]):
    """Listeners by topic, in the order they were added. A topic with none left is
    forgotten (chats come and go: no empty entries are kept)."""

    def __init__(self) -> None:
        self._by_topic: dict[K, dict[int, Callable[[E], None]]] = {}
        self._keys = itertools.count(1)

    def add(self, topic: K, listener: Callable[[E], None]) -> Unsubscribe:
        """Start calling ``listener`` for the topic; the function returned stops it (and
        is harmless to call twice)."""
        listeners = self._by_topic.setdefault(topic, {})
        key = next(self._keys)
        listeners[key] = listener

        def remove() -> None:
            listeners.pop(key, None)
            if not listeners and self._by_topic.get(topic) is listeners:
                del self._by_topic[topic]

        return remove

    def has(self, topic: K) -> bool:
        return topic in self._by_topic

    def topics(self) -> list[K]:
        return list(self._by_topic)

    def call(self, topic: K, item: E) -> None:
        """Call every listener of the topic with ``item``; one that raises is logged and
        the others are called all the same."""
        for listener in list(self._by_topic.get(topic, {}).values()):
            try:
                listener(item)
            except Exception:  # one broken listener must not starve the others
                log.exception("listener failed on %r", item)
