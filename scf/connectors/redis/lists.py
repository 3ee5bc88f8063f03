"""List operations: lpush, rpush, lpop, rpop, lrange, llen.

`lrange` returns at most `max_items` values, the first ones of the range asked for, with `truncated`
saying whether more were there. A range with a negative end is placed after LLEN, so a list changing
between the two calls may shift it; pops with a `count` above `max_items` are refused.
"""

from __future__ import annotations

from scf.connectors.operation_table import READ, NoData
from scf.connectors.redis.bounds import needs_length, window
from scf.connectors.redis.codec import decode, decode_many
from scf.connectors.redis.context import Context, as_bytes, done, row
from scf.connectors.redis.requests import KeyParameters, PopParameters, RangeParameters, ValuesData
from scf.schemas.operation import OperationOutcome


async def run_lpush(c: Context, p: KeyParameters, d: ValuesData) -> OperationOutcome:
    values = c.encode_all(d.values, "data.values")
    length = await c.client.lpush(c.keys.key(p.key), *values)
    return done({"length": length}, processed=len(values), affected=len(values))


async def run_rpush(c: Context, p: KeyParameters, d: ValuesData) -> OperationOutcome:
    values = c.encode_all(d.values, "data.values")
    length = await c.client.rpush(c.keys.key(p.key), *values)
    return done({"length": length}, processed=len(values), affected=len(values))


async def _pop(c: Context, p: PopParameters, left: bool) -> OperationOutcome:
    key = c.keys.key(p.key)
    if p.count is not None:
        c.within_max_items(p.count, "count")
    raw = await (c.client.lpop(key, p.count) if left else c.client.rpop(key, p.count))
    if p.count is None:
        single = as_bytes(raw) if isinstance(raw, bytes | str) else None
        found = single is not None
        return done(
            {"value": decode(single, c.decode), "exists": found}, processed=int(found), affected=int(found)
        )
    items = raw if isinstance(raw, list) else []
    values = decode_many([as_bytes(item) for item in items], c.decode)
    return done({"values": values}, processed=len(values), affected=len(values))


async def run_lpop(c: Context, p: PopParameters, _: NoData) -> OperationOutcome:
    return await _pop(c, p, left=True)


async def run_rpop(c: Context, p: PopParameters, _: NoData) -> OperationOutcome:
    return await _pop(c, p, left=False)


async def run_lrange(c: Context, p: RangeParameters, _: NoData) -> OperationOutcome:
    key = c.keys.key(p.key)
    length = await c.client.llen(key) if needs_length(p.start, p.stop) else None
    span = window(p.start, p.stop, length, c.max_items)
    raws = [] if span is None else await c.client.lrange(key, *span)
    truncated = len(raws) > c.max_items
    values = decode_many([as_bytes(raw) for raw in raws[: c.max_items]], c.decode)
    return done({"values": values, "truncated": truncated}, processed=len(values))


async def run_llen(c: Context, p: KeyParameters, _: NoData) -> OperationOutcome:
    return done({"length": await c.client.llen(c.keys.key(p.key))})


ROWS = (
    row("lpush", run_lpush, KeyParameters, ValuesData, summary="push data.values at the head"),
    row("rpush", run_rpush, KeyParameters, ValuesData, summary="push data.values at the tail"),
    row("lpop", run_lpop, PopParameters, summary="take one value (or count values) from the head"),
    row("rpop", run_rpop, PopParameters, summary="take one value (or count values) from the tail"),
    row("lrange", run_lrange, RangeParameters, traits=READ, summary="values start..stop (up to max_items)"),
    row("llen", run_llen, KeyParameters, traits=READ, summary="the list's length"),
)
