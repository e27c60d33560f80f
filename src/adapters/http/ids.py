"""Ids as they appear in a URL path: the ASCII numerals 1 to MAX_ID, without a sign or
leading zeros. One regular expression says it, so a segment that is not such a numeral
matches no route (404, as an unknown path) however long it is, and ``int()`` never sees
more than 19 digits (Python refuses to convert 4,301 or more, at a cost that grows with
the length)."""

from __future__ import annotations

import re

from starlette.convertors import Convertor, register_url_convertor

from chatcore.rules import MAX_ID


def numerals_up_to(limit: int) -> str:
    """A regular expression that matches exactly the numerals of 1..``limit``: shorter
    ones freely, and ones as long as ``limit`` digit by digit not above it."""
    digits = str(limit)
    width = len(digits)
    alternatives = [f"[1-9][0-9]{{0,{width - 2}}}"] if width > 1 else []
    for i, digit in enumerate(digits):
        low = 1 if i == 0 else 0
        if int(digit) > low:  # same prefix, a smaller digit here, anything after
            rest = width - i - 1
            alternatives.append(f"{digits[:i]}[{low}-{int(digit) - 1}][0-9]{{{rest}}}")
    alternatives.append(digits)
    return "(?:" + "|".join(alternatives) + ")"


ID_REGEX = numerals_up_to(MAX_ID)
_ID = re.compile(ID_REGEX)


def parse_id(text: str) -> int | None:
    """The id a path segment names, or None if it names none."""
    return int(text) if _ID.fullmatch(text) else None


class IdConvertor(Convertor[int]):
    """``{name:id}`` in a route path."""

    regex = ID_REGEX

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        if not 1 <= value <= MAX_ID:
            raise ValueError(f"not an id: {value}")
        return str(value)


CONVERTOR = "id"
# Starlette looks converters up by name in one table when it compiles a route's path;
# registering is idempotent, and happens before id_pattern can build any route.
register_url_convertor(CONVERTOR, IdConvertor())


def id_pattern(path: str) -> str:
    """A route path with every ``{name}`` matched as an id."""
    return re.sub(r"{(\w+)}", rf"{{\1:{CONVERTOR}}}", path)
