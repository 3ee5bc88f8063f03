"""Stream operations: xadd, xread, xrange, xlen. An entry is `{"id": "<ms>-<seq>", "fields": {...}}`.

`xread` blocks (`block` ms) at most as long as the request's budget and the socket timeout allow, never
forever. `xrange` pages: when more entries follow, `next_page_token` is the exclusive start `(<last id>`.
"""

from __future__ import annotations

from typing import Any

from scf.connectors.redis.bounds import block_ms, next_range_token, range_start
from scf.connectors.redis.codec import decode_mapping
from scf.connectors.redis.context import Context, Operation, as_bytes, as_text, done, operation
from scf.connectors.redis.requests import KeyData, XAddData, XRangeData, XReadData
from scf.schemas.operation import OperationOutcome


def _entry(c: Context, entry: Any) -> dict[str, Any]:
    entry_id, fields = entry
    mapping = {as_bytes(k): as_bytes(v) for k, v in (fields or {}).items()}
    return {"id": as_text(entry_id), "fields": decode_mapping(mapping, c.decode)}


async def run_xadd(c: Context, data: XAddData) -> OperationOutcome:
    fields = {name.encode(): c.encode(value, f"data.fields[{name!r}]") for name, value in data.fields.items()}
    entry_id = await c.client.xadd(
        c.keys.key(data.key),
        fields,  # type: ignore[arg-type]  # bytes field names are fine
        id=data.id,
        maxlen=data.maxlen,
        approximate=data.approximate,
    )
    return done({"id": as_text(entry_id)}, processed=1, affected=1)


async def run_xread(c: Context, data: XReadData) -> OperationOutcome:
    count = c.page_size(data.count)
    block = None if data.block is None else block_ms(data.block, c.budget, c.socket_timeout)
    names = {c.keys.key(name): name for name in data.streams}
    streams = {key: data.streams[name] for key, name in names.items()}
    reply = await c.client.xread(streams, count=count, block=block)  # type: ignore[arg-type]
    result = {
        names[as_bytes(raw_name)]: [_entry(c, e) for e in entries]
        for raw_name, entries in _stream_replies(reply)
    }
    total = sum(len(entries) for entries in result.values())
    return done({"streams": result}, processed=total)


def _stream_replies(reply: Any) -> list[tuple[Any, Any]]:
    """XREAD's reply as (stream name, entries) pairs: a list under RESP2, a mapping under RESP3."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return list(reply.items())
    return [(name, entries) for name, entries in reply]


async def run_xrange(c: Context, data: XRangeData) -> OperationOutcome:
    count = c.page_size(data.count)
    start = range_start(c.page_token, data.start)
    entries = await c.client.xrange(c.keys.key(data.key), min=start, max=data.end, count=count + 1)
    entries = list(entries or [])
    page = [_entry(c, e) for e in entries[:count]]
    more = len(entries) > count
    return OperationOutcome(
        records_processed=len(page),
        result_data={"entries": page},
        next_page_token=next_range_token(page[-1]["id"]) if more and page else None,
    )


async def run_xlen(c: Context, data: KeyData) -> OperationOutcome:
    return done({"length": await c.client.xlen(c.keys.key(data.key))})


OPERATIONS: dict[str, Operation] = {
    "xadd": operation(XAddData, run_xadd),
    "xread": operation(XReadData, run_xread, reads=True),
    "xrange": operation(XRangeData, run_xrange, reads=True),
    "xlen": operation(KeyData, run_xlen),
}
