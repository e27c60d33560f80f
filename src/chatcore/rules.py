"""Every input rule of the contract that is not about wire format, as plain functions.

Each ``check_*`` function returns the normalised value or records its messages in an
:class:`Errors` collector, so one request reports every broken field at once (DRF's
400 shape). Messages follow DRF and Django's wording, which existing clients show.
"""

from __future__ import annotations

import difflib
import functools
import gzip
import re
import unicodedata
from collections.abc import Sequence
from importlib import resources

from .errors import ValidationFailed
from .model import UserType

USERNAME_MAX = 150
EMAIL_MAX = 254
PASSWORD_MIN = 8
PASSWORD_MAX = 1024  # hashing cost grows with length; nobody types more
PASSWORD_SIMILARITY = 0.7  # Django's UserAttributeSimilarityValidator default
CONTENT_MAX = 10_000
CHAT_NAME_MAX = 255
CLIENT_ID_MAX = 64
PAGE_DEFAULT = 100
PAGE_MAX = 1000
SEARCH_MAX = USERNAME_MAX
MAX_ID = 2**63 - 1  # ids are 64-bit signed integers in every store

USERNAME_PATTERN = re.compile(r"[\w.@+-]+")
_EMAIL_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_EMAIL_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"  # no hyphen at either end
# local@label.label...tld, the top-level label letters only. Written without lookarounds
# and in the regex syntax Python and ECMA-262 share, so the OpenAPI document states it
# as it stands (the length limit is checked apart: EMAIL_MAX).
EMAIL_PATTERN = re.compile(
    rf"{_EMAIL_ATOM}(?:\.{_EMAIL_ATOM})*@(?:{_EMAIL_LABEL}\.)+[A-Za-z]{{2,63}}"
)

BLANK = "This field may not be blank."
PASSWORD_COMMON = "This password is too common."  # noqa: S105 - a message
PASSWORD_SIMILAR = "The password is too similar to the username."  # noqa: S105 - a message
PASSWORD_MISMATCH = "Passwords do not match."  # noqa: S105 - a message
TOO_MANY = "Ensure this field has no more than {} elements."


class Errors:
    """Collects per-field messages; ``raise_if_any`` turns them into one ValidationFailed."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.fields.setdefault(field, []).append(message)

    def raise_if_any(self) -> None:
        if self.fields:
            raise ValidationFailed(self.fields)


INVALID_TEXT = "Enter text without unpaired surrogate characters."
# DRF's CharField refuses NUL with this message; PostgreSQL's text cannot hold it either.
NUL_TEXT = "Null characters are not allowed."


def is_text(value: str) -> bool:
    """Whether the string is real Unicode text: JSON can carry lone surrogates
    (\\ud800) that no UTF-8 store, hash or socket accepts."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def too_long(limit: int) -> str:
    return f"Ensure this field has no more than {limit} characters."


def username_key(username: str) -> str:
    """The form under which usernames are compared: two names with one key are one user."""
    return unicodedata.normalize("NFKC", username).casefold()


def check_username(value: str, errors: Errors, field: str = "username") -> str:
    if not value:
        errors.add(field, BLANK)
    elif len(value) > USERNAME_MAX:
        errors.add(field, too_long(USERNAME_MAX))
    elif not USERNAME_PATTERN.fullmatch(value):
        errors.add(
            field,
            "Enter a valid username. This value may contain only letters, numbers, "
            "and @/./+/-/_ characters.",
        )
    return value


def is_email(value: str) -> bool:
    return len(value) <= EMAIL_MAX and EMAIL_PATTERN.fullmatch(value) is not None


def check_email(value: str | None, errors: Errors) -> str:
    """Optional: absent or blank is stored as "" (as the original did)."""
    email = (value or "").strip()
    if email and not is_email(email):
        errors.add("email", "Enter a valid email address.")
    return email


