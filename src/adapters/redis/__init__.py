"""Redis adapters: the notifier of a deployment of several processes."""

from .notifier import NotifierCounts, RedisNotifier

__all__ = ["NotifierCounts", "RedisNotifier"]
