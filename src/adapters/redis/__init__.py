"""Redis adapters: the notifier of a deployment of several processes."""

from .notifier import DEFAULT_PREFIX, NotifierCounts, RedisNotifier

__all__ = ["DEFAULT_PREFIX", "NotifierCounts", "RedisNotifier"]