@functools.cache
def common_passwords() -> frozenset[str]:
    """Django's list of 20,000 common passwords, read once on first use."""
    data = resources.files("chatcore").joinpath("data/common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode().split())


def check_password(password: str, confirm: str, username: str, errors: Errors) -> str:
    if not is_text(password):
        errors.add("password", INVALID_TEXT)
    elif len(password) < PASSWORD_MIN:
        errors.add(
            "password",
            f"This password is too short. It must contain at least {PASSWORD_MIN} characters.",
        )
    if len(password) > PASSWORD_MAX:
        errors.add(
            "password",
            f"This password is too long. It must contain at most {PASSWORD_MAX} characters.",
        )
    elif password.isdigit():
        errors.add("password", "This password is entirely numeric.")
    elif password.lower().strip() in common_passwords():
        errors.add("password", PASSWORD_COMMON)
    elif username and _too_similar(password, username):
        errors.add("password", PASSWORD_SIMILAR)
    if password != confirm:
        errors.add("password_confirm", PASSWORD_MISMATCH)
    return password


def _too_similar(password: str, username: str) -> bool:
    matcher = difflib.SequenceMatcher(a=password.casefold(), b=username.casefold())
    return matcher.quick_ratio() >= PASSWORD_SIMILARITY and matcher.ratio() >= PASSWORD_SIMILARITY


def check_user_type(value: str | None, errors: Errors) -> UserType:
    if value is None:
        return UserType.STUDENT
    try:
        return UserType(value)
    except ValueError:
        errors.add("user_type", f'"{value}" is not a valid choice.')
        return UserType.STUDENT


def check_text(value: str, limit: int, field: str, errors: Errors) -> str:
    """Trimmed text of 1 to ``limit`` characters (content, chat names)."""
    text = value.strip()
    if not is_text(text):
        errors.add(field, INVALID_TEXT)
    elif "\x00" in text:
        errors.add(field, NUL_TEXT)
    elif not text:
        errors.add(field, BLANK)
    elif len(text) > limit:
        errors.add(field, too_long(limit))
    return text


def check_client_id(value: str | None, errors: Errors) -> str | None:
    if value is None:
        return None
    if not is_text(value):
        errors.add("client_id", INVALID_TEXT)
    elif "\x00" in value:
        errors.add("client_id", NUL_TEXT)
    elif not value:
        errors.add("client_id", BLANK)
    elif len(value) > CLIENT_ID_MAX:
        errors.add("client_id", too_long(CLIENT_ID_MAX))
    return value


def check_positive(value: int | None, field: str, errors: Errors) -> int | None:
    """An id, if given: 1 to MAX_ID."""
    if value is not None and value < 1:
        errors.add(field, "Ensure this value is greater than or equal to 1.")
    elif value is not None and value > MAX_ID:
        errors.add(field, f"Ensure this value is less than or equal to {MAX_ID}.")
    return value


def check_limit(value: int | None, errors: Errors) -> int:
    """A page size: the default when absent, 1 to MAX_ID, and above PAGE_MAX treated as
    PAGE_MAX."""
    if value is None:
        return PAGE_DEFAULT
    if value < 1:
        errors.add("limit", "Ensure this value is greater than or equal to 1.")
    elif value > MAX_ID:  # a 64-bit integer, as every integer of the API
        errors.add("limit", f"Ensure this value is less than or equal to {MAX_ID}.")
    return max(1, min(value, PAGE_MAX))


def check_ids(values: Sequence[int], limit: int, field: str, errors: Errors) -> list[int]:
    """Distinct positive ids in first-seen order, at most ``limit`` of them."""
    ids = list(dict.fromkeys(values))
    if len(ids) > limit:
        errors.add(field, TOO_MANY.format(limit))
    for bad in (i for i in ids if not 1 <= i <= MAX_ID):
        errors.add(field, f'Invalid pk "{bad}" - object does not exist.')
    return ids


def check_usernames(values: Sequence[str], limit: int, field: str, errors: Errors) -> list[str]:
    """Distinct usernames (by key) in first-seen order, at most ``limit`` of them."""
    first_by_key: dict[str, str] = {}
    for name in values:
        if not is_text(name):
            errors.add(field, INVALID_TEXT)
            continue
        first_by_key.setdefault(username_key(name), name)
    names = list(first_by_key.values())
    if len(names) > limit:
        errors.add(field, TOO_MANY.format(limit))
    return names
