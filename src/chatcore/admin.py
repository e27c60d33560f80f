"""Administration: only users with the admin flag (never granted by ``user_type``) may
call these; to anyone else they do not exist (NotFound, as a hidden chat)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import attrs

from .accounts import Accounts, search_users
from .deps import Deps
from .errors import NON_FIELD, NotFound, ValidationFailed
from .events import Event
from .membership import ChatMembers, apply_change
from .model import (
    Chat,
    Counts,
    Message,
    MessageQuery,
    Page,
    Revocation,
    Session,
    User,
    UserChanges,
)
from .paging import HasId, Window, forward_page, message_page
from .participants import resolve
from .roster import ChatChange, Roster, departure, membership
from .rules import (
    CHAT_NAME_MAX,
    INVALID_TEXT,
    MAX_ID,
    PAGE_MAX,
    SEARCH_MAX,
    Errors,
    check_password,
    check_positive,
    check_text,
    check_user_type,
    is_text,
    too_long,
    username_key,
)

T = TypeVar("T")
Row = TypeVar("Row", bound=HasId)

# Finding: the stores read users and chats in id order only, so the console's finders
# filter and sort what they read, in batches of PAGE_MAX (a store holding N users costs
# N / PAGE_MAX reads for a page of users, or of chats). Messages grow without bound,
# so a page of them examines at most MESSAGE_SCAN messages and says where it stopped.
MESSAGE_SCAN = 10_000
USER_SORTS = ("id", "username", "date_joined", "user_type")
INVALID_PAGE = "Invalid page."


@attrs.frozen
class UserFilter:
    """Which accounts a page of the console's user list shows, and in what order:
    ``sort`` is one of USER_SORTS, with a leading ``-`` for descending."""

    search: str = ""
    user_type: str | None = None
    is_active: bool | None = None
    is_admin: bool | None = None
    sort: str = "id"
    page: int = 1
    per_page: int = 50


@attrs.frozen
class MessageFilter:
    """Which messages a page of the console's message list shows: newest first, from
    below ``before`` (a message id) when given."""

    search: str = ""
    chat_id: int | None = None
    sender_id: int | None = None
    before: int | None = None
    per_page: int = 50


@attrs.frozen
class Numbered(Generic[T]):
    """One numbered page of a list, and how many items and pages the list has."""

    items: tuple[T, ...]
    total: int
    page: int
    pages: int


@attrs.frozen
class Scanned:
    """A page of messages, newest first, and where the next (older) page starts: None
    when every older message was examined. Fewer than a page means the scan stopped."""

    items: tuple[Message, ...]
    older: int | None


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

    async def login(self, username: str, password: str, address: str | None = None) -> Session:
        """A session for the admin console: the password checked behind the login
        throttle, as every login is; an account without the admin flag gets NotFound (as
        the console's pages answer it) and no credential."""
        user = await self._accounts.check_credentials(username, password, address)
        require_admin(user)
        return Session(user, await self._accounts.issue_token(user))

    async def counts(self, actor: User) -> Counts:
        require_admin(actor)
        return await self._deps.storage.counts()

    async def get_user(self, actor: User, user_id: int) -> User:
        require_admin(actor)
        return _found(await self._users.get(user_id))

    async def get_chat(self, actor: User, chat_id: int) -> Chat:
        require_admin(actor)
        return _found(await self._chats.get(chat_id))

    async def get_message(self, actor: User, message_id: int) -> Message:
        require_admin(actor)
        return _found(await self._messages.get(message_id))

    async def find_users(self, actor: User, query: UserFilter) -> Numbered[User]:
        """A numbered page of the accounts matching every part of ``query``."""
        require_admin(actor)
        errors = Errors()
        _check_search(query.search, errors)
        user_type = None if query.user_type is None else check_user_type(query.user_type, errors)
        field = query.sort.removeprefix("-")
        if field not in USER_SORTS:
            errors.add("sort", f'"{query.sort}" is not a valid choice.')
        _check_paging(query.page, query.per_page, errors)
        errors.raise_if_any()
        everyone = await _read_all(lambda after: self._users.search(query.search, after, PAGE_MAX))
        found = [
            u
            for u in everyone
            if (user_type is None or u.user_type is user_type)
            and (query.is_active is None or u.is_active is query.is_active)
            and (query.is_admin is None or u.is_admin is query.is_admin)
        ]
        key: Callable[[User], Any] = {
            "id": lambda u: u.id,
            "username": lambda u: (username_key(u.username), u.id),
            "date_joined": lambda u: (u.date_joined, u.id),
            "user_type": lambda u: (u.user_type.value, u.id),
        }.get(field, lambda u: u.id)
        found.sort(key=key, reverse=query.sort.startswith("-"))
        return _numbered(found, query.page, query.per_page)

    async def find_chats(
        self, actor: User, search: str = "", page: int = 1, per_page: int = 50
    ) -> Numbered[Chat]:
        """A numbered page of the chats whose name contains ``search`` (ignoring case),
        newest first."""
        require_admin(actor)
        errors = Errors()
        _check_search(search, errors)
        _check_paging(page, per_page, errors)
        errors.raise_if_any()
        wanted = search.casefold()
        every = await _read_all(lambda after: self._chats.list_all(after, PAGE_MAX))
        found = [c for c in reversed(every) if wanted in c.name.casefold()]
        return _numbered(found, page, per_page)

    async def find_messages(self, actor: User, query: MessageFilter) -> Scanned:
        """Messages of every chat (or of ``chat_id``), from ``sender_id`` when given,
        whose content contains ``search`` (ignoring case), newest first: a page of them,
        from at most MESSAGE_SCAN examined."""
        require_admin(actor)
        errors = Errors()
        _check_search(query.search, errors)
        check_positive(query.chat_id, "chat", errors)
        check_positive(query.sender_id, "sender", errors)
        check_positive(query.before, "before", errors)
        _check_paging(1, query.per_page, errors)
        errors.raise_if_any()
        wanted = query.search.casefold()
        found: list[Message] = []
        before, examined = query.before, 0
        while len(found) < query.per_page and examined < MESSAGE_SCAN:
            batch = await self._messages.page(
                MessageQuery(limit=PAGE_MAX, chat_id=query.chat_id, before=before)
            )
            if not batch:
                return Scanned(tuple(found), None)
            for message in reversed(batch):
                examined += 1
                before = message.id
                if (query.sender_id is None or message.sender.id == query.sender_id) and (
                    wanted in message.content.casefold()
                ):
                    found.append(message)
                    if len(found) == query.per_page:
                        break
            if len(batch) < PAGE_MAX and len(found) < query.per_page:
                return Scanned(tuple(found), None)
        return Scanned(tuple(found), before)

    async def rename_chat(self, actor: User, chat_id: int, name: str) -> Chat:
        """Rename any chat (chat_updated), without being in it."""
        require_admin(actor)
        errors = Errors()
        new_name = check_text(name, CHAT_NAME_MAX, "name", errors)
        errors.raise_if_any()
        limit = self._deps.policy.max_participants

        def plan(roster: Roster) -> ChatChange:
            people = roster.chat.participants
            return membership(roster, actor, people, limit, new_name, by_joins=False)

        return await self._changed(chat_id, plan)

    async def add_participants(self, actor: User, chat_id: int, members: ChatMembers) -> Chat:
        """Add people to any chat (member_added each, by this administrator), without
        joining it; someone already in is no error."""
        require_admin(actor)
        await self.get_chat(actor, chat_id)  # no such chat: NotFound before any 400
        errors = Errors()
        limit = self._deps.policy.max_participants
        new = await resolve(
            self._users, members.participant_ids, members.participant_usernames, limit, errors, None
        )
        errors.raise_if_any()

        def plan(roster: Roster) -> ChatChange:
            people = [*roster.chat.participants, *new]
            return membership(roster, actor, people, limit, by_joins=False)

        return await self._changed(chat_id, plan)

    async def remove_participant(self, actor: User, chat_id: int, user_id: int) -> Chat | None:
        """Remove anyone from any chat (member_removed, by this administrator), with the
        rules of a removal by a chat's admin: the last admin's going hands the chat to
        the longest-standing participant, the last participant's deletes it (None)."""
        require_admin(actor)
        return await apply_change(self._deps, chat_id, departure(user_id, actor))

    async def _changed(self, chat_id: int, plan: Callable[[Roster], ChatChange]) -> Chat:
        chat = await apply_change(self._deps, chat_id, plan)
        if chat is None:  # pragma: no cover - only removals delete
            raise NotFound
        return chat

    async def _publish(self, events: list[Event]) -> None:
        for event in events:
            await self._deps.notifier.publish(event)


def require_admin(actor: User) -> None:
    """Every use case here starts with it; the HTTP adapter also calls it first, so that
    to anyone else an admin path answers as an unknown one before any input is read."""
    if not actor.is_admin:
        raise NotFound


def _found(thing: T | None) -> T:
    if thing is None:
        raise NotFound
    return thing


def _check_search(text: str, errors: Errors) -> None:
    if len(text) > SEARCH_MAX:
        errors.add("search", too_long(SEARCH_MAX))
    elif not is_text(text):
        errors.add("search", INVALID_TEXT)


def _check_paging(page: int, per_page: int, errors: Errors) -> None:
    if not 1 <= page <= MAX_ID:
        errors.add("page", INVALID_PAGE)
    if not 1 <= per_page <= PAGE_MAX:
        errors.add("per_page", f"Ensure this value is between 1 and {PAGE_MAX}.")


async def _read_all(fetch: Callable[[int | None], Awaitable[list[Row]]]) -> list[Row]:
    """Every item of an id-ordered list read forward by ``fetch(after)``, batch by batch."""
    items: list[Row] = []
    after: int | None = None
    while True:
        batch = await fetch(after)
        items += batch
        if len(batch) < PAGE_MAX:
            return items
        after = batch[-1].id


def _numbered(items: list[T], page: int, per_page: int) -> Numbered[T]:
    """Page ``page`` of ``items``; a page past the last is a ValidationFailed on
    ``page`` (the first page always exists, empty for an empty list)."""
    pages = max(1, -(-len(items) // per_page))
    if page > pages:
        raise ValidationFailed.on("page", INVALID_PAGE)
    start = (page - 1) * per_page
    return Numbered(tuple(items[start : start + per_page]), len(items), page, pages)
