"""List operations: lpush, rpush, lpop, rpop, lrange, llen.

`lrange` returns at most `max_items` values, the first ones of the range asked for, with `truncated`
saying whether more were there. A range with a negative end is placed after LLEN, so a list changing
between the two calls may shift it; pops with a `count` above `max_items` are refused.
"""

from __future__ import annotations

from scf.connectors.redis.bounds import needs_length, window
from scf.connectors.redis.codec import decode, decode_many
from scf.connectors.redis.context import Context, Operation, as_bytes, done, operation
from scf.connectors.redis.requests import KeyData, PopData, PushData, RangeData
from scf.schemas.operation import OperationOutcome


async def run_lpush(c: Context, data: PushData) -> OperationOutcome:
    values = c.encode_all(data.values, "data.values")
    length = await c.client.lpush(c.keys.key(data.key), *values)
    return done({"length": length}, processed=len(values), affected=len(values))


async def run_rpush(c: Context, data: PushData) -> OperationOutcome:
    values = c.encode_all(data.values, "data.values")
    length = await c.client.rpush(c.keys.key(data.key), *values)
    return done({"length": length}, processed=len(values), affected=len(values))


async def _pop(c: Context, data: PopData, left: bool) -> OperationOutcome:
    key = c.keys.key(data.key)
    if data.count is not None:
        c.within_max_items(data.count, "count")
    raw = await (c.client.lpop(key, data.count) if left else c.client.rpop(key, data.count))
    if data.count is None:
        single = as_bytes(raw) if isinstance(raw, bytes | str) else None
        found = single is not None
        return done(
            {"value": decode(single, c.decode), "exists": found}, processed=int(found), affected=int(found)
        )
    items = raw if isinstance(raw, list) else []
    values = decode_many([as_bytes(item) for item in items], c.decode)
    return done({"values": values}, processed=len(values), affected=len(values))


async def run_lpop(c: Context, data: PopData) -> OperationOutcome:
    return await _pop(c, data, left=True)


async def run_rpop(c: Context, data: PopData) -> OperationOutcome:
    return await _pop(c, data, left=False)


async def run_lrange(c: Context, data: RangeData) -> OperationOutcome:
    key = c.keys.key(data.key)
    length = await c.client.llen(key) if needs_length(data.start, data.stop) else None
    span = window(data.start, data.stop, length, c.max_items)
    raws = [] if span is None else await c.client.lrange(key, *span)
    truncated = len(raws) > c.max_items
    values = decode_many([as_bytes(raw) for raw in raws[: c.max_items]], c.decode)
    return done({"values": values, "truncated": truncated}, processed=len(values))


async def run_llen(c: Context, data: KeyData) -> OperationOutcome:
    return done({"length": await c.client.llen(c.keys.key(data.key))})


OPERATIONS: dict[str, Operation] = {
    "lpush": operation(PushData, run_lpush),
    "rpush": operation(PushData, run_rpush),
    "lpop": operation(PopData, run_lpop, reads=True),
    "rpop": operation(PopData, run_rpop, reads=True),
    "lrange": operation(RangeData, run_lrange, reads=True),
    "llen": operation(KeyData, run_llen),
}
