"""Chats that change: membership, roles, renames, deletion. The rules are
:mod:`chatcore.roster`'s, applied by storage in the transaction that stores the change
and its events; these use cases check the input, then publish what was stored.

Visibility, as everywhere: an outsider gets NotFound (the chat might not exist), a
participant without the right Forbidden."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from .deps import Deps
from .errors import NotFound
from .model import Chat, User
from .participants import report_gone, resolve
from .roster import (
    ChatChange,
    Plan,
    Roster,
    deletion,
    demotion,
    departure,
    membership,
    promotion,
    require_admin,
)
from .rules import CHAT_NAME_MAX, Errors, check_text


@attrs.frozen
class ChatEdit:
    """A PATCH of a chat: None leaves a part as it is. Given participant lists (either
    or both) replace the membership; the caller stays in."""

    name: str | None = None
    participant_ids: Sequence[int] | None = None
    participant_usernames: Sequence[str] | None = None


@attrs.frozen
class ChatMembers:
    """People to add to a chat."""

    participant_ids: Sequence[int] = ()
    participant_usernames: Sequence[str] = ()


class Membership:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._users = deps.storage.users
        self._chats = deps.storage.chats

    async def update_chat(self, actor: User, chat_id: int, edit: ChatEdit) -> Chat:
        """Rename and/or replace the membership (admins only)."""
        await self._require_admin(actor, chat_id)
        errors = Errors()
        name = None if edit.name is None else check_text(edit.name, CHAT_NAME_MAX, "name", errors)
        wanted: list[User] | None = None
        if edit.participant_ids is not None or edit.participant_usernames is not None:
            wanted = await self._resolve(
                actor, edit.participant_ids or (), edit.participant_usernames or (), errors
            )
        errors.raise_if_any()
        limit = self._deps.policy.max_participants

        def plan(roster: Roster) -> ChatChange:
            require_admin(roster, actor)
            people = roster.chat.participants if wanted is None else wanted
            return membership(roster, actor, people, limit, name)

        return await self._change_adding(
            chat_id, plan, actor, edit.participant_ids or (), edit.participant_usernames or ()
        )

    async def add_participants(self, actor: User, chat_id: int, members: ChatMembers) -> Chat:
        """Admins add people; someone already in is no error."""
        await self._require_admin(actor, chat_id)
        errors = Errors()
        new = await self._resolve(
            actor, members.participant_ids, members.participant_usernames, errors
        )
        errors.raise_if_any()
        limit = self._deps.policy.max_participants

        def plan(roster: Roster) -> ChatChange:
            require_admin(roster, actor)
            return membership(roster, actor, [*roster.chat.participants, *new], limit)

        return await self._change_adding(
            chat_id, plan, actor, members.participant_ids, members.participant_usernames
        )

    async def remove_participant(self, actor: User, chat_id: int, user_id: int) -> None:
        """An admin removes anyone; anyone removes themselves (leaving). The last admin's
        going hands the chat to the longest-standing participant; the last
        participant's deletes it."""

        def plan(roster: Roster) -> ChatChange:
            if user_id == actor.id:
                return departure(user_id)(roster)  # NotFound for an outsider
            require_admin(roster, actor)
            return departure(user_id, actor)(roster)

        await self._change(chat_id, plan)

    async def leave(self, actor: User, chat_id: int) -> None:
        await self.remove_participant(actor, chat_id, actor.id)

    async def promote(self, actor: User, chat_id: int, user_id: int) -> Chat:
        """An admin makes a participant an admin too (one already: no change)."""

        def plan(roster: Roster) -> ChatChange:
            require_admin(roster, actor)
            return promotion(roster, user_id)

        return await self._change_to_chat(chat_id, plan)

    async def demote(self, actor: User, chat_id: int, user_id: int) -> Chat:
        """An admin makes an admin (themselves too) a member; never the last one."""

        def plan(roster: Roster) -> ChatChange:
            require_admin(roster, actor)
            return demotion(roster, user_id)

        return await self._change_to_chat(chat_id, plan)

    async def delete_chat(self, actor: User, chat_id: int) -> None:
        """Admins delete the chat with its history, for everyone."""

        def plan(roster: Roster) -> ChatChange:
            require_admin(roster, actor)
            return deletion(roster)

        await self._change(chat_id, plan)

    async def _resolve(
        self, actor: User, ids: Sequence[int], usernames: Sequence[str], errors: Errors
    ) -> list[User]:
        limit = self._deps.policy.max_participants
        return await resolve(self._users, ids, usernames, limit, errors, actor)

    async def _require_admin(self, actor: User, chat_id: int) -> None:
        """Before validating input: an outsider learns nothing from a 400, a member may
        not change the chat whatever they send. (The plan checks again, atomically.)"""
        chat = await self._chats.get_for(chat_id, actor.id)
        if chat is None:
            raise NotFound
        require_admin(Roster(chat, ()), actor)

    async def _change(self, chat_id: int, plan: Plan) -> Chat | None:
        return await apply_change(self._deps, chat_id, plan)

    async def _change_adding(
        self, chat_id: int, plan: Plan, actor: User, ids: Sequence[int], usernames: Sequence[str]
    ) -> Chat:
        """A change that adds the users named: one deleted since they were looked up
        makes storage refuse it whole, and the request a 400 on their field."""
        try:
            return await self._change_to_chat(chat_id, plan)
        except NotFound:
            limit = self._deps.policy.max_participants
            await report_gone(self._users, ids, usernames, limit, actor)
            raise

    async def _change_to_chat(self, chat_id: int, plan: Plan) -> Chat:
        chat = await self._change(chat_id, plan)
        if chat is None:  # pragma: no cover - only deletions and departures delete
            raise NotFound
        return chat


async def apply_change(deps: Deps, chat_id: int, plan: Plan) -> Chat | None:
    """Have storage apply ``plan`` to the chat, then publish the events it stored: every
    change of a chat's membership, name or admins, by a participant or an administrator.
    The chat after it, None once deleted; NotFound for no such chat."""
    changed = await deps.storage.chats.change(chat_id, plan)
    if changed is None:
        raise NotFound
    chat, events = changed
    for event in events:
        await deps.notifier.publish(event)
    return chat
