"""What the use cases are built from: the ports and the tunable policy."""

from __future__ import annotations

from datetime import timedelta

import attrs

from .ports import Clock, Notifier, PasswordHasher, Storage, Telemetry, TokenGenerator


@attrs.frozen
class Policy:
    """Limits a deployment may tune; the defaults are the contract's."""

    token_ttl: timedelta = timedelta(days=30)
    max_participants: int = 1000
    # Failed logins (see Accounts.login for how the three combine). OWASP ASVS v4.0.3
    # V2.2.1 asks for at most 100 failed attempts an hour on one account.
    login_failure_window: timedelta = timedelta(hours=1)
    # one account from one address: a few typos free, then a pause that doubles
    login_free_failures: int = 5
    login_backoff: timedelta = timedelta(seconds=1)
    login_backoff_max: timedelta = timedelta(minutes=15)
    # one account from every address together, and one address over every account
    login_failures_per_account: int = 100
    login_failures_per_address: int = 300
    # creation, counted over a sliding hour: sign-ups per address, chats per user
    creation_window: timedelta = timedelta(hours=1)
    registrations_per_address: int = 20
    chats_per_user: int = 100


class NoTelemetry:
    """Telemetry that counts nothing: the default, for library use and tests."""

    def login_failed(self, throttled: bool) -> None:
        return None


@attrs.frozen
class Deps:
    """The ports the use cases run on, handed over by a composition root."""

    storage: Storage
    notifier: Notifier
    hasher: PasswordHasher
    clock: Clock
    tokens: TokenGenerator
    policy: Policy = Policy()
    telemetry: Telemetry = attrs.field(factory=NoTelemetry)
