"""The contract's paging rule as a plain model over a list of ids, for the domain tests."""

from __future__ import annotations

from collections.abc import Sequence


def expected_page(
    ids: Sequence[int], limit: int | None, before: int | None, after: int | None
) -> tuple[list[int], bool, bool]:
    """API.md's page over ids (ascending): the newest ``limit`` of the window, or the
    oldest after ``after``; has_older/has_newer say whether ids lie beyond either edge."""
    size = 100 if limit is None else min(limit, 1000)
    window = [i for i in ids if (after is None or i > after) and (before is None or i < before)]
    items = window[:size] if after is not None else window[-size:]
    if items:
        older = any(i < items[0] for i in ids)
        newer = any(i > items[-1] for i in ids)
    else:
        older = after is not None and any(i <= after for i in ids)
        newer = before is not None and any(i >= before for i in ids)
    return items, older, newer
