"""Account use cases: register, log in and out, authenticate a token, find users."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import attrs

from .deps import Deps, Policy
from .errors import AuthenticationFailed, Conflict, NotFound, Throttled, ValidationFailed
from .model import NewUser, Page, Revocation, Session, TokenRecord, User, UserChanges
from .paging import forward_page
from .ports import Rule, Tally, UserStore
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
from .throttle import Backoff, bound, longest, take

USERNAME_TAKEN = "A user with that username already exists."
WRONG_PASSWORD = "Your old password was entered incorrectly. Please enter it again."  # noqa: S105
REQUIRED = "This field is required."
ADDRESS_KEY_MAX = 64
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

    async def register(
        self, form: Registration, *, is_admin: bool = False, address: str | None = None
    ) -> Session:
        """Create an account. Sign-ups from one client ``address`` are limited to
        ``registrations_per_address`` an hour; without an address (the command line,
        a library caller) they are not limited."""
        errors = Errors()
        username = check_username(form.username, errors)
        email = check_email(form.email, errors)
        password = check_password(form.password, form.password_confirm, username, errors)
        user_type = check_user_type(form.user_type, errors)
        errors.raise_if_any()
        if address is not None:  # counted once valid: from here on each costs a hash
            policy = self._deps.policy
            await take(
                self._attempts,
                f"register:{_client(address)}",
                policy.registrations_per_address,
                policy.creation_window,
                self._deps.clock.now(),
            )
        password_hash = await self._deps.hasher.hash(password)
        new = NewUser(username, email, user_type, self._deps.clock.now(), is_admin=is_admin)
        try:
            user = await self._users.add(new, password_hash)
        except Conflict:
            raise ValidationFailed.on("username", USERNAME_TAKEN) from None
        return Session(user, await self._issue_token(user))

    async def login(self, username: str, password: str, address: str | None = None) -> Session:
        """Check a username and password; a wrong one of either fails the same way and
        costs the same hashing work.

        Every guess is counted before its hash is checked, in one atomic step of the
        store that also decides whether it may go ahead, so a concurrent burst is
        decided one guess at a time and at most the allowed number are ever hashed.
        Three counts over a sliding ``login_failure_window`` (an hour), of which the
        longest wait applies (a refused guess is not counted):

        - this account from this client address: ``login_free_failures`` (5) at once,
          then each further guess waits ``login_backoff`` (1 s) after the previous one,
          doubling up to ``login_backoff_max`` (15 min). It slows guessing to a few an
          hour and never locks anyone out for longer than that pause.
        - this account from every address: past ``login_failures_per_account`` (100,
          OWASP ASVS v4.0.3 V2.2.1's "no more than 100 failed attempts per hour"), an
          address that has already failed on the account waits until the count drops.
          An address with no failure on it still gets its guess: a stranger's burst
          from elsewhere never stops the owner logging in from an address of their own.
          The price is one guess an hour per further address an attacker controls.
        - this address over every account: ``login_failures_per_address`` (300), against
          one client spraying a common password over many usernames.

        A success is nobody's failure: it is uncounted from the account and the address,
        and clears this client's back-off. It does not clear the others' failures: an
        attacker who logs in to an account of their own must not reset their count,
        and the owner logging in must not hand a stranger a fresh hundred guesses."""
        user = await self.check_credentials(username, password, address)
        return Session(user, await self._issue_token(user))

    async def check_credentials(
        self, username: str, password: str, address: str | None = None
    ) -> User:
        """The password check behind the login throttle (see :meth:`login`): every place
        a password can be guessed goes through here (the admin console's login too)."""
        now = self._deps.clock.now()
        keys = _login_keys(username, address)
        policy = self._deps.policy
        wait = await self._attempts.hit(
            keys, now, policy.login_failure_window, _login_rule(policy, now)
        )
        if wait is not None:
            self._deps.telemetry.login_failed(throttled=True)
            raise Throttled(wait)
        try:
            user = await self._check_password(username, password)  # a failure stays counted
        except AuthenticationFailed:
            self._deps.telemetry.login_failed(throttled=False)
            raise
        await self._attempts.release(keys[1:], now)
        await self._attempts.clear(keys[0])
        return user

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

    async def update_me(
        self, actor: User, token: str, change: AccountChange, address: str | None = None
    ) -> User:
        """Change the actor's own email and/or password. A new password revokes every
        other token and session of theirs (and closes their sockets); the credential
        that made the change stays valid. The current password is checked behind the
        login throttle: a stolen token is no way to guess it faster."""
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
                await self.check_credentials(actor.username, change.current_password, address)
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


def _client(address: str | None) -> str:
    """The address as a key part; cut short so that no header can grow a key (IP
    addresses, v6 with a zone included, are shorter)."""
    return (address or "")[:ADDRESS_KEY_MAX]


def _login_keys(username: str, address: str | None) -> list[str]:
    """This account from this address, this account, and this address if known. The
    name is cut just past the longest valid one: any longer name is equally unknown."""
    account = username_key(username[: USERNAME_MAX + 1])
    client = _client(address)
    keys = [f"login-pair:{len(account)}:{account}:{client}", f"login-account:{account}"]
    if address is not None:
        keys.append(f"login-address:{client}")
    return keys


def _login_rule(policy: Policy, now: datetime) -> Rule:
    """The decision for the keys of :func:`_login_keys` (see :meth:`Accounts.login`)."""
    backoff = Backoff(policy.login_free_failures, policy.login_backoff, policy.login_backoff_max)
    window = policy.login_failure_window

    def rule(tallies: Sequence[Tally]) -> float | None:
        pair, account, *address = tallies
        return longest(
            backoff.wait(pair, now),
            bound(account, policy.login_failures_per_account, window, now) if pair.count else None,
            *(bound(a, policy.login_failures_per_address, window, now) for a in address),
        )

    return rule


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
