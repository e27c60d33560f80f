"""Administration: only users with the admin flag (never granted by ``user_type``) may
call these; to anyone else they do not exist (NotFound, as a hidden chat)."""

from __future__ import annotations

import attrs

from .accounts import Accounts, search_users
from .deps import Deps
from .errors import NON_FIELD, NotFound, ValidationFailed
from .events import Event
from .model import Chat, Message, MessageQuery, Page, Revocation, User, UserChanges
from .paging import Window, forward_page, message_page
from .roster import departure
from .rules import Errors, check_password, check_positive, check_user_type


@attrs.frozen
class AccountEdit:
    """An administrator's change to an account, as the client sends it."""

    user_type: str | None = None
    is_active: bool | None = None
    is_admin: bool | None = None
    password: str | None = None


class Admin:
    def __init__(self, deps: Deps, accounts: Accounts) -> None:
        self._deps = deps
        self._accounts = accounts
        self._users = deps.storage.users
        self._chats = deps.storage.chats
        self._messages = deps.storage.messages

    async def list_users(
        self, actor: User, search: str = "", after: int | None = None, limit: int | None = None
    ) -> Page[User]:
        """Every account, inactive ones included, as Accounts.list_users pages them."""
        require_admin(actor)
        return await search_users(self._users, search, after, limit)

    async def edit_user(self, actor: User, user_id: int, edit: AccountEdit) -> User:
        """Change an account; deactivating one, or setting its password, revokes every
        token it holds. Admins may not lock themselves out (deactivate themselves or
        drop their own flag)."""
        require_admin(actor)
        errors = Errors()
        user_type = None if edit.user_type is None else check_user_type(edit.user_type, errors)
        if user_id == actor.id and (edit.is_active is False or edit.is_admin is False):
            errors.add(NON_FIELD, "You cannot deactivate yourself or drop your own admin rights.")
        if edit.password is not None:
            check_password(edit.password, edit.password, "", errors)
        errors.raise_if_any()
        user = await self._users.get(user_id)
        if user is None:
            raise NotFound
        if edit.password is not None:  # checked again with the username, before any change
            await self._accounts.set_password(user, edit.password)
        changes = UserChanges(user_type, edit.is_active, edit.is_admin)
        user = await self._users.update(user_id, changes)
        if user is None:
            raise NotFound
        if not user.is_active:
            await self._deps.storage.tokens.delete_for_user(user_id)
            await self._deps.notifier.revoke(Revocation(user_id))
        return user

    async def delete_user(self, actor: User, user_id: int) -> None:
        require_admin(actor)
        if user_id == actor.id:
            raise ValidationFailed.on(NON_FIELD, "You cannot delete yourself.")
        # Everyone who shared a chat with them is told: their messages go
        # (message_deleted each), then they do (member_removed, by this administrator).
        events = await self._users.delete(user_id, departure(user_id, actor))
        if events is None:
            raise NotFound
        await self._deps.notifier.revoke(Revocation(user_id))
        await self._publish(events)

    async def list_chats(
        self, actor: User, after: int | None = None, limit: int | None = None
    ) -> Page[Chat]:
        require_admin(actor)
        return await forward_page(self._chats.list_all, after, limit)

    async def delete_chat(self, actor: User, chat_id: int) -> None:
        require_admin(actor)
        event = await self._chats.delete(chat_id)
        if event is None:
            raise NotFound
        await self._publish([event])

    async def list_messages(
        self, actor: User, window: Window, chat_id: int | None = None
    ) -> Page[Message]:
        """Messages of every chat, or of one, in id order."""
        require_admin(actor)
        errors = Errors()
        check_positive(chat_id, "chat", errors)
        scope = MessageQuery(limit=0, chat_id=chat_id)
        return await message_page(self._messages, scope, window, errors)

    async def delete_message(self, actor: User, message_id: int) -> None:
        require_admin(actor)
        event = await self._messages.delete(message_id)
        if event is None:
            raise NotFound
        await self._publish([event])

    async def _publish(self, events: list[Event]) -> None:
        for event in events:
            await self._deps.notifier.publish(event)


def require_admin(actor: User) -> None:
    """Every use case here starts with it; the HTTP adapter also calls it first, so that
    to anyone else an admin path answers as an unknown one before any input is read."""
    if not actor.is_admin:
        raise NotFound
