"""String and key operations, SCAN inside the prefix, and PUBLISH: get/set, mget/mset, delete, exists,
expire, ttl, incr, scan, publish.

TTLs are seconds (decimals allowed, sent as milliseconds). `incr` with a `ttl` sets the expiry only when
the key has none (EXPIRE NX, in the same transaction): the fixed-window counter of a rate limiter.
"""

from __future__ import annotations

from scf.connectors.redis.bounds import scan_cursor
from scf.connectors.redis.codec import decode, decode_many
from scf.connectors.redis.context import Context, Operation, as_bytes, done, milliseconds, operation
from scf.connectors.redis.keys import pattern_problem
from scf.connectors.redis.requests import (
    ExpireData,
    IncrData,
    KeyData,
    KeysData,
    MSetData,
    PublishData,
    ScanData,
    SetData,
)
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome


async def run_get(c: Context, data: KeyData) -> OperationOutcome:
    raw = await c.client.get(c.keys.key(data.key))
    found = raw is not None
    value = decode(as_bytes(raw) if raw is not None else None, c.decode)
    return done({"value": value, "exists": found}, processed=int(found))


async def run_set(c: Context, data: SetData) -> OperationOutcome:
    value = c.encode(data.value, "data.value")
    px = milliseconds(data.ttl) if data.ttl is not None else None
    written = await c.client.set(c.keys.key(data.key), value, px=px, nx=data.nx, xx=data.xx)
    return done({"written": bool(written)}, processed=1, affected=int(bool(written)))


async def run_mget(c: Context, data: KeysData) -> OperationOutcome:
    raws = await c.client.mget(c.keys.keys(data.keys))
    values = decode_many([as_bytes(r) if r is not None else None for r in raws], c.decode)
    found = sum(r is not None for r in raws)
    return done({"values": values}, processed=found)


async def run_mset(c: Context, data: MSetData) -> OperationOutcome:
    mapping = {c.keys.key(k): c.encode(v, f"data.values[{k!r}]") for k, v in data.values.items()}
    await c.client.mset(mapping)
    return done({"written": len(mapping)}, processed=len(mapping), affected=len(mapping))


async def run_delete(c: Context, data: KeysData) -> OperationOutcome:
    deleted = await c.client.delete(*c.keys.keys(data.keys))
    return done({"deleted": deleted}, processed=len(data.keys), affected=deleted)


async def run_exists(c: Context, data: KeysData) -> OperationOutcome:
    count = await c.client.exists(*c.keys.keys(data.keys))
    return done({"exists": count}, processed=len(data.keys))


async def run_expire(c: Context, data: ExpireData) -> OperationOutcome:
    updated = bool(await c.client.pexpire(c.keys.key(data.key), milliseconds(data.ttl)))
    return done({"updated": updated}, processed=1, affected=int(updated))


async def run_ttl(c: Context, data: KeyData) -> OperationOutcome:
    pttl = await c.client.pttl(c.keys.key(data.key))
    exists = pttl != -2
    ttl = pttl / 1000 if pttl >= 0 else None  # -1: no expiry, -2: no such key
    return done({"exists": exists, "ttl": ttl}, processed=int(exists))


async def run_incr(c: Context, data: IncrData) -> OperationOutcome:
    key = c.keys.key(data.key)
    async with c.client.pipeline(transaction=True) as pipe:
        if isinstance(data.amount, int):
            pipe.incrby(key, data.amount)
        else:
            pipe.incrbyfloat(key, data.amount)
        if data.ttl is not None:
            pipe.pexpire(key, milliseconds(data.ttl), nx=True)
        replies = await pipe.execute()
    value = replies[0]
    return done({"value": value}, processed=1, affected=1)


async def run_scan(c: Context, data: ScanData) -> OperationOutcome:
    problem = pattern_problem(data.match)
    if problem is not None:
        raise PermanentError(f"invalid data: match {problem}", code=ErrorCode.INVALID_REQUEST)
    cursor, raws = await c.client.scan(
        scan_cursor(c.page_token), match=c.keys.pattern(data.match), count=data.count, _type=data.type
    )
    keys = [c.keys.strip(as_bytes(raw)) for raw in raws if c.keys.owns(as_bytes(raw))]
    next_token = str(cursor) if cursor else None
    return OperationOutcome(
        records_processed=len(keys), result_data={"keys": keys}, next_page_token=next_token
    )


async def run_publish(c: Context, data: PublishData) -> OperationOutcome:
    message = c.encode(data.message, "data.message")
    receivers = await c.client.publish(c.keys.channel(data.channel), message)
    return done({"receivers": receivers}, processed=1)


OPERATIONS: dict[str, Operation] = {
    "get": operation(KeyData, run_get, reads=True),
    "set": operation(SetData, run_set),
    "mget": operation(KeysData, run_mget, reads=True),
    "mset": operation(MSetData, run_mset),
    "delete": operation(KeysData, run_delete),
    "exists": operation(KeysData, run_exists),
    "expire": operation(ExpireData, run_expire),
    "ttl": operation(KeyData, run_ttl),
    "incr": operation(IncrData, run_incr),
    "scan": operation(ScanData, run_scan),
    "publish": operation(PublishData, run_publish),
}
