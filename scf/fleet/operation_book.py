"""Per-operation state in the fleet's Redis: results, claims, cancel marks and metric tallies.

The part of `StateStore` that the worker and the dispatcher touch for every operation; `StateStore`
(state.py) inherits it, so there is still one object through which the fleet reaches Redis.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import redis.asyncio as aioredis
import structlog

from scf.fleet import keys, latency
from scf.fleet.state_errors import as_text, delete_if_held, glob_escape, redis_errors
from scf.fleet.tally import ConnectorTally
from scf.schemas.errors import ErrorCode, PermanentError, TransientError
from scf.schemas.operation import OperationResult, owner_matches

log = structlog.get_logger(__name__)


class OperationBook:
    """Results, claims and cancel marks of operations (`scf:result:*`, `scf:claim:*`, `scf:cancel:*`)."""

    redis: aioredis.Redis

    async def finish_operation(
        self, service_name: str, result: OperationResult, ttl: int, *, claimed: bool = False
    ) -> None:
        """Store the result and count it in the connector's metrics, in one round trip.

        `claimed`: the caller holds the operation id's claim (a worker that ran it), so its result
        replaces any stored one. Otherwise (a refusal kept as a dead letter, say) the result is stored
        only where none is: a request that reuses an id must not overwrite its owner's result.
        """
        key = keys.metrics(service_name)
        async with redis_errors(), self.redis.pipeline(transaction=False) as pipe:
            pipe.set(keys.result(result.operation_id), result.model_dump_json(), ex=ttl, nx=not claimed)
            pipe.hincrby(key, "total_operations", 1)
            pipe.hincrby(key, "successful_operations" if result.ok else "failed_operations", 1)
            pipe.hincrbyfloat(key, "response_time_sum", result.execution_time)
            histogram = keys.latency(service_name, latency.window_of(time.time()))
            pipe.hincrby(histogram, str(latency.bucket_of(result.execution_time)), 1)
            pipe.expire(histogram, latency.WINDOW_SECONDS * (latency.WINDOWS_PER_MINUTE + 2))
            if result.error is not None:
                pipe.hset(
                    key, mapping={"last_error": result.error.model_dump_json(), "last_error_at": time.time()}
                )
            await pipe.execute()

    async def store_results(self, results: Sequence[tuple[str, bytes]], ttl: int) -> None:
        """Store finished results by the workers that ran them (and hold their ids' claims): each body is
        the reply's own bytes, stored as sent. Many results, one round trip."""
        async with redis_errors(), self.redis.pipeline(transaction=False) as pipe:
            for operation_id, body in results:
                pipe.set(keys.result(operation_id), body, ex=ttl)
            await pipe.execute()

    async def add_tally(self, tallies: Mapping[str, ConnectorTally]) -> None:
        """Add a worker's counts to the connectors' metrics in one round trip (sums: workers add up)."""
        expiry = latency.WINDOW_SECONDS * (latency.WINDOWS_PER_MINUTE + 2)
        async with redis_errors(), self.redis.pipeline(transaction=False) as pipe:
            for name, tally in tallies.items():
                key = keys.metrics(name)
                pipe.hincrby(key, "total_operations", tally.total)
                if tally.successful:
                    pipe.hincrby(key, "successful_operations", tally.successful)
                if tally.failed:
                    pipe.hincrby(key, "failed_operations", tally.failed)
                pipe.hincrbyfloat(key, "response_time_sum", tally.seconds)
                windows = {window for window, _ in tally.histogram}
                for (window, bucket), count in tally.histogram.items():
                    pipe.hincrby(keys.latency(name, window), str(bucket), count)
                for window in windows:
                    pipe.expire(keys.latency(name, window), expiry)
                if tally.last_error is not None:
                    error, at = tally.last_error
                    pipe.hset(key, mapping={"last_error": error, "last_error_at": at})
            await pipe.execute()

    async def cancel_marks(self, limit: int) -> list[str]:
        """The operation ids with a cancel mark (at most `limit`: past that, the caller assumes any)."""
        prefix = keys.cancelled("")
        found: list[str] = []
        async with redis_errors():
            async for key in self.redis.scan_iter(match=f"{glob_escape(prefix)}*", count=1000):
                found.append(as_text(key)[len(prefix) :])
                if len(found) >= limit:
                    break
        return found

    async def claim_operation(self, operation_id: str, identity: str, ttl: int) -> bool:
        """Claim `operation_id` for the request `identity`; False when another request holds it."""
        # One `SET NX GET` (Redis 7): nil when the claim is new (ours), else the holder, left unchanged.
        async with redis_errors():
            holder = await self.redis.set(
                keys.operation_claim(operation_id), identity, nx=True, ex=max(1, ttl), get=True
            )
        return holder is None or (not isinstance(holder, bool) and as_text(holder) == identity)

    async def release_operation(self, operation_id: str, identity: str) -> None:
        """Give up a claim this request holds (it was refused before it was forwarded)."""
        async with redis_errors():
            await delete_if_held(self.redis, keys.operation_claim(operation_id), identity)

    async def begin_operation(self, operation_id: str, identity: str, ttl: int) -> tuple[bool, bool]:
        """Claim `operation_id` for the request `identity` and read its cancel mark, in one round trip.

        Returns (ours, cancelled): `ours` is False when another request holds the id. A redelivery of
        the same request (same identity) finds its own claim and goes on.
        """
        async with redis_errors(), self.redis.pipeline(transaction=False) as pipe:
            pipe.set(keys.operation_claim(operation_id), identity, nx=True, ex=max(1, ttl), get=True)
            pipe.exists(keys.cancelled(operation_id))
            holder, cancelled = await pipe.execute()
        return holder is None or as_text(holder) == identity, bool(cancelled)

    async def cancel(self, operation_id: str, ttl: int, owner: str | None = None) -> bool:
        """Mark a known operation cancelled (a worker that has not started it yet will not run it).
        With `owner` (access control on), only that principal's own operation.

        An id no request holds is refused NOT_FOUND: a mark set in advance would stop whoever uses
        the id next, someone else's request included. For the same reason the mark never outlives the
        claim (the id is free again once it expires), and a finished operation whose claim is gone
        gets no mark at all: nothing is left to stop.

        Returns False for an operation that has already finished (its result is stored: nothing is left
        to stop, though a live claim is still marked, so a redelivery of it does not run again).
        """
        async with redis_errors(), self.redis.pipeline(transaction=False) as pipe:
            pipe.pttl(keys.operation_claim(operation_id))
            pipe.exists(keys.result(operation_id))
            pipe.get(keys.operation_claim(operation_id))
            claim_ms, finished, claim = await pipe.execute()
            if owner is not None and not owner_matches(owner, as_text(claim)):
                claim_ms, finished = -2, 0  # someone else's operation: as unknown to this caller
            if claim_ms == -2 and not finished:
                raise PermanentError(
                    f"no operation {operation_id!r} is running or finished (unknown, or expired)",
                    code=ErrorCode.NOT_FOUND,
                )
            if claim_ms == -2:
                return False
            mark_ms = ttl * 1000 if claim_ms < 0 else min(ttl * 1000, claim_ms)
            await self.redis.set(keys.cancelled(operation_id), "1", px=max(1, mark_ms))
            return not finished

    async def is_cancelled(self, operation_id: str) -> bool:
        async with redis_errors():
            return bool(await self.redis.exists(keys.cancelled(operation_id)))

    async def get_result(self, operation_id: str, owner: str | None = None) -> OperationResult:
        """The stored result; with `owner` (access control on), only if that principal's request holds
        the id (someone else's looks the same as none: RESULT_NOT_FOUND)."""
        async with redis_errors(), self.redis.pipeline(transaction=False) as pipe:
            pipe.get(keys.result(operation_id))
            pipe.get(keys.operation_claim(operation_id))
            raw, claim = await pipe.execute()
        theirs = owner is not None and not owner_matches(owner, as_text(claim))
        if raw is not None and not theirs:
            return OperationResult.model_validate_json(raw)
        if claim is not None and not theirs:
            # The id is held by a request that has not finished: ask again (submit/result, --wait).
            raise TransientError(
                f"operation {operation_id!r} has no result yet (queued or running)",
                code=ErrorCode.IN_PROGRESS,
                retry_after=1.0,
            )
        raise PermanentError(
            f"no stored result for operation {operation_id!r} (unknown, expired, or another caller's)",
            code=ErrorCode.RESULT_NOT_FOUND,
        )


#: Delete a claim only if the given request still holds it (never someone else's).
