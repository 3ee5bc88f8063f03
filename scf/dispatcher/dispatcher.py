"""The dispatcher: consumes `scf.requests`, answers control-plane calls, routes data operations.

Every request gets exactly one settlement: forwarded to `scf.ops` (ack after the broker confirmed the
republish), or answered with a reply (ack after the reply was confirmed). A lost broker connection leaves
the request unacked, so RabbitMQ delivers it again. Where a request goes is `router.py`; the settlement
itself is `scf.fleet.settle.settle`, the same for every role.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractRobustConnection
from pydantic import ValidationError

from scf.connectors.egress import EgressPolicy
from scf.dispatcher.control import ControlPlane, parse
from scf.dispatcher.dead_letter_desk import DeadLetterDesk
from scf.dispatcher.dead_letter_store import DeadLetterStore
from scf.dispatcher.gate import Gate
from scf.dispatcher.health_monitor import HealthMonitor
from scf.dispatcher.router import Forward, Router
from scf.dispatcher.routing import decode
from scf.dispatcher.routing_cache import RoutingCache
from scf.fleet import amqp, tracing
from scf.fleet.access import GRANTS_HEADER, PRINCIPAL_HEADER, VIA_HEADER, AccessControl, acting_for, carried
from scf.fleet.access_store import AccessStore
from scf.fleet.audit import audit, trust_forwarders
from scf.fleet.disposition import GIVE_BACK, SENT, answer_once
from scf.fleet.lifecycle import FleetService
from scf.fleet.metrics import QUEUE_CONSUMERS, QUEUE_DEPTH, REJECTED_TOTAL, REQUESTS_TOTAL
from scf.fleet.quotas import RateLimiter
from scf.fleet.replies import failure_of, failure_reply
from scf.fleet.rpc import RpcClient
from scf.fleet.settings import Settings
from scf.fleet.settle import Settler, settle
from scf.fleet.state import StateStore
from scf.schemas import topology
from scf.schemas.control import MessageType
from scf.schemas.errors import ConnectorError, ErrorCode, PermanentError
from scf.schemas.operation import OperationRequest
from scf.schemas.plugins import known_types

log = structlog.get_logger(__name__)

MAX_REQUEST_BYTES = 16 * 1024 * 1024
DEAD_LETTER_PREFETCH = 16


class Dispatcher(FleetService):
    role = "dispatcher"

    def __init__(self, settings: Settings, state: StateStore, connection: AbstractRobustConnection) -> None:
        super().__init__()
        self.settings = settings
        self.state = state
        self.connection = connection
        self._channel: AbstractChannel | None = None
        self._ops: AbstractExchange | None = None
        self._events: AbstractExchange | None = None
        self.access = AccessControl(settings, AccessStore(state))
        # its own calls (a connection test through a worker) go out under its login, for their principal
        self._rpc = RpcClient(connection, user_id=self.access.own_login)
        trust_forwarders(self.access.forwarders)
        self._routes = RoutingCache(ttl=settings.scf_routing_cache_ttl)
        self.router = Router(settings, state, self._routes)
        self.gate = Gate(self.access, state, RateLimiter(state).charge)
        self._settler: Settler | None = None
        self._background: list[asyncio.Task[None]] = []
        self.control = ControlPlane(
            state,
            self._rpc,
            self._publish_event,
            test_timeout=min(10.0, settings.connection_timeout),
            health_threshold=settings.service_timeout_threshold,
            egress=EgressPolicy.from_settings(settings),
        )

    async def start(self) -> None:
        self._channel = await amqp.open_channel(
            self.connection, prefetch=self.settings.scf_prefetch_dispatcher
        )
        await amqp.declare_topology(self._channel, self.settings.queue_limits)
        self._ops = await self._channel.get_exchange(topology.OPS_EXCHANGE)
        self._events = await self._channel.get_exchange(topology.EVENTS_EXCHANGE)
        self._settler = Settler(self._channel, origin=topology.REQUEST_EXCHANGE)
        await self._rpc.start()
        await self._listen_for_registry_changes()
        await self._open_dead_letter_desk()
        queue = await self._channel.get_queue(topology.REQUEST_QUEUE)
        await self.consume(queue, self._on_request)
        self._background = [asyncio.create_task(self._sample_queues(), name="queue-sampler")]
        if self.settings.scf_health_monitor:
            monitor = HealthMonitor(
                self.state,
                self._rpc,
                self._publish_event,
                interval=self.settings.health_check_interval,
                threshold=self.settings.service_timeout_threshold,
                webhook=self.settings.scf_alert_webhook,
            )
            self._background.append(asyncio.create_task(monitor.run(), name="health-monitor"))
        self._ready = True
        log.info("dispatcher_started")

    async def _open_dead_letter_desk(self) -> None:
        """`scf.dead` on a channel of its own, so a pause there never holds up requests."""
        channel = await amqp.open_channel(self.connection, prefetch=DEAD_LETTER_PREFETCH)
        store = DeadLetterStore(
            self.state,
            ttl=self.settings.scf_dead_letter_ttl,
            max_entries=self.settings.scf_dead_letter_max,
        )
        self.desk = DeadLetterDesk(
            channel,
            store,
            self.state,
            result_ttl=self.settings.scf_result_ttl,
            default_timeout=self.settings.scf_default_timeout,
            delivery_limit=self.settings.scf_delivery_limit,
        )
        self.control.handlers.update(self.desk.handlers)
        dead = await channel.get_queue(topology.DEAD_LETTER_QUEUE)
        await self.consume(dead, self.desk.on_dead, dead_letters_on_reject=False)

    async def _listen_for_registry_changes(self) -> None:
        """Drop cached routes when any dispatcher changes the registry (another replica, say)."""
        assert self._channel is not None and self._events is not None
        queue = await self._channel.declare_queue("", exclusive=True, auto_delete=True)
        await queue.bind(self._events, "connector.#")

        async def on_event(message: AbstractIncomingMessage) -> None:
            self._routes.invalidate(topology.connector_of_event(message.routing_key or ""))

        await queue.consume(on_event, no_ack=True)

    async def _sample_queues(self) -> None:
        """Export the depth of every fleet queue (work queues and the dead letters) to Prometheus."""
        assert self._channel is not None
        names = [topology.REQUEST_QUEUE, topology.DEAD_LETTER_QUEUE]
        names += [topology.work_queue(t) for t in known_types()]
        while True:
            for name in names:
                try:
                    declared = await self._channel.declare_queue(name, passive=True)
                    QUEUE_DEPTH.labels(name).set(declared.declaration_result.message_count or 0)
                    QUEUE_CONSUMERS.labels(name).set(declared.declaration_result.consumer_count or 0)
                except Exception as exc:
                    log.info("queue_sample_failed", queue=name, error=repr(exc))
                    break
            await asyncio.sleep(self.settings.scf_queue_sample_interval)

    async def _close(self) -> None:
        for task in self._background:
            task.cancel()
        await self._rpc.close()
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def _publish_event(self, routing_key: str, body: dict[str, Any]) -> None:
        assert self._events is not None
        self._routes.invalidate(topology.connector_of_event(routing_key))
        message = amqp.build_message(
            amqp.encode(body), message_type="event", correlation_id=None, reply_to=None, persistent=False
        )
        await self._events.publish(message, routing_key, mandatory=False)

    # --- one request ---------------------------------------------------------------------------------

    async def _on_request(self, message: AbstractIncomingMessage) -> None:
        with tracing.consumed("scf.dispatcher", message.type, message.headers):
            await self._handle(message)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        started = time.perf_counter()
        assert self._settler is not None
        if self.settings.scf_unsafe_early_ack:  # the fault suite's negative control, never in production
            await settle(message, SENT, self._settler)
        decision = await self._decide(message)
        reply: bytes | None = None
        disposition = SENT
        if isinstance(decision, Forward):
            try:
                reply = await self._forward(message, decision)
            except Exception as exc:
                # The broker failed us mid-forward: `settle` hands the request back at once.
                log.warning("settle_failed", type=message.type, error=repr(exc))
                disposition = GIVE_BACK
        else:
            reply = decision
        error = None
        if reply is not None:  # a refusal nobody waits for (no reply_to) is kept as a dead letter
            error = failure_of(reply) if not message.reply_to else None
            disposition = answer_once(error, has_reply_to=bool(message.reply_to))
        if not await settle(message, disposition, self._settler, body=reply, error=error):
            return
        if message.type not in AUDIT_QUIET:
            audit(message, started, outcome=_outcome_of(decision), service_name=_service_name_of(message))

    async def _decide(self, message: AbstractIncomingMessage) -> Forward | bytes:
        """Decide the settlement without side effects on the broker: a forward or a reply body."""
        operation_id: str | None = None
        try:
            principal = await self.access.principal_of(message)
            decoded = decode(message.type, message.content_type, message.body, MAX_REQUEST_BYTES)
            await self.gate.admit(principal, message, decoded)
            if decoded.message_type is MessageType.OPERATION_EXECUTE:
                parsed = parse(OperationRequest, decoded.body)  # the one validation of this hop
                request = parsed.with_defaults()
                operation_id = request.operation_id
                chosen = parsed.operation_id is not None
                with acting_for(principal):  # a chosen id is claimed for its owner
                    forward = await self.router.operation(request, message if chosen else None)
            elif decoded.message_type is MessageType.CONNECTOR_TEST:
                forward = await self.router.test(decoded)
            else:
                with acting_for(principal):  # a create's connection test through a worker carries it
                    reply = await self.control.handlers[decoded.message_type](decoded.body)
                REQUESTS_TOTAL.labels(decoded.message_type.value, "answered").inc()
                return amqp.encode(reply)
        except ConnectorError as exc:
            REJECTED_TOTAL.labels(exc.code).inc()
            REQUESTS_TOTAL.labels(message.type or "none", "failed").inc()
            log.info(
                "request_refused", type=message.type, code=exc.code, message=exc.message, detail=exc.detail
            )
            return failure_reply(message, exc, operation_id)
        except Exception:
            log.exception("dispatcher_internal_error", type=message.type)
            internal = PermanentError("internal dispatcher error", code=ErrorCode.INTERNAL)
            return failure_reply(message, internal, operation_id)
        REQUESTS_TOTAL.labels(decoded.message_type.value, "forwarded").inc()
        return forward

    # --- settlement ----------------------------------------------------------------------------------

    async def _forward(self, message: AbstractIncomingMessage, forward: Forward) -> bytes | None:
        """Republish to `scf.ops` (confirmed). Returns a reply body when the broker refused it."""
        assert self._ops is not None
        user_id, headers = carried(
            message.user_id,
            {**_identity_headers(message), amqp.FORWARDED_AT_HEADER: amqp.forwarded_at_value(time.time())},
        )
        tracing.inject(headers)  # the worker's span continues this one
        outgoing = amqp.build_message(
            forward.body,
            message_type=message.type or "",
            correlation_id=message.correlation_id,
            reply_to=message.reply_to,
            message_id=forward.message_id or message.message_id,
            headers=headers,
            expiration=forward.expires_in,
        )
        outgoing.user_id = user_id
        try:
            await amqp.publish(self._ops, outgoing, forward.service_type)
        except (amqp.UnroutableError, amqp.BrokerRefusedError) as exc:
            log.warning("forward_refused", service_type=forward.service_type, code=exc.code)
            await self.router.release(forward.claim)
            return failure_reply(message, exc, forward.message_id)
        return None


#: Reads that would drown the audit trail; operations are audited by the worker that runs them.
AUDIT_QUIET = frozenset(
    {
        MessageType.OPERATION_EXECUTE,
        MessageType.CONNECTOR_LIST,
        MessageType.CONNECTOR_METRICS,
        MessageType.FLEET_METRICS,
        MessageType.OPERATION_RESULT,
        MessageType.CONNECTOR_STATUS,
    }
)


def _identity_headers(message: AbstractIncomingMessage) -> dict[str, Any]:
    """The principal headers of `message` (`carried` keeps them only from a trusted forwarder)."""
    headers = message.headers or {}
    return {k: headers[k] for k in (PRINCIPAL_HEADER, GRANTS_HEADER, VIA_HEADER) if k in headers}


def _outcome_of(decision: Forward | bytes) -> str:
    if isinstance(decision, Forward):
        return "forwarded"
    return "failed" if b'"status":"failed"' in decision[:64] else "ok"


def _service_name_of(message: AbstractIncomingMessage) -> str | None:
    try:
        body = amqp.decode(message.body)
    except (ValueError, RecursionError):
        return None
    name = body.get("service_name") if isinstance(body, dict) else None
    return name if isinstance(name, str) else None


__all__ = ["Dispatcher", "ValidationError"]
