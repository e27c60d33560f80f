"""Account use cases: register, log in and out, authenticate a token, find users."""

from __future__ import annotations

import attrs

from .deps import Deps
from .errors import AuthenticationFailed, Conflict, NotFound, Throttled, ValidationFailed
from .model import NewUser, Page, Revocation, Session, TokenRecord, User, UserChanges
from .paging import forward_page
from .ports import UserStore
from .rules import (
    INVALID_TEXT,
    PASSWORD_MAX,
    SEARCH_MAX,
    USERNAME_MAX,
    Errors,
    check_email,
    check_password,
    check_user_type,
    check_username,
    is_text,
    too_long,
    username_key,
)

USERNAME_TAKEN = "A user with that username already exists."
WRONG_PASSWORD = "Your old password was entered incorrectly. Please enter it again."  # noqa: S105
REQUIRED = "This field is required."
_DUMMY_PASSWORD = "chatcore: no such user, hash anyway"  # noqa: S105 - not a credential


@attrs.frozen
class Registration:
    """A sign-up request, as the client sends it."""

    username: str
    password: str
    password_confirm: str
    email: str | None = None
    user_type: str | None = None


@attrs.frozen
class AccountChange:
    """The caller's change to their own account, as the client sends it: a new email,
    and a new password, which needs the current one."""

    email: str | None = None
    password: str | None = None
    current_password: str | None = None


class Accounts:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._users = deps.storage.users
        self._tokens = deps.storage.tokens
        self._attempts = deps.storage.attempts
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

    async def login(self, username: str, password: str, address: str | None = None) -> Session:
        """Check a username and password; a wrong one of either fails the same way and
        costs the same hashing work. Failures are counted per account and per client
        address; past either limit the attempt is refused before any hashing."""
        policy = self._deps.policy
        limits = {
            f"user:{username_key(username[: USERNAME_MAX + 1])}": policy.login_failures_per_account
        }
        if address:
            limits[f"address:{address}"] = policy.login_failures_per_address
        await self._check_throttle(limits)
        try:
            user = await self._check_password(username, password)
        except AuthenticationFailed:
            now = self._deps.clock.now()
            for key in limits:
                await self._attempts.record(key, now, now - policy.login_failure_window)
            raise
        await self._attempts.clear(next(iter(limits)))
        return Session(user, await self._issue_token(user))

    async def _check_throttle(self, limits: dict[str, int]) -> None:
        window = self._deps.policy.login_failure_window
        now = self._deps.clock.now()
        for key, limit in limits.items():
            count, oldest = await self._attempts.since(key, now - window)
            if count >= limit and oldest is not None:
                raise Throttled(max(1.0, (oldest + window - now).total_seconds()))

    async def _check_password(self, username: str, password: str) -> User:
        found = None
        if len(username) <= USERNAME_MAX and is_text(username) and len(password) <= PASSWORD_MAX:
            found = await self._users.password_hash(username)
        if found is None or not found[0].is_active:
            await self._deps.hasher.verify(await self._dummy(), password)
            raise AuthenticationFailed
        user, password_hash = found
        if not await self._deps.hasher.verify(password_hash, password):
            raise AuthenticationFailed
        if self._deps.hasher.needs_rehash(password_hash):
            await self._users.set_password_hash(user.id, await self._deps.hasher.hash(password))
        return user

    async def update_me(self, actor: User, token: str, change: AccountChange) -> User:
        """Change the actor's own email and/or password. A new password revokes every
        other token and session of theirs (and closes their sockets); the credential
        that made the change stays valid."""
        errors = Errors()
        email = None if change.email is None else check_email(change.email, errors)
        if change.password is not None:
            check_password(change.password, change.password, actor.username, errors)
            if change.current_password is None:
                errors.add("current_password", REQUIRED)
        elif change.current_password is not None:
            errors.add("password", REQUIRED)
        errors.raise_if_any()
        if change.password is not None:
            assert change.current_password is not None
            try:
                await self._check_password(actor.username, change.current_password)
            except AuthenticationFailed:
                raise ValidationFailed.on("current_password", WRONG_PASSWORD) from None
            await self.set_password(actor, change.password, keep_token=token)
        if email is None:
            return actor
        updated = await self._users.update(actor.id, UserChanges(email=email))
        if updated is None:  # deleted meanwhile
            raise AuthenticationFailed("User inactive or deleted.")
        return updated

    async def set_password(self, user: User, password: str, keep_token: str | None = None) -> None:
        """Give ``user`` a new password (checked against the password rules) and revoke
        every credential of theirs but ``keep_token``, closing their live connections:
        what a password change, an administrator's reset and ``chatcore changepassword``
        all do."""
        errors = Errors()
        check_password(password, password, user.username, errors)
        errors.raise_if_any()
        keep = None if keep_token is None else self._deps.tokens.digest(keep_token)
        password_hash = await self._deps.hasher.hash(password)
        if not await self._users.change_password(user.id, password_hash, keep):
            raise NotFound
        await self._deps.notifier.revoke(Revocation(user.id, keep_digest=keep))

    async def issue_token(self, user: User) -> str:
        """A further credential for an authenticated user (a browser session, say)."""
        return await self._issue_token(user)

    async def logout(self, token: str) -> None:
        """Revoke this one token; the user's other tokens keep working."""
        digest = self._deps.tokens.digest(token)
        record = await self._tokens.get(digest)
        if record is not None:
            await self._tokens.delete(digest)
            await self._deps.notifier.revoke(Revocation(record.user_id, digest))

    async def authenticate(self, token: str) -> User:
        digest = self._deps.tokens.digest(token)
        found = await self._tokens.holder(digest)
        if found is None:
            raise AuthenticationFailed("Invalid token.")
        record, user = found
        if record.expires_at <= self._deps.clock.now():
            await self._tokens.delete(digest)
            raise AuthenticationFailed("Token has expired.")
        if not user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        return user

    async def list_users(
        self, search: str = "", after: int | None = None, limit: int | None = None
    ) -> Page[User]:
        """Users whose username contains ``search`` (ignoring case), in id order."""
        return await search_users(self._users, search, after, limit)

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


async def search_users(
    users: UserStore, search: str, after: int | None, limit: int | None
) -> Page[User]:
    errors = Errors()
    if len(search) > SEARCH_MAX:
        errors.add("search", too_long(SEARCH_MAX))
    elif not is_text(search):
        errors.add("search", INVALID_TEXT)

    async def fetch(start: int | None, count: int) -> list[User]:
        return await users.search(search, start, count)

    return await forward_page(fetch, after, limit, errors)
