"""Running a request that carries an idempotency key: exactly one effect, the same answer every time.

The first delivery claims the key and runs; a duplicate (a redelivery, a client retry) gets the stored
result with `replayed: true`; a concurrent duplicate waits for the first one's result, or takes the key
over when its holder stopped heartbeating (the worker died mid-operation), or answers IN_PROGRESS when
its own deadline comes first. If Redis is away, a connector with a durable ledger of its own (PostgreSQL)
runs anyway; any other answers STATE_UNAVAILABLE (retryable) rather than risk a second effect.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog

from scf.fleet.metrics import IDEMPOTENT_REPLAYS_TOTAL
from scf.schemas.errors import ConnectorError, ErrorCode, PermanentError, TransientError
from scf.schemas.operation import OperationRequest, OperationResult, request_digest
from scf.worker.idempotency import Claim, ClaimKind, IdempotencyStore

log = structlog.get_logger(__name__)

#: A claim outlives the deadline by this much, so a slow finish still finds its own marker.
LEASE_MARGIN = 5.0
_POLL_START, _POLL_MAX = 0.05, 0.5


class KeyedRunner:
    def __init__(self, store: IdempotencyStore, owner: str) -> None:
        self.store = store
        self.owner = owner

    async def run(
        self,
        request: OperationRequest,
        deadline: float,
        durable_ledger: bool,
        execute: Callable[[], Awaitable[OperationResult]],
    ) -> OperationResult:
        key, name = request.idempotency_key, request.service_name
        if key is None or name is None:
            return await execute()
        assert request.operation_id is not None
        digest = request_digest(request)
        try:
            claim = await self._claim(name, key, digest, deadline)
        except ConnectorError as exc:
            if durable_ledger:
                log.warning("idempotency_store_unavailable", service_name=name, fallback="ledger")
                return await execute()
            return OperationResult.failed(request.operation_id, exc)
        if claim.kind is ClaimKind.DONE and claim.result is not None:
            IDEMPOTENT_REPLAYS_TOTAL.inc()
            return claim.result.model_copy(update={"replayed": True, "operation_id": request.operation_id})
        if claim.kind is ClaimKind.CONFLICT:
            conflict = PermanentError(
                "this idempotency_key was already used for a different request",
                code=ErrorCode.IDEMPOTENCY_CONFLICT,
            )
            return OperationResult.failed(request.operation_id, conflict)
        if claim.kind is ClaimKind.RUNNING:
            busy = TransientError(
                "another delivery of this idempotency_key is still running; ask again for its result",
                code=ErrorCode.IN_PROGRESS,
                retry_after=1.0,
            )
            return OperationResult.failed(request.operation_id, busy)
        result = await execute()
        await self._settle(name, key, digest, result)
        return result

    async def _claim(self, name: str, key: str, digest: str, deadline: float) -> Claim:
        lease = max(0.0, deadline - time.time()) + LEASE_MARGIN
        poll = _POLL_START
        while True:
            claim = await self.store.claim(name, key, digest, self.owner, lease)
            if claim.kind is not ClaimKind.RUNNING:
                return claim
            holder = claim.holder
            if holder and holder != self.owner and not await self.store.holder_alive(holder):
                if await self.store.take_over(name, key, digest, self.owner, lease, holder):
                    log.info("idempotency_key_taken_over", service_name=name, dead_holder=holder)
                    return Claim(ClaimKind.OWNER)
                continue
            if time.time() + poll >= deadline:
                return claim
            await asyncio.sleep(poll)
            poll = min(_POLL_MAX, poll * 2)

    async def _settle(self, name: str, key: str, digest: str, result: OperationResult) -> None:
        try:
            if result.error is None or not result.error.retryable:
                await self.store.finish(name, key, digest, result)
            else:
                await self.store.release(name, key, self.owner)
        except ConnectorError as exc:
            log.warning("idempotency_record_failed", service_name=name, code=exc.code)
