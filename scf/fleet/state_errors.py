"""Redis trouble as the fleet's typed error (`transient` STATE_UNAVAILABLE, never "not found"), and the
text and key helpers every Redis store of the fleet shares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.exceptions import RedisError

from scf.schemas.errors import ErrorCode, TransientError


@asynccontextmanager
async def redis_errors() -> AsyncIterator[None]:
    try:
        yield
    except RedisError as exc:
        raise TransientError(
            "the fleet's state store (Redis) is unavailable",
            code=ErrorCode.STATE_UNAVAILABLE,
            detail=str(exc),
        ) from exc


#: Delete KEYS[1] only while ARGV[1] holds it: a claim or lease that expired may be someone else's now.
_DELETE_IF_HELD = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


async def delete_if_held(redis: Any, key: str, holder: str) -> bool:
    """Give up `key` if `holder` still holds it (one atomic round trip); raises RedisError."""
    return bool(await redis.eval(_DELETE_IF_HELD, 1, key, holder))


def glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def as_text(value: bytes | str | None) -> str:
    """Redis answers str (decode_responses=True); the client's types also allow bytes."""
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def text_map(raw: dict[bytes | str, bytes | str] | dict[str, str]) -> dict[str, str]:
    return {as_text(k): as_text(v) for k, v in raw.items()}
