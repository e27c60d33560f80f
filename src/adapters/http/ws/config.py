"""The WebSocket's settings, and their defaults: the deployment settings take theirs
from here."""

from __future__ import annotations

import attrs


@attrs.frozen
class RealtimeConfig:
    max_frame_bytes: int = 64 * 1024
    queue_bytes: int = 1024 * 1024
    sends_per_second: float = 30.0
    send_burst: int = 60
    allowed_origins: tuple[str, ...] = ()
    recheck_seconds: float = 30.0
    # How often a chat's events are read from storage while the notifier is away.
    poll_seconds: float = 1.0
