"""Opaque page tokens of `list_objects`: where the last page ended, bound to the listing they belong to.

A token carries the last key returned (relative to the connector's prefix), whether it was a folder, and
a fingerprint of the listing (bucket, prefix, recursive), so a token is refused for any other listing and
can never point a listing outside the connector's prefix.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass

from scf.schemas.configs.minio import key_problem
from scf.schemas.errors import ErrorCode, PermanentError

TOKEN_VERSION = 1


@dataclass(frozen=True)
class ListPosition:
    """The last entry of the previous page: the next page starts after it (after all of it, if a folder)."""

    after: str
    folder: bool = False


def listing_scope(bucket: str, prefix: str, recursive: bool) -> str:
    """A short fingerprint naming one listing; full object names keep it independent of key spelling."""
    digest = hashlib.sha256("\0".join((bucket, prefix, str(recursive))).encode("utf-8"))
    return digest.hexdigest()[:16]


def encode_list_token(position: ListPosition, scope: str) -> str:
    body = {"v": TOKEN_VERSION, "a": position.after, "d": position.folder, "s": scope}
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_list_token(token: str, scope: str, listing_prefix: str) -> ListPosition:
    """The position a token holds; `permanent` INVALID_REQUEST when it is malformed or not this listing's."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError):
        raise _bad_token("is malformed") from None
    if not isinstance(body, dict) or body.get("v") != TOKEN_VERSION:
        raise _bad_token("is malformed or from another version")
    after, folder = body.get("a"), body.get("d")
    if body.get("s") != scope:
        raise _bad_token("belongs to another listing (bucket, prefix or recursive differ)")
    if not isinstance(after, str) or not isinstance(folder, bool) or key_problem(after) is not None:
        raise _bad_token("is malformed")
    if not after.startswith(listing_prefix):
        raise _bad_token("points outside the listing's prefix")
    return ListPosition(after, folder)


def _bad_token(reason: str) -> PermanentError:
    return PermanentError(f"page_token {reason}", code=ErrorCode.INVALID_REQUEST)
