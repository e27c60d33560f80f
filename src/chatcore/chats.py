"""Chat and message use cases. Every one takes the acting user: a chat the actor is not
in behaves exactly like a chat that does not exist."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence

import attrs

from .deps import Deps
from .errors import Forbidden, NotFound, ValidationFailed
from .events import Event
from .model import Activity, Chat, Message, MessageQuery, NewMessage, Page, User
from .paging import Window, chat_list_page, message_page
from .participants import UNKNOWN_ID, UNKNOWN_NAME, report_gone, resolve
from .rules import (
    CHAT_NAME_MAX,
    CONTENT_MAX,
    MAX_ID,
    PAGE_MAX,
    Errors,
    check_client_id,
    check_positive,
    check_text,
)
from .throttle import take

EVENTS_DEFAULT = 100
EVENTS_MAX = 1000


@attrs.frozen
class ChatDraft:
    """A new chat, as the client asks for it."""

    name: str
    participant_ids: Sequence[int] = ()
    participant_usernames: Sequence[str] = ()


class Chats:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._users = deps.storage.users
        self._chats = deps.storage.chats
        self._messages = deps.storage.messages
        self._attempts = deps.storage.attempts

    async def create_chat(self, actor: User, draft: ChatDraft) -> Chat:
        """A new chat of the actor and the participants named. Each user may create
        ``chats_per_user`` an hour."""
        errors = Errors()
        name = check_text(draft.name, CHAT_NAME_MAX, "name", errors)
        members = await resolve(
            self._users,
            draft.participant_ids,
            draft.participant_usernames,
            self._deps.policy.max_participants,
            errors,
            actor,
        )
        errors.raise_if_any()
        now = self._deps.clock.now()
        policy = self._deps.policy
        # Counted once valid, so typos cost nothing; it bounds how fast anyone can add
        # a user to chats (each one lengthens that user's chat list).
        await take(
            self._attempts, f"chats:{actor.id}", policy.chats_per_user, policy.creation_window, now
        )
        try:
            return await self._chats.add(name, [u.id for u in members], now, actor.id)
        except NotFound:  # someone named was deleted since: a 400 on their field
            ids, names = draft.participant_ids, draft.participant_usernames
            await report_gone(self._users, ids, names, policy.max_participants, actor)
            raise

    async def list_chats(
        self, actor: User, limit: int | None = None, cursor: str | None = None
    ) -> Page[Chat]:
        """A page of the actor's chats, most recent activity first: the top ``limit``, or
        those below ``cursor`` (:func:`chatcore.paging.chat_cursor` of the last chat of the
        page before): keyset paging, so a page costs the same at any number of chats.

        Between pages the order moves. A chat that gets a message moves to the top,
        above every cursor handed out, so later pages skip it rather than show it twice:
        the client has its message on the socket already, and sees the chat when it
        reads the top again. Only a chat whose newest message is deleted moves down, and
        may then appear once more on a later page."""

        def fetch(size: int, below: Activity | None) -> Awaitable[list[Chat]]:
            return self._chats.for_user(actor.id, size, below)

        return await chat_list_page(fetch, limit, cursor)

    async def get_chat(self, actor: User, chat_id: int) -> Chat:
        # Storage finds the membership first and reads nothing more without it: a chat
        # the actor is not in costs what a missing one does, so timing tells them apart
        # no more than the answer does.
        chat = await self._chats.get_for(chat_id, actor.id)
        if chat is None:
            raise NotFound
        return chat

    async def send_message(
        self, actor: User, chat_id: int, content: str, client_id: str | None = None
    ) -> tuple[Message, bool]:
        """Store a message and publish it to the chat's listeners. Returns the message
        and whether it is new: a repeated ``client_id`` of the same sender in the same
        chat stores and publishes nothing and returns the original."""
        errors = Errors()
        text = check_text(content, CONTENT_MAX, "content", errors)
        key = check_client_id(client_id, errors)
        if errors.fields:
            await self._require_member(actor, chat_id)  # an outsider gets 404, never 400
            errors.raise_if_any()
        draft = NewMessage(chat_id, actor.id, text, self._deps.clock.now(), key)
        # Storage checks membership in the same atomic step (one read fewer per send,
        # and no window between the check and the insert): NotFound for an outsider.
        message, posted = await self._messages.add(draft)
        if posted is not None:
            await self._deps.notifier.publish(posted)
        return message, posted is not None

    async def edit_message(self, actor: User, message_id: int, content: str) -> Message:
        """The sender replaces a message's content (the rules of a send); sets
        ``edited_at``. Anyone else in the chat: Forbidden; an outsider: NotFound."""
        message = await self.get_message(actor, message_id)
        if message.sender.id != actor.id:
            raise Forbidden
        errors = Errors()
        text = check_text(content, CONTENT_MAX, "content", errors)
        errors.raise_if_any()
        # The sender never changes, and a check of membership here and a removal
        # committed before the edit differ by one in-flight request: no rule to guard
        # inside the transaction (unlike the roster's, see chatcore.roster).
        edited = await self._messages.edit(message_id, text, self._deps.clock.now())
        if edited is None:  # deleted meanwhile
            raise NotFound
        message, event = edited
        await self._deps.notifier.publish(event)
        return message

    async def delete_message(self, actor: User, message_id: int) -> None:
        """The sender, or an admin of the chat, deletes a message: from then on it is in
        no read, and its events replay as message_deleted."""
        message = await self.get_message(actor, message_id)
        if message.sender.id != actor.id:
            chat = await self.get_chat(actor, message.chat_id)
            if not chat.is_admin(actor.id):
                raise Forbidden
        event = await self._messages.delete(message_id)
        if event is None:
            raise NotFound
        await self._deps.notifier.publish(event)

    async def chat_events(
        self, actor: User, chat_id: int, since: int = 0, limit: int = EVENTS_DEFAULT
    ) -> tuple[list[Event], int]:
        """The chat's events after ``since``, in seq order, rendered as things are now,
        and the chat's latest seq: what a client without a socket catches up with."""
        chat = await self.get_chat(actor, chat_id)
        errors = Errors()
        if not 0 <= since <= MAX_ID:
            errors.add("since", f"Ensure this value is between 0 and {MAX_ID}.")
        if not 1 <= limit <= EVENTS_MAX:
            errors.add("limit", f"Ensure this value is between 1 and {EVENTS_MAX}.")
        errors.raise_if_any()
        return await self._chats.events(chat_id, since, limit), chat.seq

    async def get_message(self, actor: User, message_id: int) -> Message:
        message = await self._messages.get(message_id)
        if message is None or not await self._chats.is_participant(message.chat_id, actor.id):
            raise NotFound
        return message

    async def chat_messages(self, actor: User, chat_id: int, window: Window) -> Page[Message]:
        await self._require_member(actor, chat_id)
        return await message_page(self._messages, MessageQuery(limit=0, chat_id=chat_id), window)

    async def messages_since(
        self, actor: User, chat_id: int, after: int, limit: int = PAGE_MAX
    ) -> list[Message]:
        """Up to ``limit`` messages of the chat with ids above ``after``, oldest first:
        what a reconnecting client missed (``after=0``: from the very first)."""
        await self._require_member(actor, chat_id)
        if not 0 <= after <= MAX_ID:
            raise ValidationFailed.on("after", f"Ensure this value is between 0 and {MAX_ID}.")
        query = MessageQuery(limit=limit, chat_id=chat_id, after=after, newest_first=False)
        return await self._messages.page(query)

    async def my_messages(
        self, actor: User, window: Window, chat_id: int | None = None
    ) -> Page[Message]:
        """Messages of every chat the actor is in (or of one of them), oldest first.
        Naming a chat the actor is not in gives an empty page, not an error."""
        errors = Errors()
        check_positive(chat_id, "chat", errors)
        scope = MessageQuery(limit=0, chat_id=chat_id, member_id=actor.id)
        return await message_page(self._messages, scope, window, errors)

    async def _require_member(self, actor: User, chat_id: int) -> None:
        if not await self._chats.is_participant(chat_id, actor.id):
            raise NotFound


__all__ = ["UNKNOWN_ID", "UNKNOWN_NAME", "ChatDraft", "Chats"]
