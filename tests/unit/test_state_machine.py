"""A stateful model of the use cases: random sequences of sign-ups, logins, logouts, new
chats, sends (repeated client ids and rejected content among them), page reads by
several users, membership changes (adds, removals, leaving, whole-list replacement,
roles), renames, edits and deletions of messages and chats, and an administrator
deleting users and chats, each checked against a plain Python model of what API.md
promises, event seqs included.

The machine drives the app as bootstrap() wires it (in-memory storage, fast Argon2, a
manual clock) on one event loop of its own, closed with the machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)
from page_model import expected_page

from adapters.clock import ManualClock
from adapters.hashing import FAST_INSECURE, Argon2Hasher
from chatcore import (
    AuthenticationFailed,
    Chat,
    ChatDraft,
    ChatEdit,
    ChatMembers,
    Forbidden,
    Message,
    NotFound,
    Page,
    Registration,
    User,
    UserType,
    ValidationFailed,
    Window,
)
from chatcore.deps import Policy
from chatcore.events import MessagePosted
from chatcore.paging import chat_cursor
from entrypoints.bootstrap import bootstrap

T = TypeVar("T")

PASSWORD = "Vq8#nLw2-zT"
# Pairs that differ only in case are one username: the second sign-up must fail.
NAMES = ("ann", "Ann", "bob", "BOB", "cy", "dee", "Eve", "eve", "fay")
UNKNOWN_USER_ID = 10**6
CHAT_NAMES = st.sampled_from(["general", "  team  ", "Zoë & 字", " " + "y" * 255 + " "])
BAD_CHAT_NAMES = st.sampled_from(["", "   ", "\t\n", "x" * 256])
CONTENTS = st.one_of(
    st.sampled_from(["hi", "  hello  ", "y" * 10_000, "ünï 🙂"]),
    st.text(max_size=6),
)
BAD_CONTENTS = st.sampled_from(["", " \n\t ", "\u3000", "x" * 10_001, "a\x00b"])
CLIENT_IDS = st.sampled_from([None, None, "a", "b", "retry-1", "k" * 64])
BAD_CLIENT_IDS = st.sampled_from(["", "k" * 65])
LIMITS = st.one_of(st.none(), st.integers(1, 4))


def bad_content(content: str) -> bool:
    """Blank, too long, or with a NUL (refused, as DRF's CharField does)."""
    text = content.strip()
    return not text or len(text) > 10_000 or "\x00" in text


def assert_page(page: Page[Message], expected: Sequence[Message], window: Window) -> None:
    items, older, newer = expected_page(
        [m.id for m in expected], window.limit, window.before, window.after
    )
    by_id = {m.id: m for m in expected}
    assert list(page.items) == [by_id[i] for i in items], window
    assert (page.has_older, page.has_newer) == (older, newer), window


@attrs.define
class ChatModel:
    id: int
    name: str
    created_at: datetime
    member_ids: frozenset[int]
    messages: list[Message] = attrs.Factory(list)
    admins: frozenset[int] = frozenset()
    joined: list[int] = attrs.Factory(list)  # longest-standing first
    seq: int = 0

    def activity(self) -> tuple[datetime, int]:
        """API.md: most recent activity first; storage breaks ties by the larger id."""
        last = self.messages[-1].timestamp if self.messages else self.created_at
        return last, self.id


class ChatMachine(RuleBasedStateMachine):
    users = Bundle("users")
    chats = Bundle("chats")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.hasher = Argon2Hasher(FAST_INSECURE)
        self.clock = ManualClock()
        # The model leaves throttles out (test_throttle.py is theirs): none binds here.
        unthrottled = Policy(login_free_failures=10**6, chats_per_user=10**6)
        self.app = bootstrap(hasher=self.hasher, clock=self.clock, policy=unthrottled)
        self.by_id: dict[int, User] = {}  # insertion order is id order
        self.tokens: list[tuple[str, int]] = []  # every token issued, in issue order
        self.revoked: set[str] = set()
        self.chat_models: dict[int, ChatModel] = {}
        self.messages: dict[int, Message] = {}
        self.by_client_id: dict[tuple[int, int, str], Message] = {}
        self.deleted: set[int] = set()  # users an administrator deleted (still in the bundle)
        self.root: User | None = None  # the administrator, outside the bundle

    def teardown(self) -> None:
        self.hasher.close()
        self.loop.close()

    def run(self, call: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(call)

    def fails(self, error: type[Exception], call: Coroutine[Any, Any, object]) -> Exception:
        with pytest.raises(error) as info:
            self.run(call)
        return info.value

    def keys(self) -> set[str]:
        return {u.username.casefold() for u in self.by_id.values()}

    def chats_of(self, user: User) -> list[ChatModel]:
        return [c for c in self.chat_models.values() if user.id in c.member_ids]

    def expected_chat(self, model: ChatModel) -> Chat:
        return Chat(
            model.id,
            model.name,
            model.created_at,
            tuple(self.by_id[i] for i in sorted(model.member_ids)),
            model.messages[-1] if model.messages else None,
            tuple(sorted(model.admins)),
            model.seq,
        )

    # --- accounts -----------------------------------------------------------------------

    def sign_up(self, name: str, user_type: str | None = None) -> User:
        session = self.run(
            self.app.accounts.register(Registration(name, PASSWORD, PASSWORD, user_type=user_type))
        )
        user = session.user
        assert (user.username, user.email) == (name, "")
        assert user.user_type is (UserType.STUDENT if user_type is None else UserType(user_type))
        assert user.id not in self.by_id
        assert all(user.id > other for other in self.by_id)
        self.by_id[user.id] = user
        self.tokens.append((session.token, user.id))
        return user

    def seed(self) -> tuple[User, User]:
        """Two users, whichever initialize rule runs first creating them."""
        if not self.by_id:
            self.sign_up("ann")
            self.sign_up("bob")
        ann, bob = list(self.by_id.values())[:2]
        return ann, bob

    @initialize(target=users)
    def two_users(self) -> object:
        return multiple(*self.seed())

    @initialize(target=chats)
    def a_chat_of_two(self) -> object:
        ann, bob = self.seed()
        return self.new_chat(ann, ChatDraft("general", [bob.id]))

    @rule(
        target=users,
        name=st.sampled_from(NAMES),
        user_type=st.sampled_from([None, "owner", "student", "staff"]),
    )
    def register(self, name: str, user_type: str | None) -> object:
        if name.casefold() in self.keys():
            form = Registration(name, PASSWORD, PASSWORD, user_type=user_type)
            error = self.fails(ValidationFailed, self.app.accounts.register(form))
            assert isinstance(error, ValidationFailed)
            assert set(error.fields) == {"username"}
            return multiple()
        return self.sign_up(name, user_type)

    @rule(user=users, wrong=st.booleans())
    def login(self, user: User, wrong: bool) -> None:
        if wrong or user.id in self.deleted:
            self.fails(AuthenticationFailed, self.app.accounts.login(user.username, PASSWORD + "!"))
            return
        session = self.run(self.app.accounts.login(user.username, PASSWORD))
        assert session.user == user
        assert session.token not in {token for token, _ in self.tokens}
        self.tokens.append((session.token, user.id))

    @precondition(lambda self: self.tokens)
    @rule(data=st.data())
    def logout(self, data: st.DataObject) -> None:
        token, _ = self.tokens[data.draw(st.integers(0, len(self.tokens) - 1), label="token")]
        self.run(self.app.accounts.logout(token))  # logging out twice is harmless
        self.revoked.add(token)

    @rule(seconds=st.sampled_from([0, 0, 1, 59, 3600]))
    def tick(self, seconds: int) -> None:
        self.clock.advance(timedelta(seconds=seconds))

    # --- chats and messages -------------------------------------------------------------

    @rule(target=chats, actor=users, name=CHAT_NAMES, data=st.data())
    def create_chat(self, actor: User, name: str, data: st.DataObject) -> object:
        return self.new_chat(actor, self.draft(data, name, unknown=False))

    @rule(target=chats, actor=users, name=CHAT_NAMES | BAD_CHAT_NAMES, data=st.data())
    def create_a_rejected_chat(self, actor: User, name: str, data: st.DataObject) -> object:
        return self.new_chat(actor, self.draft(data, name, unknown=True))

    def draft(self, data: st.DataObject, name: str, unknown: bool) -> ChatDraft:
        """Random subsets of the known users by id and by username (in any case); with
        ``unknown``, maybe someone who does not exist too."""
        known = list(self.by_id.values())
        some_id = st.sampled_from([u.id for u in known])
        spelled = st.sampled_from(known).flatmap(
            lambda u: st.sampled_from([u.username, u.username.upper(), u.username.lower()])
        )
        if unknown:
            some_id |= st.just(UNKNOWN_USER_ID)
            spelled |= st.just("nobody")
        ids = data.draw(st.lists(some_id, max_size=4), label="participant_ids")
        refs = data.draw(st.lists(spelled, max_size=3), label="participant_usernames")
        return ChatDraft(name, ids, refs)

    def new_chat(self, actor: User, draft: ChatDraft) -> object:
        name, ids, refs = draft.name, draft.participant_ids, draft.participant_usernames
        known = list(self.by_id.values())
        broken = set()
        if not name.strip() or len(name.strip()) > 255:
            broken.add("name")
        if any(i not in self.by_id for i in ids):
            broken.add("participant_ids")
        if any(r.casefold() not in self.keys() for r in refs):
            broken.add("participant_usernames")
        if broken:
            error = self.fails(ValidationFailed, self.app.chats.create_chat(actor, draft))
            assert isinstance(error, ValidationFailed)
            # Unknown people are found by a lookup that may wait for the name to pass.
            assert ({"name"} & broken or broken) <= set(error.fields) <= broken
            return multiple()
        if actor.id in self.deleted:  # an account deleted mid-session creates nothing
            self.fails(NotFound, self.app.chats.create_chat(actor, draft))
            return multiple()
        chat = self.run(self.app.chats.create_chat(actor, draft))
        by_key = {u.username.casefold(): u.id for u in known}
        members = frozenset({actor.id, *ids, *(by_key[r.casefold()] for r in refs)})
        model = ChatModel(
            chat.id,
            name.strip(),
            self.clock.now(),
            members,
            admins=frozenset({actor.id}),
            joined=sorted(members),
        )
        assert chat.id not in self.chat_models
        assert chat == self.expected_chat(model)
        self.chat_models[chat.id] = model
        return chat.id

    @rule(actor=users, chat_id=chats, content=CONTENTS, client_id=CLIENT_IDS)
    def send_message(self, actor: User, chat_id: int, content: str, client_id: str | None) -> None:
        self.send(actor, chat_id, content, client_id)

    @rule(
        actor=users,
        chat_id=chats,
        content=CONTENTS | BAD_CONTENTS,
        client_id=CLIENT_IDS | BAD_CLIENT_IDS,
    )
    def send_a_rejected_message(
        self, actor: User, chat_id: int, content: str, client_id: str | None
    ) -> None:
        self.send(actor, chat_id, content, client_id)

    @rule(chat_id=chats, data=st.data())
    def members_chat_away(self, chat_id: int, data: st.DataObject) -> None:
        """A burst of sends by the chat's members, so histories span several pages."""
        members = [self.by_id[i] for i in sorted(self.chat_models[chat_id].member_ids)]
        if not members:  # deleted
            return
        sends = data.draw(
            st.lists(st.tuples(st.sampled_from(members), CONTENTS, CLIENT_IDS), max_size=8),
            label="sends",
        )
        for actor, content, client_id in sends:
            self.send(actor, chat_id, content, client_id)

    def send(self, actor: User, chat_id: int, content: str, client_id: str | None) -> None:
        model = self.chat_models[chat_id]
        send = self.app.chats.send_message(actor, chat_id, content, client_id)
        if actor.id not in model.member_ids:
            self.fails(NotFound, send)
            return
        broken = set()
        if bad_content(content):
            broken.add("content")
        if client_id is not None and not 1 <= len(client_id) <= 64:
            broken.add("client_id")
        if broken:
            error = self.fails(ValidationFailed, send)
            assert isinstance(error, ValidationFailed)
            assert set(error.fields) == broken
            return
        message, created = self.run(send)
        key = None if client_id is None else (chat_id, actor.id, client_id)
        if key is not None and key in self.by_client_id:
            assert (message, created) == (self.by_client_id[key], False)
            return
        assert created
        assert message == Message(
            message.id, chat_id, actor, content.strip(), self.clock.now(), client_id
        )
        assert all(message.id > other for other in self.messages), "ids grow in storage order"
        self.messages[message.id] = message
        model.messages.append(message)
        model.seq += 1
        if key is not None:
            self.by_client_id[key] = message

    @rule(actor=users, data=st.data())
    def get_message(self, actor: User, data: st.DataObject) -> None:
        message_id = data.draw(
            st.sampled_from([*self.messages, max(self.messages, default=0) + 1]), label="message"
        )
        read = self.app.chats.get_message(actor, message_id)
        message = self.messages.get(message_id)
        if message is None or actor.id not in self.chat_models[message.chat_id].member_ids:
            self.fails(NotFound, read)
        else:
            assert self.run(read) == message

    # --- paging -------------------------------------------------------------------------

    async def walk(
        self,
        read: Callable[[Window], Awaitable[Page[Message]]],
        expected: list[Message],
        limit: int | None,
    ) -> None:
        """Walk back from the newest page with ``before``, then forward from the oldest
        with ``after``: both walks tile the history, no gap, no overlap."""
        window = Window(limit)
        pages = []
        for _ in range(len(expected) + 2):
            page = await read(window)
            assert_page(page, expected, window)
            pages.append(page)
            if not page.has_older:
                break
            window = Window(limit, before=page.items[0].id)
        else:
            pytest.fail("walking back never reached the oldest page")
        assert [m for page in reversed(pages) for m in page.items] == expected

        page = pages[-1]
        forward = list(page.items)
        for _ in range(len(expected) + 2):
            if not page.has_newer:
                break
            window = Window(limit, after=page.items[-1].id)
            page = await read(window)
            assert_page(page, expected, window)
            forward.extend(page.items)
        else:
            pytest.fail("walking forward never reached the newest page")
        assert forward == expected

    @rule(actor=users, chat_id=chats, limit=LIMITS)
    def walk_chat_history(self, actor: User, chat_id: int, limit: int | None) -> None:
        model = self.chat_models[chat_id]

        def read(window: Window) -> Awaitable[Page[Message]]:
            return self.app.chats.chat_messages(actor, chat_id, window)

        if actor.id not in model.member_ids:
            self.fails(NotFound, self.app.chats.chat_messages(actor, chat_id, Window(limit)))
            return
        self.run(self.walk(read, model.messages, limit))

    @rule(actor=users, limit=LIMITS, bump_after=st.none() | st.integers(0, 3), data=st.data())
    def walk_chat_list(
        self, actor: User, limit: int | None, bump_after: int | None, data: st.DataObject
    ) -> None:
        """Page through the chat list by its cursor. Unchanged, that is every chat once,
        most recent activity first. With a message sent to one of them after page
        ``bump_after``: still no chat twice, and only the bumped one may be missing."""
        expected = [
            m.id for m in sorted(self.chats_of(actor), key=ChatModel.activity, reverse=True)
        ]
        size = 100 if limit is None else limit
        seen: list[int] = []
        bumped = None
        cursor = None
        for number in range(len(expected) + 2):
            page = self.run(self.app.chats.list_chats(actor, limit, cursor))
            assert len(page.items) <= size
            assert not page.has_newer
            seen += [chat.id for chat in page.items]
            if not page.has_older:
                break
            assert len(page.items) == size
            cursor = chat_cursor(page.items[-1])
            if number == bump_after and bumped is None:
                bumped = data.draw(st.sampled_from(expected), label="bumped")
                self.clock.advance(timedelta(seconds=1))
                self.send(actor, bumped, "bump", None)
        else:
            raise AssertionError("the chat list never ended")
        assert len(seen) == len(set(seen))
        if bumped is None:
            assert seen == expected
        else:
            assert set(expected) - set(seen) <= {bumped}
            assert [i for i in seen if i != bumped] == [i for i in expected if i != bumped]

    @rule(actor=users, limit=LIMITS, data=st.data())
    def walk_my_messages(self, actor: User, limit: int | None, data: st.DataObject) -> None:
        chat_id = data.draw(
            st.none() | st.sampled_from([*self.chat_models, max(self.chat_models, default=0) + 1]),
            label="chat",
        )
        mine = self.chats_of(actor) if chat_id is None else []
        if chat_id is not None and chat_id in self.chat_models:
            chat = self.chat_models[chat_id]
            mine = [chat] if actor.id in chat.member_ids else []  # not mine: empty, no error
        expected = sorted((m for c in mine for m in c.messages), key=lambda m: m.id)

        def read(window: Window) -> Awaitable[Page[Message]]:
            return self.app.chats.my_messages(actor, window, chat_id)

        self.run(self.walk(read, expected, limit))

    @rule(
        actor=users,
        chat_id=chats,
        limit=LIMITS,
        before=st.none() | st.integers(1, 40),
        after=st.none() | st.integers(1, 40),
    )
    def read_any_window(
        self, actor: User, chat_id: int, limit: int | None, before: int | None, after: int | None
    ) -> None:
        model = self.chat_models[chat_id]
        window = Window(limit, before, after)
        read = self.app.chats.chat_messages(actor, chat_id, window)
        if actor.id not in model.member_ids:
            self.fails(NotFound, read)
            return
        assert_page(self.run(read), model.messages, window)
        mine = sorted((m for c in self.chats_of(actor) for m in c.messages), key=lambda m: m.id)
        assert_page(self.run(self.app.chats.my_messages(actor, window)), mine, window)

    # --- what must hold after every step ------------------------------------------------

    @invariant()
    def tokens_work_until_logged_out(self) -> None:
        async def check() -> None:
            for token, user_id in self.tokens:
                if token in self.revoked:
                    with pytest.raises(AuthenticationFailed):
                        await self.app.accounts.authenticate(token)
                else:
                    assert await self.app.accounts.authenticate(token) == self.by_id[user_id]

        self.run(check())

    @invariant()
    def each_user_sees_exactly_their_chats(self) -> None:
        async def check() -> None:
            missing = max(self.chat_models, default=0) + 1
            for user in self.by_id.values():
                mine = sorted(self.chats_of(user), key=ChatModel.activity, reverse=True)
                expected = [self.expected_chat(model) for model in mine]
                page = await self.app.chats.list_chats(user, limit=1000)
                assert list(page.items) == expected
                assert (page.has_older, page.has_newer) == (False, False)
                for model in self.chat_models.values():
                    if user.id in model.member_ids:
                        got = await self.app.chats.get_chat(user, model.id)
                        assert got == self.expected_chat(model)
                    else:
                        with pytest.raises(NotFound):
                            await self.app.chats.get_chat(user, model.id)
                with pytest.raises(NotFound):
                    await self.app.chats.get_chat(user, missing)

        self.run(check())

    @invariant()
    def histories_hold_exactly_the_sent_messages(self) -> None:
        async def check() -> None:
            for model in self.chat_models.values():
                if not model.member_ids:  # deleted
                    continue
                reader = self.by_id[min(model.member_ids)]
                page = await self.app.chats.chat_messages(reader, model.id, Window(1000))
                assert list(page.items) == model.messages
                assert (page.has_older, page.has_newer) == (False, False)

        self.run(check())

    # --- chats that change -----------------------------------------------------------

    def refused(self, actor: User, model: ChatModel, call: Coroutine[Any, Any, object]) -> bool:
        """Runs ``call`` expecting the refusal the actor's place gives (an outsider 404, a
        member 403); True if it was refused."""
        if actor.id not in model.member_ids:
            self.fails(NotFound, call)
            return True
        if actor.id not in model.admins:
            self.fails(Forbidden, call)
            return True
        call.close()
        return False

    def depart(self, model: ChatModel, user_id: int) -> None:
        """The model of a departure: hand-over to the longest-standing, or deletion."""
        model.member_ids -= {user_id}
        model.admins -= {user_id}
        model.joined.remove(user_id)
        model.seq += 1
        if not model.member_ids:
            self.drop(model)
        elif not model.admins:
            model.admins = frozenset({model.joined[0]})
            model.seq += 1

    def forget(self, message: Message) -> None:
        """A deleted message: gone, and its client_id free again."""
        del self.messages[message.id]
        if message.client_id is not None:
            del self.by_client_id[(message.chat_id, message.sender.id, message.client_id)]

    @rule(actor=users, chat_id=chats)
    def leave(self, actor: User, chat_id: int) -> None:
        model = self.chat_models[chat_id]
        call = self.app.membership.leave(actor, chat_id)
        if actor.id not in model.member_ids:
            self.fails(NotFound, call)
            return
        self.run(call)
        self.depart(model, actor.id)

    @rule(actor=users, chat_id=chats, other=users)
    def remove_participant(self, actor: User, chat_id: int, other: User) -> None:
        model = self.chat_models[chat_id]
        if other.id == actor.id:
            return self.leave(actor, chat_id)
        call = self.app.membership.remove_participant(actor, chat_id, other.id)
        if self.refused(actor, model, self.app.membership.remove_participant(actor, chat_id, 0)):
            call.close()
            return None
        if other.id not in model.member_ids:
            self.fails(NotFound, call)
            return None
        self.run(call)
        self.depart(model, other.id)
        return None

    @rule(actor=users, chat_id=chats, other=users)
    def add_participant(self, actor: User, chat_id: int, other: User) -> None:
        model = self.chat_models[chat_id]
        members = ChatMembers(participant_ids=[other.id])
        if self.refused(
            actor, model, self.app.membership.add_participants(actor, chat_id, members)
        ):
            return
        call = self.app.membership.add_participants(actor, chat_id, members)
        if other.id in self.deleted:
            error = self.fails(ValidationFailed, call)
            assert isinstance(error, ValidationFailed)
            assert set(error.fields) == {"participant_ids"}
            return
        chat = self.run(call)
        if other.id not in model.member_ids:
            model.member_ids |= {other.id}
            model.joined.append(other.id)
            model.seq += 1
        assert chat == self.expected_chat(model)

    @rule(actor=users, chat_id=chats, name=CHAT_NAMES)
    def rename(self, actor: User, chat_id: int, name: str) -> None:
        model = self.chat_models[chat_id]
        edit = ChatEdit(name=name)
        if self.refused(actor, model, self.app.membership.update_chat(actor, chat_id, edit)):
            return
        chat = self.run(self.app.membership.update_chat(actor, chat_id, edit))
        if name.strip() != model.name:
            model.name = name.strip()
            model.seq += 1
        assert chat == self.expected_chat(model)

    @rule(actor=users, chat_id=chats, other=users, promote=st.booleans())
    def change_role(self, actor: User, chat_id: int, other: User, promote: bool) -> None:
        model = self.chat_models[chat_id]
        change = self.app.membership.promote if promote else self.app.membership.demote
        if self.refused(actor, model, change(actor, chat_id, other.id)):
            return
        call = change(actor, chat_id, other.id)
        if promote:
            if other.id not in model.member_ids:
                self.fails(ValidationFailed, call)
                return
            changed = other.id not in model.admins
            model.admins |= {other.id}
        else:
            if other.id not in model.admins:
                self.fails(NotFound, call)
                return
            if model.admins == {other.id}:
                error = self.fails(ValidationFailed, call)
                assert isinstance(error, ValidationFailed)
                assert set(error.fields) == {"non_field_errors"}
                return
            changed = True
            model.admins -= {other.id}
        chat = self.run(call)
        model.seq += changed
        assert chat == self.expected_chat(model)

    def pick_message(self, model: ChatModel, data: st.DataObject) -> Message | None:
        if not model.messages:
            return None
        return data.draw(st.sampled_from(model.messages), label="message")

    @rule(actor=users, chat_id=chats, content=CONTENTS, data=st.data())
    def edit_message(self, actor: User, chat_id: int, content: str, data: st.DataObject) -> None:
        model = self.chat_models[chat_id]
        message = self.pick_message(model, data)
        if message is None:
            return
        call = self.app.chats.edit_message(actor, message.id, content)
        if actor.id not in model.member_ids:
            self.fails(NotFound, call)
        elif message.sender.id != actor.id:
            self.fails(Forbidden, call)
        elif bad_content(content):
            self.fails(ValidationFailed, call)
        else:
            edited = self.run(call)
            assert edited == attrs.evolve(
                message, content=content.strip(), edited_at=self.clock.now()
            )
            model.messages[model.messages.index(message)] = edited
            self.messages[message.id] = edited
            if message.client_id is not None:  # a retry now returns the edited message
                self.by_client_id[(chat_id, actor.id, message.client_id)] = edited
            model.seq += 1

    @rule(actor=users, chat_id=chats, data=st.data())
    def delete_message(self, actor: User, chat_id: int, data: st.DataObject) -> None:
        model = self.chat_models[chat_id]
        message = self.pick_message(model, data)
        if message is None:
            return
        call = self.app.chats.delete_message(actor, message.id)
        if actor.id not in model.member_ids:
            self.fails(NotFound, call)
        elif message.sender.id != actor.id and actor.id not in model.admins:
            self.fails(Forbidden, call)
        else:
            self.run(call)
            model.messages.remove(message)
            self.forget(message)
            model.seq += 1

    @rule(actor=users, chat_id=chats, data=st.data())
    def replace_participants(self, actor: User, chat_id: int, data: st.DataObject) -> None:
        """A PATCH with a participant list: exactly those (and the caller) stay, removals
        then additions, each an event; admins who go are admins no more."""
        model = self.chat_models[chat_id]
        wanted = data.draw(
            st.lists(st.sampled_from(sorted(self.by_id)), max_size=4, unique=True), label="wanted"
        )
        edit = ChatEdit(participant_ids=wanted)
        if self.refused(actor, model, self.app.membership.update_chat(actor, chat_id, edit)):
            return
        chat = self.run(self.app.membership.update_chat(actor, chat_id, edit))
        kept = frozenset({actor.id, *wanted})
        gone, new = model.member_ids - kept, sorted(kept - model.member_ids)
        model.member_ids = kept
        model.admins &= kept
        model.joined = [i for i in model.joined if i not in gone] + new
        model.seq += len(gone) + len(new)
        assert chat == self.expected_chat(model)

    @rule(actor=users, chat_id=chats)
    def delete_chat(self, actor: User, chat_id: int) -> None:
        model = self.chat_models[chat_id]
        if self.refused(actor, model, self.app.membership.delete_chat(actor, chat_id)):
            return
        self.run(self.app.membership.delete_chat(actor, chat_id))
        self.drop(model)

    def drop(self, model: ChatModel) -> None:
        """The model of a deleted chat: no members, no history."""
        for message in model.messages:
            self.forget(message)
        model.messages.clear()
        model.member_ids, model.admins, model.joined = frozenset(), frozenset(), []

    def administrator(self) -> User:
        """An admin of the whole service (not in the bundle: no chat of theirs)."""
        if self.root is None:
            self.root = self.sign_up("root")
            del self.by_id[self.root.id]
            self.tokens.pop()  # its session is not the model's
            self.root = self.run(self.app.operator.set_admin("root", True))
        return self.root

    @precondition(lambda self: len(self.by_id) > 1)
    @rule(data=st.data())
    def administrator_deletes_a_user(self, data: st.DataObject) -> None:
        """Their messages go everywhere (a message_deleted each), then they leave every
        chat (member_removed, a hand-over or the chat's deletion), and their tokens."""
        victim = data.draw(st.sampled_from(sorted(self.by_id)), label="victim")
        self.run(self.app.admin.delete_user(self.administrator(), victim))
        for model in self.chat_models.values():
            theirs = [m for m in model.messages if m.sender.id == victim]
            for message in theirs:
                model.messages.remove(message)
                self.forget(message)
            model.seq += len(theirs)
            if victim in model.member_ids:
                self.depart(model, victim)
        del self.by_id[victim]
        self.deleted.add(victim)
        self.revoked |= {token for token, user_id in self.tokens if user_id == victim}

    @rule(chat_id=chats)
    def administrator_deletes_a_chat(self, chat_id: int) -> None:
        model = self.chat_models[chat_id]
        call = self.app.admin.delete_chat(self.administrator(), chat_id)
        if not model.member_ids:  # deleted already
            self.fails(NotFound, call)
            return
        self.run(call)
        self.drop(model)

    @invariant()
    def replay_from_any_seq_is_the_suffix_of_the_stream(self) -> None:
        async def check() -> None:
            for model in self.chat_models.values():
                if not model.member_ids:
                    continue
                reader = self.by_id[min(model.member_ids)]
                full, seq = await self.app.chats.chat_events(reader, model.id, 0, 1000)
                assert seq == model.seq
                assert [e.seq for e in full] == list(range(1, model.seq + 1))
                for since in {0, 1, model.seq // 2, max(0, model.seq - 1), model.seq}:
                    page, _ = await self.app.chats.chat_events(reader, model.id, since, 1000)
                    assert page == full[since:]
                shown = [e.message for e in full if isinstance(e, MessagePosted)]
                assert shown == model.messages  # latest content; deleted ones gone

        self.run(check())


ChatMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=50, deadline=None)
TestChatMachine = ChatMachine.TestCase
