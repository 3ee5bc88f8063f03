"""Opaque page tokens for `search`: a point in time, the last hit's sort values and the search's fingerprint.

Paging is `search_after` inside a point in time (PIT), so pages neither skip nor repeat documents while
the index changes, and the PIT's implicit `_shard_doc` tiebreaker makes every sort total. The token is
compressed JSON in URL-safe base64; the fingerprint refuses a token replayed with a different search.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from dataclasses import dataclass
from typing import Any

from scf.schemas.errors import ErrorCode, PermanentError

#: `OperationRequest.page_token` accepts at most this many characters.
MAX_PAGE_TOKEN_CHARS = 4096
TOKEN_VERSION = 1
MAX_SORT_VALUES = 64
_MAX_DECOMPRESSED = 64 * 1024

SortValue = str | int | float | bool | None


@dataclass(frozen=True)
class PageToken:
    pit_id: str
    search_after: tuple[SortValue, ...]
    fingerprint: str


def search_fingerprint(target: str, body: dict[str, Any]) -> str:
    """A short digest of what makes two searches the same result list (not the page size)."""
    canonical = json.dumps([target, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def encode_page_token(token: PageToken) -> str:
    payload = {
        "v": TOKEN_VERSION,
        "pit": token.pit_id,
        "after": list(token.search_after),
        "fp": token.fingerprint,
    }
    packed = zlib.compress(json.dumps(payload, separators=(",", ":")).encode("utf-8"), 9)
    return base64.urlsafe_b64encode(packed).decode("ascii").rstrip("=")


def decode_page_token(text: str, fingerprint: str) -> PageToken:
    """Parse a token and check it belongs to this search; raise `permanent` INVALID_REQUEST otherwise."""
    token = _parse(text)
    if token.fingerprint != fingerprint:
        raise _invalid(
            "page_token belongs to a different search; send the same index, query, sort, _source and "
            "highlight as the first page, or start again without page_token"
        )
    return token


def _parse(text: str) -> PageToken:
    try:
        packed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        inflater = zlib.decompressobj()
        raw = inflater.decompress(packed, _MAX_DECOMPRESSED)
        if inflater.unconsumed_tail:
            raise ValueError("token too large")
        payload = json.loads(raw)
    except (ValueError, binascii.Error, zlib.error):
        raise _invalid("page_token is not a token this connector issued") from None
    if not isinstance(payload, dict) or payload.get("v") != TOKEN_VERSION:
        raise _invalid("page_token is not a token this connector issued")
    pit_id, after, fingerprint = payload.get("pit"), payload.get("after"), payload.get("fp")
    if not (isinstance(pit_id, str) and pit_id and isinstance(fingerprint, str)):
        raise _invalid("page_token is not a token this connector issued")
    if not (
        isinstance(after, list) and 0 < len(after) <= MAX_SORT_VALUES and all(map(_is_sort_value, after))
    ):
        raise _invalid("page_token is not a token this connector issued")
    return PageToken(pit_id=pit_id, search_after=tuple(after), fingerprint=fingerprint)


def _is_sort_value(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _invalid(message: str) -> PermanentError:
    return PermanentError(message, code=ErrorCode.INVALID_REQUEST)
