"""Paging a list: one page at a time, by the cursor of the last item a client saw, never more than a cap."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sync_service.platform.errors import ServiceError

T = TypeVar("T")


def page_of(items: list[T], cursor_of: Callable[[T], Any], limit: int, after: str | None) -> tuple[list[T], str | None]:
    """(the page's items, the next page's cursor or None): at most `limit` items after the one `after` names.

    The lists are append-only and in a fixed order, so a cursor names the last item a client saw;
    one that names no item is refused (400) rather than guessed.
    """
    start = 0
    if after is not None:
        cursors = [str(cursor_of(i)) for i in items]
        if after not in cursors:
            raise ServiceError(f"after: {after!r} names no item of this list; start again without it")
        start = cursors.index(after) + 1
    page = items[start : start + limit]
    more = start + limit < len(items)
    return page, (str(cursor_of(page[-1])) if more and page else None)


def id_after(after: str | None) -> int | None:
    """A numeric cursor (an id), or None without one; 400 when it is not one."""
    if after is None:
        return None
    if not after.isdigit() or len(after) > 12:
        raise ServiceError(f"after: {after!r} is not a cursor of this list (the `next` of its previous page)")
    return int(after)
