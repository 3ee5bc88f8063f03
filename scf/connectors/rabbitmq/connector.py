"""`RabbitMQConnector`: one AMQP connection of its own per connector, serving eleven operations.

This module owns the connection's life (open, check, close, stats) and runs the plans of `plans.py`
under the request's time budget; the request shapes, name guards, message encoding, channel pool and the
error table live in their own modules.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar

from scf.connectors.base import ErrorRule, PoolStats, ServiceConnector
from scf.connectors.operation_table import Call, Operation
from scf.connectors.rabbitmq.channels import Link
from scf.connectors.rabbitmq.errors import RABBITMQ_ERROR_RULES, classify_amqp, timeout_error
from scf.connectors.rabbitmq.settings import connect_settings
from scf.connectors.rabbitmq.table import RABBITMQ_OPERATIONS, Planner
from scf.schemas.configs.rabbitmq import RabbitMQConfig
from scf.schemas.connection import ServiceConnection, ServiceType
from scf.schemas.errors import ConnectorError
from scf.schemas.operation import OperationOutcome, TestVerdict

#: Seconds an operation may take when the request sets no timeout.
DEFAULT_OPERATION_TIMEOUT = 60.0
#: Exchange every vhost has: a passive declare of it proves a working channel on that vhost.
PROBE_EXCHANGE = "amq.direct"


class RabbitMQConnector(ServiceConnector):
    """RabbitMQ as an output and a processing service: publish (confirmed), consume (basic.get),
    job queues, and queue/exchange/binding management, over aio-pika on its own connection.

    Pub/sub is `declare_exchange` (fanout or topic) + `declare_queue` + `bind` per subscriber, then
    `publish` to the exchange and `consume` from each queue.

    Raises `transient` (unreachable broker, timeouts, closed connections or channels), `resource` (nacks,
    e.g. a full queue with reject-publish; a blocked connection), `permanent` (bad requests and names,
    missing queues or exchanges, unroutable mandatory messages, inequivalent redeclares), `configuration`
    (unknown or refused vhost, TLS trouble) and `security` (refused login, 403, fleet-owned names) errors.
    """

    service_type: ClassVar[ServiceType] = ServiceType.RABBITMQ
    operation_table: ClassVar[Mapping[str, Operation[Any]]] = RABBITMQ_OPERATIONS
    error_rules: ClassVar[tuple[ErrorRule, ...]] = RABBITMQ_ERROR_RULES

    def __init__(self, connection: ServiceConnection) -> None:
        super().__init__(connection)
        self.config: RabbitMQConfig = self.config_of(RabbitMQConfig)
        self._link = Link(
            connect_settings(connection, self.config),
            pool_size=connection.connection_pool_size,
            confirms=self.config.publisher_confirms,
        )

    def translate(self, exc: BaseException) -> ConnectorError:
        if isinstance(exc, TimeoutError):
            return timeout_error(self._link.is_blocked())
        return classify_amqp(exc)

    def pool_stats(self) -> PoolStats:
        pool = self._link.pool
        if pool is None:
            return PoolStats(opened_total=self._link.channels_opened_total)
        return PoolStats(
            size=pool.size,
            in_use=pool.in_use,
            opened_total=self._link.channels_opened_total + pool.opened_total,
        )

    # --- life cycle ---------------------------------------------------------------------------------

    async def _open(self) -> None:
        await self._link.open()

    async def _check(self) -> dict[str, TestVerdict]:
        """Connected and logged in means the vhost admitted the user; a channel that can see the probe
        exchange (the configured default exchange, if any) means it can work there."""
        probe = self.config.default_exchange or PROBE_EXCHANGE
        budget = self.time_left(self.connection.connection_timeout)
        async with asyncio.timeout(budget), self._link.channel() as channel:
            await channel.declare_exchange(probe, passive=True)
        return {"connection_test": "passed", "authentication_test": "passed", "permissions_test": "passed"}

    async def _close(self) -> None:
        await self._link.close()

    # --- operations ---------------------------------------------------------------------------------

    async def run(self, call: Call[Any, Any], planner: Planner) -> OperationOutcome:
        """Plan (check names, encode bodies: before any I/O), then run the plan within the budget."""
        budget = self.time_left(call.request.timeout or DEFAULT_OPERATION_TIMEOUT)
        plan = planner(call, self.config, budget)
        async with asyncio.timeout(budget):
            return await plan(self._link)
