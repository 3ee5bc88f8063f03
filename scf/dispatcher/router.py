"""Where a request goes: the routing entry of its connector (cached), a claim of a caller-chosen id.

`Router.operation` and `Router.test` return the `Forward` the dispatcher republishes to `scf.ops`, or
raise the typed error the caller is answered with.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage

from scf.dispatcher.control import parse
from scf.dispatcher.routing import Decoded, deadline_for
from scf.dispatcher.routing_cache import RoutingCache
from scf.fleet import amqp
from scf.fleet.access import ACTING_FOR
from scf.fleet.settings import Settings
from scf.fleet.state import StateStore
from scf.schemas.control import CheckEnvelope, ConnectorRef
from scf.schemas.errors import ConfigurationError, ConnectorError, ErrorCode, PermanentError, ResourceError
from scf.schemas.operation import (
    OperationEnvelope,
    OperationRequest,
    delivery_identity,
    operation_id_in_use,
    owned_identity,
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Claim:
    """A caller-chosen operation id this dispatcher claimed for one request (`identity`)."""

    operation_id: str
    identity: str


class Forward:
    """Settlement: republish to the work queue of `service_type`."""

    def __init__(
        self,
        service_type: str,
        body: bytes,
        message_id: str | None,
        expires_in: float | None = None,
        claim: Claim | None = None,
    ) -> None:
        self.service_type = service_type
        self.body = body
        self.message_id = message_id
        self.expires_in = expires_in  # the request's remaining budget: it dies in the queue after that
        self.claim = claim  # released if the broker refuses the forward


class Router:
    def __init__(self, settings: Settings, state: StateStore, routes: RoutingCache) -> None:
        self.settings = settings
        self.state = state
        self._routes = routes
        # A connector's type rarely changes: guessing it lets one Redis round trip fetch the entry and
        # the live-worker count together (a wrong guess costs one more round trip, never a wrong route).
        self._type_hints: dict[str, str] = {}

    async def operation(
        self, request: OperationRequest, claim_for: AbstractIncomingMessage | None
    ) -> Forward:
        """`claim_for`: the message whose caller chose the operation id; the id is claimed for it, at the
        same time as the route is looked up (a fresh id of our own needs no claim here)."""
        if request.service_name is None:
            raise PermanentError(
                "service_name (or connection_id) is required", code=ErrorCode.INVALID_REQUEST
            )
        claim: Claim | None = None
        cached = self._routes.get(request.service_name, time.time())
        fail_fast = (request.no_worker or self.settings.scf_no_worker) == "fail"
        if claim_for is None:
            entry = await self._routable_entry(request.service_name, fail_fast=fail_fast)
        elif cached is not None:
            # A cached route is routable (only those are cached) and costs no round trip: no need to
            # run the claim beside the lookup (two tasks per request), and nothing to release after.
            entry = await self._routable_entry(request.service_name, fail_fast=fail_fast)
            claim = await self._claim(request, claim_for)
        else:
            both: tuple[Any, Any] = await asyncio.gather(
                self._routable_entry(request.service_name, fail_fast=fail_fast),
                self._claim(request, claim_for),
                return_exceptions=True,
            )
            routed, claimed = both
            claim = claimed if isinstance(claimed, Claim) else None
            if isinstance(routed, BaseException):
                await self.release(claim)  # refused before it existed: the caller may use the id again
                raise routed
            if isinstance(claimed, BaseException):
                raise claimed
            entry = routed
        now = time.time()
        # Not `model_construct`: pydantic's constructor validates in Rust and is faster than it (3.6 against
        # 6.1 us); the validated request inside is kept as it is, not validated again.
        envelope = OperationEnvelope(
            request=request,
            service_type=entry.service_type,
            connector_version=entry.version,
            deadline=deadline_for(request.timeout, self.settings.scf_default_timeout, now),
            accepted_at=now,
        )
        return Forward(
            entry.service_type,
            amqp.encode(envelope),
            request.operation_id,
            expires_in=envelope.deadline - now,
            claim=claim,
        )

    async def _claim(self, request: OperationRequest, message: AbstractIncomingMessage) -> Claim | None:
        """Claim a caller-chosen operation id, so the operation exists (can be cancelled) while queued
        and a second request with the same id is refused before it is forwarded. None: Redis is away
        (the worker claims it again anyway)."""
        assert request.operation_id is not None
        owner = ACTING_FOR.get()  # set by the dispatcher for this request (None: access control off)
        delivery = delivery_identity(message.reply_to, message.correlation_id, request)
        identity = owned_identity(owner.name if owner else None, delivery)
        try:
            ours = await self.state.claim_operation(
                request.operation_id, identity, self.settings.scf_result_ttl
            )
        except ConnectorError as exc:
            log.info("operation_claim_skipped", code=exc.code)
            return None
        if not ours:
            raise operation_id_in_use(request.operation_id)
        return Claim(request.operation_id, identity)

    async def release(self, claim: Claim | None) -> None:
        if claim is None:
            return
        try:
            await self.state.release_operation(claim.operation_id, claim.identity)
        except ConnectorError as exc:
            log.info("operation_release_failed", code=exc.code)

    async def test(self, decoded: Decoded) -> Forward:
        name = parse(ConnectorRef, decoded.body).service_name
        entry = await self._routable_entry(
            name, allow_paused=True, fail_fast=self.settings.scf_no_worker == "fail"
        )
        envelope = CheckEnvelope(
            service_name=name,
            service_type=entry.service_type,
            connector_version=entry.version,
            deadline=time.time() + self.settings.connection_timeout,
        )
        return Forward(entry.service_type, amqp.encode(envelope), None)

    async def _routable_entry(self, name: str, *, allow_paused: bool = False, fail_fast: bool = False) -> Any:
        """The connector's registry entry; with no live worker of its type, NO_WORKER if `fail_fast`,
        else the entry all the same: the request waits in its type's queue (until its deadline) for a
        worker an operator or an autoscaler starts."""
        now = time.time()
        cached = self._routes.get(name, now)
        if cached is not None:
            entry, live = cached.entry, cached.live_workers
        else:
            try:
                entry, live = await self.state.routing_entry(name, self._type_hints.get(name))
            except ConnectorError as exc:
                stale = self._routes.stale(name, now)
                if exc.code != ErrorCode.STATE_UNAVAILABLE or stale is None:
                    raise
                log.info("routing_from_stale_cache", service_name=name)  # Redis is away: route as last seen
                return stale.entry
            self._type_hints[name] = entry.service_type
            self._routes.put(entry, live, now)
        if entry.paused and not allow_paused:
            raise ConfigurationError(f"connector {name!r} is paused", code=ErrorCode.CONNECTOR_PAUSED)
        if live == 0 and fail_fast:
            raise ResourceError(
                f"no live worker serves service type {entry.service_type!r}",
                code=ErrorCode.NO_WORKER,
                retry_after=self.settings.scf_heartbeat_interval,
            )
        if live == 0:
            log.debug("queued_for_absent_worker", service_name=name, service_type=entry.service_type)
        return entry
