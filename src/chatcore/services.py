"""The use cases behind one object, as a composition root hands them out."""

from __future__ import annotations

import attrs

from .accounts import Accounts
from .admin import Admin
from .chats import Chats
from .deps import Deps
from .membership import Membership
from .operator import Operator


@attrs.frozen
class Services:
    deps: Deps
    accounts: Accounts
    chats: Chats
    admin: Admin
    operator: Operator
    membership: Membership

    @classmethod
    def build(cls, deps: Deps) -> Services:
        accounts = Accounts(deps)
        return cls(
            deps, accounts, Chats(deps), Admin(deps, accounts), Operator(deps), Membership(deps)
        )
