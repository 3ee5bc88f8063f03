"""Sessions: a hash under `<prefix>session:<id>` with a sliding expiry. session_create, session_get,
session_update, session_delete.

Every field is stored as JSON text, so session data round-trips exactly; the reserved field `$ttl`
remembers the session's own lifetime, which `session_get` and `session_update` renew. An update never
brings back a session that expired: it runs under WATCH and writes only if the session still exists.
"""

from __future__ import annotations

import secrets
from typing import Any

from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from scf.connectors.operation_table import IDEMPOTENT_WRITE, WRITE, NoData
from scf.connectors.redis.codec import check_size, decode_text, encode_json, parse_json
from scf.connectors.redis.context import Context, as_bytes, done, row
from scf.connectors.redis.requests import (
    SessionCreateParameters,
    SessionData,
    SessionParameters,
    SessionUpdateData,
    SessionUpdateParameters,
)
from scf.schemas.errors import ErrorCode, TransientError
from scf.schemas.operation import OperationOutcome

TTL_FIELD = b"$ttl"
_WATCH_ATTEMPTS = 10


def new_session_id() -> str:
    return secrets.token_urlsafe(32)  # 256 random bits


def _fields(c: Context, data: dict[str, Any]) -> dict[bytes, bytes]:
    fields = {}
    for name, value in data.items():
        raw = encode_json(value, f"data.data[{name!r}]")
        check_size(raw, f"data.data[{name!r}]", c.config.max_value_bytes)
        fields[name.encode()] = raw
    return fields


def _session_data(raw: dict[bytes, bytes]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, value in raw.items():
        if name == TTL_FIELD:
            continue
        text = decode_text(value)
        data[name.decode("utf-8", "replace")] = parse_json(text) if isinstance(text, str) else text
    return data


async def run_session_create(c: Context, p: SessionCreateParameters, d: SessionData) -> OperationOutcome:
    session_id = new_session_id()
    ttl = p.ttl or c.config.session_ttl
    key = c.keys.session(session_id)
    fields = {**_fields(c, d.data), TTL_FIELD: str(ttl).encode()}
    async with c.client.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
        pipe.expire(key, ttl)
        await pipe.execute()
    return done({"session_id": session_id, "ttl": ttl}, processed=1, affected=1)


async def run_session_get(c: Context, p: SessionParameters, _: NoData) -> OperationOutcome:
    key = c.keys.session(p.session_id)
    raw = {as_bytes(k): as_bytes(v) for k, v in (await c.client.hgetall(key)).items()}
    ttl = _ttl_of(raw, c.config.session_ttl)
    # Renew only what was read: EXPIRE on a session that expired or was deleted meanwhile does nothing.
    found = bool(raw) and bool(await c.client.expire(key, ttl))
    if not found:
        return done({"session_id": p.session_id, "found": False, "data": None})
    return done(
        {"session_id": p.session_id, "found": True, "data": _session_data(raw), "ttl": ttl}, processed=1
    )


def _ttl_of(raw: dict[bytes, bytes], default: int) -> int:
    value = raw.get(TTL_FIELD, b"")
    return int(value) if value.isdigit() and int(value) > 0 else default


async def run_session_update(
    c: Context, p: SessionUpdateParameters, d: SessionUpdateData
) -> OperationOutcome:
    key = c.keys.session(p.session_id)
    fields = _fields(c, d.data)
    async with c.client.pipeline(transaction=True) as pipe:
        for _ in range(_WATCH_ATTEMPTS):
            try:
                ttl = await _update(pipe, key, fields, p.ttl, d.remove, c.config.session_ttl)
            except WatchError:
                continue
            if ttl is None:
                return done({"session_id": p.session_id, "found": False})
            return done({"session_id": p.session_id, "found": True, "ttl": ttl}, processed=1, affected=1)
    raise TransientError(
        "the session kept changing while being updated; try again", code=ErrorCode.QUERY_FAILED
    )


async def _update(
    pipe: Pipeline,
    key: bytes,
    fields: dict[bytes, bytes],
    new_ttl: int | None,
    remove: list[str],
    default_ttl: int,
) -> int | None:
    """One optimistic attempt: WATCH, read the session's TTL, then write in MULTI (WatchError: retry)."""
    await pipe.watch(key)
    current = await pipe.hget(key, TTL_FIELD)
    if current is None:
        await pipe.unwatch()  # type: ignore[no-untyped-call]
        return None
    ttl = new_ttl or _ttl_of({TTL_FIELD: as_bytes(current)}, default_ttl)
    pipe.multi()  # type: ignore[no-untyped-call]
    if fields or new_ttl:
        mapping = {**fields, TTL_FIELD: str(ttl).encode()}
        pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
    if remove:
        pipe.hdel(key, *remove)
    pipe.expire(key, ttl)
    await pipe.execute()
    return ttl


async def run_session_delete(c: Context, p: SessionParameters, _: NoData) -> OperationOutcome:
    deleted = bool(await c.client.delete(c.keys.session(p.session_id)))
    return done({"session_id": p.session_id, "deleted": deleted}, processed=1, affected=int(deleted))


ROWS = (
    row("session_create", run_session_create, SessionCreateParameters, SessionData, WRITE, "a new session"),
    # reading a session renews its expiry: a write (it cannot run on a read-only replica)
    row("session_get", run_session_get, SessionParameters, traits=IDEMPOTENT_WRITE, summary="a session"),
    row(
        "session_update",
        run_session_update,
        SessionUpdateParameters,
        SessionUpdateData,
        IDEMPOTENT_WRITE,
        "merge data.data, drop data.remove",
    ),
    row(
        "session_delete",
        run_session_delete,
        SessionParameters,
        traits=IDEMPOTENT_WRITE,
        summary="end a session",
    ),
)
