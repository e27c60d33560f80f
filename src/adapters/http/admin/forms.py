"""Reading the console's query strings and form bodies: every value checked for shape
here (the domain checks the rest), a bad one a :class:`BadInput` that the page shows as
a 400 naming the field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.requests import Request

from chatcore.rules import MAX_ID

from ..ids import parse_id
from ..routes import FORM_FIELDS_MAX, read_body

FORM_TYPE = "application/x-www-form-urlencoded"
PAGE_DIGITS = re.compile(r"[0-9]{1,19}")
CHOICES = {"": None, "yes": True, "no": False}
TEXT_MAX = 4096  # far above any field's own limit, which the domain checks


class BadInput(Exception):
    """Input the console cannot even hand to a use case; ``fields`` as ValidationFailed's."""

    def __init__(self, fields: Mapping[str, list[str]], status: int = 400) -> None:
        self.fields = dict(fields)
        self.status = status
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in self.fields.items()))

    @classmethod
    def on(cls, field: str, message: str, status: int = 400) -> BadInput:
        return cls({field: [message]}, status)


class Fields:
    """The values of a query string or form, one per name (the last given)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._values = dict(pairs)

    def text(self, name: str) -> str:
        value = self._values.get(name, "")
        if len(value) > TEXT_MAX:
            raise BadInput.on(name, f"Ensure this field has no more than {TEXT_MAX} characters.")
        return value

    def flag(self, name: str) -> bool:
        """A checkbox: sent when ticked."""
        return name in self._values

    def choice(self, name: str) -> bool | None:
        """Any / yes / no, as a filter's select sends it."""
        value = self.text(name)
        if value not in CHOICES:
            raise BadInput.on(name, f'"{value}" is not a valid choice.')
        return CHOICES[value]

    def page(self, name: str = "page") -> int:
        value = self.text(name) or "1"
        if not PAGE_DIGITS.fullmatch(value) or not 1 <= int(value) <= MAX_ID:
            raise BadInput.on(name, "Invalid page.")
        return int(value)

    def id(self, name: str) -> int | None:
        value = self.text(name).strip()
        if not value:
            return None
        found = parse_id(value)
        if found is None:
            raise BadInput.on(name, "Enter an id: a whole number from 1.")
        return found

    def names(self, name: str) -> list[str]:
        """Usernames separated by commas or spaces."""
        return [part for part in re.split(r"[\s,]+", self.text(name)) if part]


def query(request: Request) -> Fields:
    try:
        pairs = parse_qsl(request.url.query, keep_blank_values=True, max_num_fields=FORM_FIELDS_MAX)
    except ValueError:
        raise BadInput.on("query", "Too many query parameters.") from None
    return Fields(pairs)


async def form(request: Request, limit: int) -> Fields:
    """The urlencoded body of a console form (413 past ``limit`` bytes, 415 for another
    media type, 400 for one that is not UTF-8); an empty body has no fields."""
    try:
        raw = await read_body(request, limit)
    except HTTPException as exc:
        raise BadInput.on("body", str(exc.detail), exc.status_code) from None
    if not raw:
        return Fields([])  # no field at all (so no CSRF token either)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != FORM_TYPE:
        raise BadInput.on("body", f"Send the form as {FORM_TYPE}.", 415)
    try:
        text = raw.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            max_num_fields=FORM_FIELDS_MAX,
            encoding="utf-8",
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise BadInput.on("body", "The form is not valid UTF-8 form data.") from None
    return Fields(pairs)
