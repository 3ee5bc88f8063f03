"""Stream operations: xadd, xread, xrange, xlen. An entry is `{"id": "<ms>-<seq>", "fields": {...}}`.

`xread` blocks (`block` ms) at most as long as the request's budget and the socket timeout allow, never
forever. `xrange` pages: when more entries follow, `next_page_token` is the exclusive start `(<last id>`.
"""

from __future__ import annotations

from typing import Any

from scf.connectors.operation_table import PAGED_READ, READ, NoData
from scf.connectors.redis.bounds import block_ms, next_range_token, range_start
from scf.connectors.redis.codec import decode_mapping
from scf.connectors.redis.context import Context, as_bytes, as_text, done, row
from scf.connectors.redis.requests import (
    KeyParameters,
    XAddData,
    XAddParameters,
    XRangeParameters,
    XReadParameters,
)
from scf.schemas.operation import OperationOutcome


def _entry(c: Context, entry: Any) -> dict[str, Any]:
    entry_id, fields = entry
    mapping = {as_bytes(k): as_bytes(v) for k, v in (fields or {}).items()}
    return {"id": as_text(entry_id), "fields": decode_mapping(mapping, c.decode)}


async def run_xadd(c: Context, p: XAddParameters, d: XAddData) -> OperationOutcome:
    fields = {name.encode(): c.encode(value, f"data.fields[{name!r}]") for name, value in d.fields.items()}
    entry_id = await c.client.xadd(
        c.keys.key(p.key),
        fields,  # type: ignore[arg-type]  # bytes field names are fine
        id=p.id,
        maxlen=p.maxlen,
        approximate=p.approximate,
    )
    return done({"id": as_text(entry_id)}, processed=1, affected=1)


async def run_xread(c: Context, p: XReadParameters, _: NoData) -> OperationOutcome:
    count = c.page_size(p.count)
    block = None if p.block is None else block_ms(p.block, c.budget, c.socket_timeout)
    names = {c.keys.key(name): name for name in p.streams}
    streams = {key: p.streams[name] for key, name in names.items()}
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


async def run_xrange(c: Context, p: XRangeParameters, _: NoData) -> OperationOutcome:
    count = c.page_size(p.page_size, "page_size")
    start = range_start(c.page_token, p.start)
    entries = await c.client.xrange(c.keys.key(p.key), min=start, max=p.end, count=count + 1)
    entries = list(entries or [])
    page = [_entry(c, e) for e in entries[:count]]
    more = len(entries) > count
    return OperationOutcome(
        records_processed=len(page),
        result_data={"entries": page},
        next_page_token=next_range_token(page[-1]["id"]) if more and page else None,
    )


async def run_xlen(c: Context, p: KeyParameters, _: NoData) -> OperationOutcome:
    return done({"length": await c.client.xlen(c.keys.key(p.key))})


ROWS = (
    row("xadd", run_xadd, XAddParameters, XAddData, summary="append an entry of data.fields"),
    row("xread", run_xread, XReadParameters, traits=READ, summary="entries after ids, may block a while"),
    row(
        "xrange",
        run_xrange,
        XRangeParameters,
        traits=PAGED_READ,
        summary="entries start..end, paged",
        page_size_was="count",
    ),
    row("xlen", run_xlen, KeyParameters, traits=READ, summary="the stream's length"),
)
