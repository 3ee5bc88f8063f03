"""Pure bounds: how much a read may return, how long XREAD may block, and what a page token may say.

Index ranges (LRANGE, ZRANGE by rank) return at most `max_items` elements, the first ones of the range
asked for, with `truncated: true` when more were there. XREAD never blocks past the request's budget or
the socket timeout, and never sends BLOCK 0 (which would wait forever).
"""

from __future__ import annotations

import re

from scf.schemas.errors import ErrorCode, PermanentError

_CURSOR = re.compile(r"^\d{1,20}$")
_NEXT_ID = re.compile(r"^\(\d{1,20}-\d{1,20}$")
#: Time kept back from a blocking read to send the reply within the request's deadline.
REPLY_MARGIN_SECONDS = 0.25


def needs_length(start: int, stop: int) -> bool:
    """A window with a negative end can only be placed once the length is known."""
    return start < 0 or stop < 0


def window(start: int, stop: int, length: int | None, limit: int) -> tuple[int, int] | None:
    """Absolute inclusive indexes to fetch: the range asked for, cut to `limit` + 1 elements (the extra
    one tells whether the answer was truncated); None when the range is empty."""
    if needs_length(start, stop):
        if length is None:
            raise ValueError("a range with negative indexes needs the length")
        start = start if start >= 0 else max(0, length + start)
        stop = stop if stop >= 0 else length + stop
    if stop < start:
        return None
    return start, min(stop, start + limit)


def block_ms(requested: int, budget: float | None, socket_timeout: float) -> int | None:
    """Milliseconds XREAD may block: `requested` (0 = as long as allowed) within the budget; None = none."""
    cap = socket_timeout - min(1.0, socket_timeout / 2)  # the reply must arrive before the socket gives up
    if budget is not None:
        cap = min(cap, budget - REPLY_MARGIN_SECONDS)
    cap_ms = int(cap * 1000)
    allowed = cap_ms if requested == 0 else min(requested, cap_ms)
    return allowed if allowed >= 1 else None


def scan_cursor(page_token: str | None) -> int:
    """The SCAN cursor a `page_token` carries (0, a fresh scan, when there is none)."""
    if page_token is None:
        return 0
    if not _CURSOR.match(page_token):
        raise PermanentError("page_token is not a cursor returned by scan", code=ErrorCode.INVALID_REQUEST)
    return int(page_token)


def range_start(page_token: str | None, start: str) -> str:
    """XRANGE's start: the exclusive `(<id>` of a page token, else the start asked for."""
    if page_token is None:
        return start
    if not _NEXT_ID.match(page_token):
        raise PermanentError("page_token is not a token returned by xrange", code=ErrorCode.INVALID_REQUEST)
    return page_token


def next_range_token(last_id: str) -> str:
    return f"({last_id}"
