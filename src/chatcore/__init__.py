"""chatcore: the domain of a multi-person chat backend, usable as a library.

Wire adapters with :func:`entrypoints.bootstrap.bootstrap` (or build :class:`Deps`
yourself) and call the use cases on :class:`Services`.
"""

from .accounts import AccountChange, Accounts, Registration
from .admin import AccountEdit, Admin
from .chats import ChatDraft, Chats
from .deps import Deps, Policy
from .errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    Throttled,
    ValidationFailed,
)
from .membership import ChatEdit, ChatMembers, Membership
from .model import (
    Chat,
    Message,
    MessageQuery,
    NewMessage,
    NewUser,
    Page,
    Session,
    TokenRecord,
    User,
    UserType,
)
from .paging import Window
from .services import Services

__all__ = [
    "AccountChange",
    "AccountEdit",
    "Accounts",
    "Admin",
    "AuthenticationFailed",
    "Chat",
    "ChatDraft",
    "ChatEdit",
    "ChatMembers",
    "Chats",
    "Conflict",
    "Deps",
    "DomainError",
    "Forbidden",
    "Membership",
    "Message",
    "MessageQuery",
    "NewMessage",
    "NewUser",
    "NotFound",
    "Page",
    "Policy",
    "Registration",
    "Services",
    "Session",
    "Throttled",
    "TokenRecord",
    "User",
    "UserType",
    "ValidationFailed",
    "Window",
]
