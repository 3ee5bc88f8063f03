"""Idempotency keys in the fleet's Redis (`scf:idem:<name>:<key>`): claim, then the stored result.

A worker claims a key before running (`SET NX` of an in-progress marker with a lease that ends after the
request's deadline); finishing stores the result (success, or a failure retrying cannot change) under
the same key for `ttl` seconds, and a retryable failure releases the key. A second delivery or a client
retry with the same key and payload gets the stored result; with another payload, IDEMPOTENCY_CONFLICT.
A marker whose lease ran out (its worker died) can be claimed again: PostgreSQL's own ledger then still
keeps the effect single (see `connectors/postgresql/ledger.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from redis.exceptions import WatchError

from scf.fleet import keys
from scf.fleet.state_errors import redis_errors
from scf.schemas.operation import OperationResult

if TYPE_CHECKING:
    from scf.fleet.state import StateStore


class ClaimKind(StrEnum):
    OWNER = "owner"  # run it
    DONE = "done"  # the result is stored: replay it
    RUNNING = "running"  # another delivery holds the key right now
    CONFLICT = "conflict"  # the key was used for another payload


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    result: OperationResult | None = None
    holder: str | None = None  # who holds a RUNNING key


class IdempotencyStore:
    def __init__(self, state: StateStore, ttl: int) -> None:
        self.redis = state.redis  # the StateStore's one connection: stores never open their own
        self.ttl = ttl

    async def claim(self, name: str, key: str, digest: str, owner: str, lease: float) -> Claim:
        marker = json.dumps({"state": "running", "digest": digest, "owner": owner})
        slot = keys.idempotency(name, key)
        async with redis_errors():
            if await self.redis.set(slot, marker, nx=True, px=max(1, int(lease * 1000))):
                return Claim(ClaimKind.OWNER)
            raw = await self.redis.get(slot)
        if raw is None:  # released or expired between the two calls: try once more
            return await self.claim(name, key, digest, owner, lease)
        held = json.loads(raw)
        if held.get("digest") != digest:
            return Claim(ClaimKind.CONFLICT)
        if held.get("state") == "done":
            return Claim(ClaimKind.DONE, OperationResult.model_validate(held["result"]))
        return Claim(ClaimKind.RUNNING, holder=held.get("owner"))

    async def holder_alive(self, holder: str) -> bool:
        """Is the worker holding a key still heartbeating? (Its heartbeat key expires when it dies.)"""
        async with redis_errors():
            return bool(await self.redis.exists(keys.worker(holder)))

    async def take_over(self, name: str, key: str, digest: str, owner: str, lease: float, dead: str) -> bool:
        """Claim a key whose holder `dead` stopped heartbeating; False if anything changed meanwhile."""
        slot = keys.idempotency(name, key)
        marker = json.dumps({"state": "running", "digest": digest, "owner": owner})
        async with redis_errors(), self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(slot)
                raw = await pipe.get(slot)
                held = json.loads(raw) if raw else {}
                if held.get("state") != "running" or held.get("owner") != dead:
                    return False
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.set(slot, marker, px=max(1, int(lease * 1000)))
                await pipe.execute()
            except WatchError:
                return False
        return True

    async def finish(self, name: str, key: str, digest: str, result: OperationResult) -> None:
        body = {"state": "done", "digest": digest, "result": result.model_dump(mode="json")}
        async with redis_errors():
            await self.redis.set(keys.idempotency(name, key), json.dumps(body), ex=self.ttl)

    async def release(self, name: str, key: str, owner: str) -> None:
        """Drop this owner's in-progress marker (never someone else's, never a stored result)."""
        slot = keys.idempotency(name, key)
        async with redis_errors(), self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(slot)
                raw = await pipe.get(slot)
                held = json.loads(raw) if raw else {}
                if held.get("state") != "running" or held.get("owner") != owner:
                    return
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.delete(slot)
                await pipe.execute()
            except WatchError:
                return  # changed meanwhile: it is no longer ours to drop
