"""Hash operations: hset, hget, hgetall, hdel, hincrby.

`hgetall` refuses a hash of more than `max_items` fields (LIMIT_EXCEEDED) instead of loading it whole;
field names that are not UTF-8 come back as `$base64:<...>` keys.
"""

from __future__ import annotations

from scf.connectors.redis.codec import decode, decode_mapping
from scf.connectors.redis.context import Context, Operation, as_bytes, done, operation
from scf.connectors.redis.requests import FieldData, FieldsData, HIncrByData, HSetData, KeyData
from scf.schemas.operation import OperationOutcome


async def run_hset(c: Context, data: HSetData) -> OperationOutcome:
    mapping = {f.encode(): c.encode(v, f"data.mapping[{f!r}]") for f, v in data.mapping.items()}
    added = await c.client.hset(c.keys.key(data.key), mapping=mapping)  # type: ignore[arg-type]
    return done({"added": added}, processed=len(mapping), affected=len(mapping))


async def run_hget(c: Context, data: FieldData) -> OperationOutcome:
    raw = await c.client.hget(c.keys.key(data.key), data.field)
    value = decode(None if raw is None else as_bytes(raw), c.decode)
    return done({"value": value, "exists": raw is not None}, processed=int(raw is not None))


async def run_hgetall(c: Context, data: KeyData) -> OperationOutcome:
    key = c.keys.key(data.key)
    c.within_max_items(await c.client.hlen(key), f"hash {data.key!r}")
    raw = await c.client.hgetall(key)
    c.within_max_items(len(raw), f"hash {data.key!r}")  # it may have grown in between
    fields = decode_mapping({as_bytes(k): as_bytes(v) for k, v in raw.items()}, c.decode)
    return done({"fields": fields, "exists": bool(raw)}, processed=len(fields))


async def run_hdel(c: Context, data: FieldsData) -> OperationOutcome:
    deleted = await c.client.hdel(c.keys.key(data.key), *data.fields)
    return done({"deleted": deleted}, processed=len(data.fields), affected=deleted)


async def run_hincrby(c: Context, data: HIncrByData) -> OperationOutcome:
    key = c.keys.key(data.key)
    if isinstance(data.amount, int):
        value: int | float = await c.client.hincrby(key, data.field, data.amount)
    else:
        value = await c.client.hincrbyfloat(key, data.field, data.amount)
    return done({"value": value}, processed=1, affected=1)


OPERATIONS: dict[str, Operation] = {
    "hset": operation(HSetData, run_hset),
    "hget": operation(FieldData, run_hget, reads=True),
    "hgetall": operation(KeyData, run_hgetall, reads=True),
    "hdel": operation(FieldsData, run_hdel),
    "hincrby": operation(HIncrByData, run_hincrby),
}
