"""Set and sorted-set operations: sadd, srem, smembers, sismember, scard; zadd, zrange, zrem, zscore,
zincrby.

`smembers` refuses a set of more than `max_items` members (LIMIT_EXCEEDED). `zrange` returns at most
`max_items` members (by rank, or by score with `offset`/`count`) and says `truncated` when more were
there; with `withscores` each member comes as `{"member": ..., "score": ...}`.
"""

from __future__ import annotations

from typing import Any

from scf.connectors.redis.bounds import needs_length, window
from scf.connectors.redis.codec import decode
from scf.connectors.redis.context import Context, Operation, as_bytes, done, operation
from scf.connectors.redis.requests import (
    KeyData,
    MemberData,
    MembersData,
    ZAddData,
    ZIncrByData,
    ZMemberData,
    ZMembersData,
    ZRangeData,
)
from scf.schemas.operation import OperationOutcome

# --- sets --------------------------------------------------------------------------------------------


async def run_sadd(c: Context, data: MembersData) -> OperationOutcome:
    members = c.encode_all(data.members, "data.members")
    added = await c.client.sadd(c.keys.key(data.key), *members)
    return done({"added": added}, processed=len(members), affected=added)


async def run_srem(c: Context, data: MembersData) -> OperationOutcome:
    members = c.encode_all(data.members, "data.members")
    removed = await c.client.srem(c.keys.key(data.key), *members)
    return done({"removed": removed}, processed=len(members), affected=removed)


async def run_smembers(c: Context, data: KeyData) -> OperationOutcome:
    key = c.keys.key(data.key)
    c.within_max_items(await c.client.scard(key), f"set {data.key!r}")
    raws = await c.client.smembers(key)
    c.within_max_items(len(raws), f"set {data.key!r}")
    members = [decode(as_bytes(raw), c.decode) for raw in raws]
    return done({"members": members}, processed=len(members))


async def run_sismember(c: Context, data: MemberData) -> OperationOutcome:
    member = c.encode(data.member, "data.member")
    found = bool(await c.client.sismember(c.keys.key(data.key), member))  # type: ignore[arg-type]
    return done({"is_member": found}, processed=1)


async def run_scard(c: Context, data: KeyData) -> OperationOutcome:
    return done({"count": await c.client.scard(c.keys.key(data.key))})


# --- sorted sets -------------------------------------------------------------------------------------


async def run_zadd(c: Context, data: ZAddData) -> OperationOutcome:
    mapping = {member.encode(): score for member, score in data.members.items()}
    added = await c.client.zadd(
        c.keys.key(data.key),
        mapping,
        nx=data.nx,
        xx=data.xx,
        gt=data.gt,
        lt=data.lt,
    )
    added_count = int(added or 0)
    return done({"added": added_count}, processed=len(mapping), affected=added_count)


def _bound(value: float | str) -> str:
    return repr(value) if isinstance(value, float) else value


async def run_zrange(c: Context, data: ZRangeData) -> OperationOutcome:
    key = c.keys.key(data.key)
    if data.by == "index":
        length = await c.client.zcard(key) if needs_length(data.start, data.stop) else None
        span = window(data.start, data.stop, length, c.max_items)
        limit = c.max_items
        raws: list[Any] = []
        if span is not None:
            raws = list(await c.client.zrange(key, *span, desc=data.reverse, withscores=data.withscores))
    else:
        limit = c.max_items if data.count is None else c.page_size(data.count)
        low, high = _bound(data.min), _bound(data.max)
        start, end = (high, low) if data.reverse else (low, high)
        reply = await c.client.zrange(
            key,
            start,
            end,
            desc=data.reverse,
            withscores=data.withscores,
            byscore=True,
            offset=data.offset,
            num=limit + 1,
        )
        raws = list(reply)
    truncated = len(raws) > limit
    members = [_member(c, item, data.withscores) for item in raws[:limit]]
    return done({"members": members, "truncated": truncated}, processed=len(members))


def _member(c: Context, item: Any, withscores: bool) -> Any:
    if not withscores:
        return decode(as_bytes(item), c.decode)
    member, score = item
    return {"member": decode(as_bytes(member), c.decode), "score": float(score)}


async def run_zrem(c: Context, data: ZMembersData) -> OperationOutcome:
    removed = await c.client.zrem(c.keys.key(data.key), *data.members)
    return done({"removed": removed}, processed=len(data.members), affected=removed)


async def run_zscore(c: Context, data: ZMemberData) -> OperationOutcome:
    score = await c.client.zscore(c.keys.key(data.key), data.member)
    return done({"score": score, "exists": score is not None}, processed=int(score is not None))


async def run_zincrby(c: Context, data: ZIncrByData) -> OperationOutcome:
    score = await c.client.zincrby(c.keys.key(data.key), data.amount, data.member)
    return done({"score": score}, processed=1, affected=1)


OPERATIONS: dict[str, Operation] = {
    "sadd": operation(MembersData, run_sadd),
    "srem": operation(MembersData, run_srem),
    "smembers": operation(KeyData, run_smembers, reads=True),
    "sismember": operation(MemberData, run_sismember),
    "scard": operation(KeyData, run_scard),
    "zadd": operation(ZAddData, run_zadd),
    "zrange": operation(ZRangeData, run_zrange, reads=True),
    "zrem": operation(ZMembersData, run_zrem),
    "zscore": operation(ZMemberData, run_zscore),
    "zincrby": operation(ZIncrByData, run_zincrby),
}
