"""The one place the use cases are wired to adapters. The app factory, the command line,
tests and library users all call :func:`bootstrap`, passing the adapters they want in
place of the defaults."""

from __future__ import annotations

from adapters.clock import SystemClock
from adapters.hashing import Argon2Hasher
from adapters.memory import InMemoryStorage, LocalNotifier
from adapters.tokens import SecretTokens
from chatcore.deps import Deps, Policy
from chatcore.ports import Clock, Notifier, PasswordHasher, Storage, TokenGenerator
from chatcore.services import Services


def bootstrap(
    storage: Storage | None = None,
    notifier: Notifier | None = None,
    hasher: PasswordHasher | None = None,
    clock: Clock | None = None,
    tokens: TokenGenerator | None = None,
    policy: Policy | None = None,
) -> Services:
    deps = Deps(
        storage=storage or InMemoryStorage(),
        notifier=notifier or LocalNotifier(),
        hasher=hasher or Argon2Hasher(),
        clock=clock or SystemClock(),
        tokens=tokens or SecretTokens(),
        policy=policy or Policy(),
    )
    return Services.build(deps)
