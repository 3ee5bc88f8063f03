"""Opaque page tokens for `scroll` and `search`: the next page's offset, bound to the query that produced it.

A token carries the offset (a point id for scroll, a position for search) and a fingerprint of the
collection and query, so a token replayed against another query is refused instead of silently skipping
or repeating points.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from typing import Any

from scf.connectors.qdrant.ids import MAX_POINT_ID, PointId
from scf.schemas.errors import ErrorCode, PermanentError

PAGE_TOKEN_VERSION = 1


def query_fingerprint(collection: str, query_filter: Any) -> str:
    """A short digest of what a scroll reads: the same collection and filter give the same fingerprint."""
    canonical = json.dumps([collection, query_filter], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_page_token(offset: PointId, fingerprint: str) -> str:
    body = {"v": PAGE_TOKEN_VERSION, "o": offset, "q": fingerprint}
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()


def decode_page_token(token: str, fingerprint: str) -> PointId:
    """The offset a token resumes at; INVALID_REQUEST if it is garbled or belongs to another query."""
    try:
        body = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        offset, query = body["o"], body["q"]
        valid = body["v"] == PAGE_TOKEN_VERSION and _is_point_id(offset) and isinstance(query, str)
    except (ValueError, TypeError, KeyError, binascii.Error):
        valid = False
    if not valid:
        raise PermanentError(
            "page_token is not a token this connector issued", code=ErrorCode.INVALID_REQUEST
        )
    if query != fingerprint:
        raise PermanentError(
            "page_token belongs to another collection or filter; repeat the same query with the token",
            code=ErrorCode.INVALID_REQUEST,
        )
    result: PointId = offset
    return result


def _is_point_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 <= value <= MAX_POINT_ID
    if isinstance(value, str):
        try:
            uuid.UUID(value)
        except ValueError:
            return False
        return True
    return False
