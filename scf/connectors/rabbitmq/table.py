"""The RabbitMQ operation table: each operation's `data` and `parameters` models, planner and traits.

A handler runs its planner (checks and encoding, before any I/O) and the plan on the connector's link
within the request's budget (`RabbitMQConnector.run`). Old field names live on as deprecated aliases.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from scf.connectors.operation_table import (
    IDEMPOTENT_WRITE,
    READ,
    WRITE,
    Alias,
    Call,
    NoData,
    Operation,
    Traits,
    table,
)
from scf.connectors.rabbitmq import plans
from scf.connectors.rabbitmq.plans import Run
from scf.connectors.rabbitmq.requests import (
    BindParameters,
    ConsumeParameters,
    DeclareExchangeParameters,
    DeclareQueueParameters,
    DeleteExchangeParameters,
    DeleteQueueParameters,
    EnqueueData,
    EnqueueParameters,
    PublishData,
    PublishParameters,
    QueueTarget,
)
from scf.schemas.configs.rabbitmq import RabbitMQConfig
from scf.schemas.operation import OperationOutcome

if TYPE_CHECKING:
    from scf.connectors.rabbitmq.connector import RabbitMQConnector

Planner = Callable[[Call[Any, Any], RabbitMQConfig, float], Run]

#: consume takes messages off the queue (or requeues them): a write, and a page of the queue.
CONSUME = Traits(writes=True, pages=True)
QUEUE_NAME = (Alias("parameters", "name", "parameters", "queue"),)
EXCHANGE_NAME = (Alias("parameters", "name", "parameters", "exchange"),)
CONSUME_ALIASES = (
    *QUEUE_NAME,
    Alias("parameters", "max_messages", "parameters", "page_size"),
    Alias("parameters", "count", "parameters", "page_size"),
)


def _runs(planner: Planner) -> Callable[[RabbitMQConnector, Call[Any, Any]], Awaitable[OperationOutcome]]:
    async def handler(connector: RabbitMQConnector, call: Call[Any, Any]) -> OperationOutcome:
        return await connector.run(call, planner)

    return handler


#: name, planner, data, parameters, traits, summary, aliases
_Spec = tuple[str, Planner, type[Any], type[Any], Traits, str, tuple[Alias, ...]]

SPECS: tuple[_Spec, ...] = (
    (
        "publish",
        plans.plan_publish,
        PublishData,
        PublishParameters,
        WRITE,
        "data.message or data.messages to parameters.exchange with parameters.routing_key (confirmed)",
        (),
    ),
    (
        "enqueue",
        plans.plan_enqueue,
        EnqueueData,
        EnqueueParameters,
        WRITE,
        "data.jobs, persistent, to parameters.queue (created as a quorum queue if missing)",
        QUEUE_NAME,
    ),
    (
        "consume",
        plans.plan_consume,
        NoData,
        ConsumeParameters,
        CONSUME,
        "up to page_size messages from parameters.queue (acked unless ack is false)",
        CONSUME_ALIASES,
    ),
    (
        "declare_queue",
        plans.plan_declare_queue,
        NoData,
        DeclareQueueParameters,
        IDEMPOTENT_WRITE,
        "parameters.queue with durability and allowlisted x- arguments",
        QUEUE_NAME,
    ),
    (
        "declare_exchange",
        plans.plan_declare_exchange,
        NoData,
        DeclareExchangeParameters,
        IDEMPOTENT_WRITE,
        "parameters.exchange of a type (direct, fanout, topic, headers)",
        EXCHANGE_NAME,
    ),
    (
        "delete_exchange",
        plans.plan_delete_exchange,
        NoData,
        DeleteExchangeParameters,
        IDEMPOTENT_WRITE,
        "parameters.exchange (if_unused)",
        EXCHANGE_NAME,
    ),
    (
        "bind",
        plans.plan_bind,
        NoData,
        BindParameters,
        IDEMPOTENT_WRITE,
        "parameters.queue to parameters.exchange with parameters.routing_key",
        (),
    ),
    ("unbind", plans.plan_unbind, NoData, BindParameters, IDEMPOTENT_WRITE, "the binding bind made", ()),
    (
        "delete_queue",
        plans.plan_delete_queue,
        NoData,
        DeleteQueueParameters,
        IDEMPOTENT_WRITE,
        "parameters.queue (if_unused, if_empty)",
        QUEUE_NAME,
    ),
    (
        "purge_queue",
        plans.plan_purge_queue,
        NoData,
        QueueTarget,
        WRITE,
        "drop every ready message of parameters.queue",
        QUEUE_NAME,
    ),
    (
        "queue_stats",
        plans.plan_queue_stats,
        NoData,
        QueueTarget,
        READ,
        "message and consumer counts of parameters.queue",
        QUEUE_NAME,
    ),
)

#: name -> row, as `RabbitMQConnector.operation_table`
RABBITMQ_OPERATIONS = table(
    Operation(name, _runs(planner), data, parameters, traits, summary, aliases)
    for name, planner, data, parameters, traits, summary, aliases in SPECS
)
#: name -> planner (tests plan requests without a broker)
PLANNERS: dict[str, Planner] = {spec[0]: spec[1] for spec in SPECS}
