"""String and key operations, SCAN inside the prefix, and PUBLISH: get/set, mget/mset, delete, exists,
expire, ttl, incr, scan, publish.

TTLs are seconds (decimals allowed, sent as milliseconds). `incr` with a `ttl` sets the expiry only when
the key has none (EXPIRE NX, in the same transaction): the fixed-window counter of a rate limiter.
"""

from __future__ import annotations

from scf.connectors.operation_table import IDEMPOTENT_WRITE, PAGED_READ, READ, NoData, NoParameters
from scf.connectors.redis.bounds import scan_cursor
from scf.connectors.redis.codec import decode, decode_many
from scf.connectors.redis.context import Context, as_bytes, done, milliseconds, row
from scf.connectors.redis.keys import pattern_problem
from scf.connectors.redis.requests import (
    DEFAULT_PAGE,
    AmountData,
    ExpireParameters,
    IncrParameters,
    KeyParameters,
    KeysParameters,
    MessageData,
    MSetData,
    PublishParameters,
    ReadKeyParameters,
    ReadKeysParameters,
    ScanParameters,
    SetParameters,
    ValueData,
)
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome


async def run_get(c: Context, p: ReadKeyParameters, _: NoData) -> OperationOutcome:
    raw = await c.client.get(c.keys.key(p.key))
    found = raw is not None
    value = decode(as_bytes(raw) if raw is not None else None, c.decode)
    return done({"value": value, "exists": found}, processed=int(found))


async def run_set(c: Context, p: SetParameters, d: ValueData) -> OperationOutcome:
    value = c.encode(d.value, "data.value")
    px = milliseconds(p.ttl) if p.ttl is not None else None
    written = await c.client.set(c.keys.key(p.key), value, px=px, nx=p.nx, xx=p.xx)
    return done({"written": bool(written)}, processed=1, affected=int(bool(written)))


async def run_mget(c: Context, p: ReadKeysParameters, _: NoData) -> OperationOutcome:
    raws = await c.client.mget(c.keys.keys(p.keys))
    values = decode_many([as_bytes(r) if r is not None else None for r in raws], c.decode)
    found = sum(r is not None for r in raws)
    return done({"values": values}, processed=found)


async def run_mset(c: Context, _: NoParameters, d: MSetData) -> OperationOutcome:
    mapping = {c.keys.key(k): c.encode(v, f"data.values[{k!r}]") for k, v in d.values.items()}
    await c.client.mset(mapping)
    return done({"written": len(mapping)}, processed=len(mapping), affected=len(mapping))


async def run_delete(c: Context, p: KeysParameters, _: NoData) -> OperationOutcome:
    deleted = await c.client.delete(*c.keys.keys(p.keys))
    return done({"deleted": deleted}, processed=len(p.keys), affected=deleted)


async def run_exists(c: Context, p: KeysParameters, _: NoData) -> OperationOutcome:
    count = await c.client.exists(*c.keys.keys(p.keys))
    return done({"exists": count}, processed=len(p.keys))


async def run_expire(c: Context, p: ExpireParameters, _: NoData) -> OperationOutcome:
    updated = bool(await c.client.pexpire(c.keys.key(p.key), milliseconds(p.ttl)))
    return done({"updated": updated}, processed=1, affected=int(updated))


async def run_ttl(c: Context, p: KeyParameters, _: NoData) -> OperationOutcome:
    pttl = await c.client.pttl(c.keys.key(p.key))
    exists = pttl != -2
    ttl = pttl / 1000 if pttl >= 0 else None  # -1: no expiry, -2: no such key
    return done({"exists": exists, "ttl": ttl}, processed=int(exists))


async def run_incr(c: Context, p: IncrParameters, d: AmountData) -> OperationOutcome:
    key = c.keys.key(p.key)
    async with c.client.pipeline(transaction=True) as pipe:
        if isinstance(d.amount, int):
            pipe.incrby(key, d.amount)
        else:
            pipe.incrbyfloat(key, d.amount)
        if p.ttl is not None:
            pipe.pexpire(key, milliseconds(p.ttl), nx=True)
        replies = await pipe.execute()
    value = replies[0]
    return done({"value": value}, processed=1, affected=1)


async def run_scan(c: Context, p: ScanParameters, _: NoData) -> OperationOutcome:
    """`page_size` is SCAN's COUNT: a hint of how much work one page does, not an exact size."""
    problem = pattern_problem(p.match)
    if problem is not None:
        raise PermanentError(f"invalid parameters: match {problem}", code=ErrorCode.INVALID_REQUEST)
    cursor, raws = await c.client.scan(
        scan_cursor(c.page_token),
        match=c.keys.pattern(p.match),
        count=p.page_size or DEFAULT_PAGE,
        _type=p.type,
    )
    keys = [c.keys.strip(as_bytes(raw)) for raw in raws if c.keys.owns(as_bytes(raw))]
    next_token = str(cursor) if cursor else None
    return OperationOutcome(
        records_processed=len(keys), result_data={"keys": keys}, next_page_token=next_token
    )


async def run_publish(c: Context, p: PublishParameters, d: MessageData) -> OperationOutcome:
    message = c.encode(d.message, "data.message")
    receivers = await c.client.publish(c.keys.channel(p.channel), message)
    return done({"receivers": receivers}, processed=1)


ROWS = (
    row("get", run_get, ReadKeyParameters, traits=READ, summary="the value of parameters.key"),
    row("set", run_set, SetParameters, ValueData, IDEMPOTENT_WRITE, "store data.value (ttl, nx, xx)"),
    row("mget", run_mget, ReadKeysParameters, traits=READ, summary="the values of parameters.keys"),
    row("mset", run_mset, data=MSetData, traits=IDEMPOTENT_WRITE, summary="store data.values (key: value)"),
    row("delete", run_delete, KeysParameters, traits=IDEMPOTENT_WRITE, summary="delete parameters.keys"),
    row("exists", run_exists, KeysParameters, traits=READ, summary="how many of parameters.keys exist"),
    row("expire", run_expire, ExpireParameters, traits=IDEMPOTENT_WRITE, summary="set a key's ttl"),
    row("ttl", run_ttl, KeyParameters, traits=READ, summary="a key's remaining ttl in seconds"),
    row("incr", run_incr, IncrParameters, AmountData, summary="add data.amount (ttl if the key has none)"),
    row(
        "scan",
        run_scan,
        ScanParameters,
        traits=PAGED_READ,
        summary="keys matching parameters.match",
        page_size_was="count",
    ),
    row("publish", run_publish, PublishParameters, MessageData, summary="publish data.message on a channel"),
)
