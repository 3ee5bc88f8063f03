"""Hash operations: hset, hget, hgetall, hdel, hincrby.

`hgetall` refuses a hash of more than `max_items` fields (LIMIT_EXCEEDED) instead of loading it whole;
field names that are not UTF-8 come back as `$base64:<...>` keys.
"""

from __future__ import annotations

from scf.connectors.operation_table import IDEMPOTENT_WRITE, READ, NoData
from scf.connectors.redis.codec import decode, decode_mapping
from scf.connectors.redis.context import Context, as_bytes, done, row
from scf.connectors.redis.requests import (
    AmountData,
    FieldParameters,
    FieldsParameters,
    KeyParameters,
    MappingData,
    ReadFieldParameters,
    ReadKeyParameters,
)
from scf.schemas.operation import OperationOutcome


async def run_hset(c: Context, p: KeyParameters, d: MappingData) -> OperationOutcome:
    mapping = {f.encode(): c.encode(v, f"data.mapping[{f!r}]") for f, v in d.mapping.items()}
    added = await c.client.hset(c.keys.key(p.key), mapping=mapping)  # type: ignore[arg-type]
    return done({"added": added}, processed=len(mapping), affected=len(mapping))


async def run_hget(c: Context, p: ReadFieldParameters, _: NoData) -> OperationOutcome:
    raw = await c.client.hget(c.keys.key(p.key), p.field)
    value = decode(None if raw is None else as_bytes(raw), c.decode)
    return done({"value": value, "exists": raw is not None}, processed=int(raw is not None))


async def run_hgetall(c: Context, p: ReadKeyParameters, _: NoData) -> OperationOutcome:
    key = c.keys.key(p.key)
    c.within_max_items(await c.client.hlen(key), f"hash {p.key!r}")
    raw = await c.client.hgetall(key)
    c.within_max_items(len(raw), f"hash {p.key!r}")  # it may have grown in between
    fields = decode_mapping({as_bytes(k): as_bytes(v) for k, v in raw.items()}, c.decode)
    return done({"fields": fields, "exists": bool(raw)}, processed=len(fields))


async def run_hdel(c: Context, p: FieldsParameters, _: NoData) -> OperationOutcome:
    deleted = await c.client.hdel(c.keys.key(p.key), *p.fields)
    return done({"deleted": deleted}, processed=len(p.fields), affected=deleted)


async def run_hincrby(c: Context, p: FieldParameters, d: AmountData) -> OperationOutcome:
    key = c.keys.key(p.key)
    if isinstance(d.amount, int):
        value: int | float = await c.client.hincrby(key, p.field, d.amount)
    else:
        value = await c.client.hincrbyfloat(key, p.field, d.amount)
    return done({"value": value}, processed=1, affected=1)


ROWS = (
    row("hset", run_hset, KeyParameters, MappingData, IDEMPOTENT_WRITE, "store data.mapping (field: value)"),
    row("hget", run_hget, ReadFieldParameters, traits=READ, summary="one field of a hash"),
    row("hgetall", run_hgetall, ReadKeyParameters, traits=READ, summary="every field (up to max_items)"),
    row("hdel", run_hdel, FieldsParameters, traits=IDEMPOTENT_WRITE, summary="delete parameters.fields"),
    row("hincrby", run_hincrby, FieldParameters, AmountData, summary="add data.amount to a field"),
)
