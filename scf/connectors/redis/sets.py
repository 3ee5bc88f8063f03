"""Set and sorted-set operations: sadd, srem, smembers, sismember, scard; zadd, zrange, zrem, zscore,
zincrby.

`smembers` refuses a set of more than `max_items` members (LIMIT_EXCEEDED). `zrange` returns at most
`max_items` members (by rank, or by score with `offset`/`count`) and says `truncated` when more were
there; with `withscores` each member comes as `{"member": ..., "score": ...}`.
"""

from __future__ import annotations

from typing import Any

from scf.connectors.operation_table import IDEMPOTENT_WRITE, READ, NoData
from scf.connectors.redis.bounds import needs_length, window
from scf.connectors.redis.codec import decode
from scf.connectors.redis.context import Context, as_bytes, done, row
from scf.connectors.redis.requests import (
    KeyParameters,
    MemberData,
    MembersData,
    ReadKeyParameters,
    ScoresData,
    ZAddParameters,
    ZIncrByData,
    ZMemberData,
    ZMembersData,
    ZRangeParameters,
)
from scf.schemas.operation import OperationOutcome

# --- sets --------------------------------------------------------------------------------------------


async def run_sadd(c: Context, p: KeyParameters, d: MembersData) -> OperationOutcome:
    members = c.encode_all(d.members, "data.members")
    added = await c.client.sadd(c.keys.key(p.key), *members)
    return done({"added": added}, processed=len(members), affected=added)


async def run_srem(c: Context, p: KeyParameters, d: MembersData) -> OperationOutcome:
    members = c.encode_all(d.members, "data.members")
    removed = await c.client.srem(c.keys.key(p.key), *members)
    return done({"removed": removed}, processed=len(members), affected=removed)


async def run_smembers(c: Context, p: ReadKeyParameters, _: NoData) -> OperationOutcome:
    key = c.keys.key(p.key)
    c.within_max_items(await c.client.scard(key), f"set {p.key!r}")
    raws = await c.client.smembers(key)
    c.within_max_items(len(raws), f"set {p.key!r}")
    members = [decode(as_bytes(raw), c.decode) for raw in raws]
    return done({"members": members}, processed=len(members))


async def run_sismember(c: Context, p: KeyParameters, d: MemberData) -> OperationOutcome:
    member = c.encode(d.member, "data.member")
    found = bool(await c.client.sismember(c.keys.key(p.key), member))  # type: ignore[arg-type]
    return done({"is_member": found}, processed=1)


async def run_scard(c: Context, p: KeyParameters, _: NoData) -> OperationOutcome:
    return done({"count": await c.client.scard(c.keys.key(p.key))})


# --- sorted sets -------------------------------------------------------------------------------------


async def run_zadd(c: Context, p: ZAddParameters, d: ScoresData) -> OperationOutcome:
    mapping = {member.encode(): score for member, score in d.members.items()}
    added = await c.client.zadd(
        c.keys.key(p.key),
        mapping,
        nx=p.nx,
        xx=p.xx,
        gt=p.gt,
        lt=p.lt,
    )
    added_count = int(added or 0)
    return done({"added": added_count}, processed=len(mapping), affected=added_count)


def _bound(value: float | str) -> str:
    return repr(value) if isinstance(value, float) else value


async def run_zrange(c: Context, p: ZRangeParameters, _: NoData) -> OperationOutcome:
    key = c.keys.key(p.key)
    if p.by == "index":
        length = await c.client.zcard(key) if needs_length(p.start, p.stop) else None
        span = window(p.start, p.stop, length, c.max_items)
        limit = c.max_items
        raws: list[Any] = []
        if span is not None:
            raws = list(await c.client.zrange(key, *span, desc=p.reverse, withscores=p.withscores))
    else:
        limit = c.max_items if p.count is None else c.page_size(p.count)
        low, high = _bound(p.min), _bound(p.max)
        start, end = (high, low) if p.reverse else (low, high)
        reply = await c.client.zrange(
            key,
            start,
            end,
            desc=p.reverse,
            withscores=p.withscores,
            byscore=True,
            offset=p.offset,
            num=limit + 1,
        )
        raws = list(reply)
    truncated = len(raws) > limit
    members = [_member(c, item, p.withscores) for item in raws[:limit]]
    return done({"members": members, "truncated": truncated}, processed=len(members))


def _member(c: Context, item: Any, withscores: bool) -> Any:
    if not withscores:
        return decode(as_bytes(item), c.decode)
    member, score = item
    return {"member": decode(as_bytes(member), c.decode), "score": float(score)}


async def run_zrem(c: Context, p: KeyParameters, d: ZMembersData) -> OperationOutcome:
    removed = await c.client.zrem(c.keys.key(p.key), *d.members)
    return done({"removed": removed}, processed=len(d.members), affected=removed)


async def run_zscore(c: Context, p: KeyParameters, d: ZMemberData) -> OperationOutcome:
    score = await c.client.zscore(c.keys.key(p.key), d.member)
    return done({"score": score, "exists": score is not None}, processed=int(score is not None))


async def run_zincrby(c: Context, p: KeyParameters, d: ZIncrByData) -> OperationOutcome:
    score = await c.client.zincrby(c.keys.key(p.key), d.amount, d.member)
    return done({"score": score}, processed=1, affected=1)


ROWS = (
    row("sadd", run_sadd, KeyParameters, MembersData, IDEMPOTENT_WRITE, "add data.members to a set"),
    row("srem", run_srem, KeyParameters, MembersData, IDEMPOTENT_WRITE, "remove data.members from a set"),
    row("smembers", run_smembers, ReadKeyParameters, traits=READ, summary="every member (up to max_items)"),
    row("sismember", run_sismember, KeyParameters, MemberData, READ, "is data.member in the set"),
    row("scard", run_scard, KeyParameters, traits=READ, summary="the set's size"),
    row("zadd", run_zadd, ZAddParameters, ScoresData, IDEMPOTENT_WRITE, "add data.members (member: score)"),
    row("zrange", run_zrange, ZRangeParameters, traits=READ, summary="members by rank or by score"),
    row("zrem", run_zrem, KeyParameters, ZMembersData, IDEMPOTENT_WRITE, "remove data.members"),
    row("zscore", run_zscore, KeyParameters, ZMemberData, READ, "the score of data.member"),
    row("zincrby", run_zincrby, KeyParameters, ZIncrByData, summary="add data.amount to a member's score"),
)
