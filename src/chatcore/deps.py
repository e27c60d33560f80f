"""What the use cases are built from: the ports and the tunable policy."""

from __future__ import annotations

from datetime import timedelta

import attrs

from .ports import Clock, Notifier, PasswordHasher, Storage, TokenGenerator


@attrs.frozen
class Policy:
    """Limits a deployment may tune; the defaults are the contract's."""

    token_ttl: timedelta = timedelta(days=30)
    max_participants: int = 1000
    login_failures_per_account: int = 100
    login_failures_per_address: int = 300
    login_failure_window: timedelta = timedelta(hours=1)


@attrs.frozen
class Deps:
    """The ports the use cases run on, handed over by a composition root."""

    storage: Storage
    notifier: Notifier
    hasher: PasswordHasher
    clock: Clock
    tokens: TokenGenerator
    policy: Policy = Policy()
