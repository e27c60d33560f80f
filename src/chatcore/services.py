"""The use cases behind one object, as a composition root hands them out."""

from __future__ import annotations

import attrs

from .accounts import Accounts
from .admin import Admin
from .chats import Chats
from .deps import Deps
from .membership import Membership


@attrs.frozen
class Services:
    deps: Deps
    accounts: Accounts
    chats: Chats
    admin: Admin
    membership: Membership

    @classmethod
    def build(cls, deps: Deps) -> Services:
        accounts = Accounts(deps)
        return cls(deps, accounts, Chats(deps), Admin(deps, accounts), Membership(deps))
