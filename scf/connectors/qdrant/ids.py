"""Point ids: what Qdrant accepts (unsigned 64-bit integers, UUIDs) and deterministic ids for retries.

Integers, integer strings ("42" is 42) and UUIDs are used as they are; any other string becomes a uuid5
of its text, kept in the payload under `_scf_id` and shown back as the id. Without ids, ids derive from
the idempotency key (or operation id) and position, so a redelivered insert overwrites, never duplicates.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scf.schemas.errors import ErrorCode, PermanentError

#: The payload key that keeps a caller's own id when Qdrant could not store it as the point id.
RESERVED_ID_KEY = "_scf_id"
MAX_POINT_ID = 2**64 - 1

# Fixed forever: changing either would change every id derived so far and break redelivery overwrites.
_DERIVED_NAMESPACE = uuid.UUID("6f1d7c2e-4b7a-5c33-9d2e-51a0c0f5e8b1")
_CALLER_NAMESPACE = uuid.UUID("0b9e3c4a-8f6d-5e21-a7c4-2d5f9e8b7a60")
_UNSIGNED = re.compile(r"^(0|[1-9][0-9]{0,19})$")

PointId = int | str


@dataclass(frozen=True)
class ResolvedId:
    """`point_id` is what Qdrant stores; `original` is the caller's text when it could not be used as is."""

    point_id: PointId
    original: str | None = None

    @property
    def public(self) -> PointId:
        return self.original if self.original is not None else self.point_id


def resolve_id(value: PointId) -> ResolvedId:
    """Map one caller id to a Qdrant point id; a negative or too large integer is INVALID_DATA."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PermanentError("point ids must be integers or strings", code=ErrorCode.INVALID_DATA)
    if isinstance(value, int):
        if not 0 <= value <= MAX_POINT_ID:
            raise PermanentError(
                f"integer point ids must be between 0 and {MAX_POINT_ID}, got {value}",
                code=ErrorCode.INVALID_DATA,
            )
        return ResolvedId(value)
    if _UNSIGNED.match(value) and int(value) <= MAX_POINT_ID:
        return ResolvedId(int(value))
    try:
        return ResolvedId(str(uuid.UUID(value)))
    except ValueError:
        return ResolvedId(str(uuid.uuid5(_CALLER_NAMESPACE, value)), original=value)


def derive_id(key: str, index: int) -> str:
    """The id of the `index`-th vector of a write identified by `key` (idempotency key or operation id)."""
    return str(uuid.uuid5(_DERIVED_NAMESPACE, f"{key}:{index}"))


def plain_id(point_id: PointId | uuid.UUID) -> PointId:
    """A point id as JSON holds it (the client may hand back `uuid.UUID` objects)."""
    return str(point_id) if isinstance(point_id, uuid.UUID) else point_id


def public_id(point_id: PointId | uuid.UUID, payload: Mapping[str, Any] | None) -> PointId:
    """The id to show a caller: the one they gave (kept in the payload) or the point id itself."""
    original = (payload or {}).get(RESERVED_ID_KEY)
    return original if isinstance(original, str) else plain_id(point_id)
