"""Account use cases: register, log in and out, authenticate a token, find users."""

from __future__ import annotations

import attrs

from .deps import Deps
from .errors import AuthenticationFailed, Conflict, ValidationFailed
from .model import NewUser, Page, Session, TokenRecord, User
from .rules import (
    PASSWORD_MAX,
    SEARCH_MAX,
    USERNAME_MAX,
    Errors,
    check_email,
    check_limit,
    check_password,
    check_positive,
    check_user_type,
    check_username,
    too_long,
)

USERNAME_TAKEN = "A user with that username already exists."
_DUMMY_PASSWORD = "chatcore: no such user, hash anyway"  # noqa: S105 - not a credential


@attrs.frozen
class Registration:
    """A sign-up request, as the client sends it."""

    username: str
    password: str
    password_confirm: str
    email: str | None = None
    user_type: str | None = None


class Accounts:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._users = deps.storage.users
        self._tokens = deps.storage.tokens
        self._dummy_hash: str | None = None

    async def register(self, form: Registration, *, is_admin: bool = False) -> Session:
        errors = Errors()
        username = check_username(form.username, errors)
        email = check_email(form.email, errors)
        password = check_password(form.password, form.password_confirm, username, errors)
        user_type = check_user_type(form.user_type, errors)
        errors.raise_if_any()
        password_hash = await self._deps.hasher.hash(password)
        new = NewUser(username, email, user_type, self._deps.clock.now(), is_admin=is_admin)
        try:
            user = await self._users.add(new, password_hash)
        except Conflict:
            raise ValidationFailed.on("username", USERNAME_TAKEN) from None
        return Session(user, await self._issue_token(user))

    async def login(self, username: str, password: str) -> Session:
        """Check a username and password; a wrong one of either fails the same way and
        costs the same hashing work."""
        found = None
        if len(username) <= USERNAME_MAX and len(password) <= PASSWORD_MAX:
            found = await self._users.password_hash(username)
        if found is None or not found[0].is_active:
            await self._deps.hasher.verify(await self._dummy(), password)
            raise AuthenticationFailed
        user, password_hash = found
        if not await self._deps.hasher.verify(password_hash, password):
            raise AuthenticationFailed
        if self._deps.hasher.needs_rehash(password_hash):
            await self._users.set_password_hash(user.id, await self._deps.hasher.hash(password))
        return Session(user, await self._issue_token(user))

    async def issue_token(self, user: User) -> str:
        """A further credential for an authenticated user (a browser session, say)."""
        return await self._issue_token(user)

    async def logout(self, token: str) -> None:
        """Revoke this one token; the user's other tokens keep working."""
        await self._tokens.delete(self._deps.tokens.digest(token))

    async def authenticate(self, token: str) -> User:
        digest = self._deps.tokens.digest(token)
        record = await self._tokens.get(digest)
        if record is None:
            raise AuthenticationFailed("Invalid token.")
        if record.expires_at <= self._deps.clock.now():
            await self._tokens.delete(digest)
            raise AuthenticationFailed("Token has expired.")
        user = await self._users.get(record.user_id)
        if user is None or not user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        return user

    async def list_users(
        self, search: str = "", after: int | None = None, limit: int | None = None
    ) -> Page[User]:
        """Users whose username contains ``search`` (ignoring case), in id order."""
        errors = Errors()
        if len(search) > SEARCH_MAX:
            errors.add("search", too_long(SEARCH_MAX))
        check_positive(after, "after", errors)
        size = check_limit(limit, errors)
        errors.raise_if_any()
        rows = await self._users.search(search, after, size + 1)
        has_older = False
        if after is not None:
            first = await self._users.search(search, None, 1)
            has_older = bool(first) and first[0].id <= after
        return Page(tuple(rows[:size]), has_older=has_older, has_newer=len(rows) > size)

    async def _issue_token(self, user: User) -> str:
        token = self._deps.tokens.new()
        now = self._deps.clock.now()
        record = TokenRecord(
            self._deps.tokens.digest(token), user.id, now, now + self._deps.policy.token_ttl
        )
        await self._tokens.add(record)
        return token

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self._deps.hasher.hash(_DUMMY_PASSWORD)
        return self._dummy_hash
