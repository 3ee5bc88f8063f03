"""The worker's door (docs/access-control.md): operations are checked where they run.

Every `operation.execute` a worker takes, whether the dispatcher forwarded it or a client published it
straight to `scf.ops` (the fast path), is checked here: `execute:write` on the connector for an operation
whose traits say it writes (or one the table does not know), else `execute:read`. A reference to another
connector (a CSV read through a MinIO connector, a sink into PostgreSQL) needs the caller's right on
that connector too. The quota is charged at the caller's first door (here, for the fast path).
Idempotency keys are scoped to their principal: two callers' equal keys never meet.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

from aio_pika.abc import AbstractIncomingMessage

from scf.connectors.base import ServiceConnector
from scf.fleet.access import ACTING_FOR, AccessControl, forbidden
from scf.fleet.quotas import ConcurrencyLimiter
from scf.schemas.access import Permission, Principal
from scf.schemas.errors import ConnectorError, ErrorCategory, ErrorCode, ErrorInfo, ResourceError
from scf.schemas.operation import OperationRequest, owner_tag

Charge = Callable[[Principal], Awaitable[None]]
#: A slot's lease outlives the deadline by this much (a worker that dies frees it then).
SLOT_LEASE_MARGIN = 5.0


class Door:
    def __init__(
        self,
        access: AccessControl,
        charge: Charge | None = None,
        slots: ConcurrencyLimiter | None = None,
    ) -> None:
        self.access = access
        self.charge = charge
        self.slots = slots

    @asynccontextmanager
    async def slot(self, connector: ServiceConnector, deadline: float) -> AsyncIterator[None]:
        """Hold one of the connector's `max_concurrent_operations` slots while the operation runs,
        waiting for one until the deadline (then CONCURRENCY_LIMITED). Redis away: not limited."""
        limit = connector.connection.max_concurrent_operations
        if limit is None or self.slots is None:
            yield
            return
        name = connector.service_name
        token = await self._wait_for_slot(name, limit, deadline)
        try:
            yield
        finally:
            if token is not None:
                with suppress(ConnectorError):
                    await self.slots.release(name, token)

    async def _wait_for_slot(self, name: str, limit: int, deadline: float) -> str | None:
        assert self.slots is not None
        pause = 0.005
        while True:
            lease = max(1.0, deadline - time.time()) + SLOT_LEASE_MARGIN
            try:
                token = await self.slots.acquire(name, limit, lease=lease)
            except ConnectorError:
                return None  # advisory, as the claims are: Redis trouble must not stop the work
            if token is not None:
                return token
            if time.time() + pause >= deadline:
                raise ResourceError(
                    f"connector {name!r} is at its limit of {limit} concurrent operations",
                    code=ErrorCode.CONCURRENCY_LIMITED,
                    retry_after=pause,
                )
            await asyncio.sleep(pause)
            pause = min(0.1, pause * 2)

    def may_execute(self, principal: Principal | None, service_name: str) -> None:
        """Refuse at once a caller with no execute right at all on the connector (before its existence
        or its type shows)."""
        if principal is None:
            return
        if principal.allows(Permission.EXECUTE_READ, service_name):
            return
        self.access.require(principal, Permission.EXECUTE_WRITE, service_name)

    async def admit(
        self,
        principal: Principal | None,
        message: AbstractIncomingMessage,
        request: OperationRequest,
        connector: ServiceConnector,
    ) -> OperationRequest:
        """The request as it runs for `principal` (its idempotency key scoped), or a typed refusal."""
        if principal is None:
            return request
        assert request.service_name is not None
        self.access.require(principal, needed(connector, request.operation), request.service_name)
        if self.charge is not None and not self.access.forwarded(message):
            await self.charge(principal)
        if request.idempotency_key is None:
            return request
        scoped = f"{owner_tag(principal.name)}:{request.idempotency_key}"
        return request.model_copy(update={"idempotency_key": scoped})

    def may_use(self, service_name: str, permission: Permission) -> None:
        """A connector an operation refers to (its object store, its sink): the caller's right on it."""
        principal = ACTING_FOR.get()
        if principal is not None and not principal.allows(permission, service_name):
            raise forbidden(permission, service_name)


def needed(connector: ServiceConnector, operation: str) -> Permission:
    row = connector.operation_table.get(operation)
    if row is None or row.traits.writes:
        return Permission.EXECUTE_WRITE
    return Permission.EXECUTE_READ


#: Codes of a failed connection: a caller without `connectors:admin` sees them all as one (a closed port
#: must not be told from a silent one, nor from a host that does not resolve).
CONNECTION_CODES = frozenset({ErrorCode.CONNECTION_FAILED, ErrorCode.TIMEOUT})
MASKED = ErrorInfo(
    category=ErrorCategory.TRANSIENT,
    code=ErrorCode.CONNECTION_FAILED,
    message="could not connect to the service",
    retryable=True,
)


def shown_to(principal: Principal | None, error: ErrorInfo | None) -> ErrorInfo | None:
    """`error` as `principal` may see it: connection failures masked unless it has connectors:admin."""
    if error is None or principal is None or error.code not in CONNECTION_CODES:
        return error
    if principal.allows(Permission.CONNECTORS_ADMIN):
        return error
    return MASKED
