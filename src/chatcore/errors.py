"""The domain's exceptions. Adapters map each class to their own protocol (HTTP status,
WebSocket close code or error frame); the domain never names one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

NON_FIELD = "non_field_errors"


class DomainError(Exception):
    """Base of every error the use cases raise on purpose."""

    default_message = "The request could not be completed."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class ValidationFailed(DomainError):
    """Input broke one or more rules; ``fields`` maps each field to its messages."""

    default_message = "Invalid input."

    def __init__(self, fields: Mapping[str, Sequence[str]]) -> None:
        self.fields: dict[str, list[str]] = {name: list(msgs) for name, msgs in fields.items()}
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in self.fields.items()))

    @classmethod
    def on(cls, field: str, message: str) -> ValidationFailed:
        return cls({field: [message]})


class NotFound(DomainError):
    """No such thing, or the caller may not see it: the two are never told apart."""

    default_message = "Not found."


class AuthenticationFailed(DomainError):
    """Missing, wrong, expired or revoked credentials."""

    default_message = "Invalid credentials."


class Forbidden(DomainError):
    """The caller is known and may see the thing, but not do this to it."""

    default_message = "You do not have permission to perform this action."


class Conflict(DomainError):
    """The change clashes with the stored state (a taken username, say)."""

    default_message = "Conflict with the current state."


class Throttled(DomainError):
    """Too many attempts; ``retry_after`` seconds until the next may succeed."""

    default_message = "Request was throttled."

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class Unavailable(DomainError):
    """The storage cannot be reached for now (down, restarting, out of connections): no
    fault of the request, which may be tried again in ``retry_after`` seconds. Whether
    a change that met it was stored is unknown; a retry with the same ``client_id``
    stores a message once."""

    default_message = "The service is temporarily unavailable; try again shortly."

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)
