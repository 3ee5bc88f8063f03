"""Names and arguments of every exchange and queue (docs/architecture.md), as pure helpers.

Every process declares the same topology from these values, so two processes can never disagree on a
name or an argument (RabbitMQ refuses a redeclaration with different arguments).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REQUEST_EXCHANGE = "scf"
REQUEST_ROUTING_KEY = "requests"
REQUEST_QUEUE = "scf.requests"
OPS_EXCHANGE = "scf.ops"
DEAD_LETTER_EXCHANGE = "scf.dlx"
DEAD_LETTER_QUEUE = "scf.dead"
EVENTS_EXCHANGE = "scf.events"

#: delayed-retry tiers: name -> TTL in milliseconds
RETRY_TIERS: dict[str, int] = {"1s": 1_000, "10s": 10_000, "60s": 60_000}


def work_queue(service_type: str) -> str:
    """`scf.ops.<service_type>`: where workers of one type take their work."""
    return f"{OPS_EXCHANGE}.{service_type}"


def retry_exchange(tier: str) -> str:
    return f"scf.retry.{tier}"


def retry_queue(tier: str) -> str:
    return f"scf.retry.{tier}"


def connector_event(action: str, service_name: str) -> str:
    """Routing key of a registry change on `scf.events`: created|updated|deleted|paused|resumed."""
    return f"connector.{action}.{service_name}"


def connector_of_event(routing_key: str) -> str:
    """The connector name in a `connector.<action>.<name>` routing key ("" for anything else)."""
    prefix, _, rest = routing_key.partition(".")
    return rest.partition(".")[2] if prefix == "connector" else ""


def connector_action_of_event(routing_key: str) -> tuple[str, str]:
    """(action, name) of a `connector.<action>.<name>` routing key (("", "") for anything else)."""
    prefix, _, rest = routing_key.partition(".")
    if prefix != "connector":
        return "", ""
    action, _, name = rest.partition(".")
    return action, name


def cancel_event(operation_id: str) -> str:
    """Routing key of `operation.cancel` on `scf.events` (`*` binds every one)."""
    return f"operation.cancel.{operation_id}"


def operation_of_cancel_event(routing_key: str) -> str:
    """The operation id in an `operation.cancel.<id>` routing key ("" for anything else)."""
    prefix = "operation.cancel."
    return routing_key[len(prefix) :] if routing_key.startswith(prefix) else ""


def health_event(service_name: str) -> str:
    return f"health.{service_name}"


@dataclass(frozen=True)
class QueueLimits:
    delivery_limit: int = 5
    max_length: int = 100_000


def work_queue_arguments(limits: QueueLimits) -> dict[str, Any]:
    """Quorum queue that dead-letters at least once and refuses publishes when full."""
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": limits.delivery_limit,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        "x-max-length": limits.max_length,
    }


def retry_queue_arguments(tier: str) -> dict[str, Any]:
    """A TTL'd queue whose expired messages go back to `scf.ops` with their original routing key."""
    return {
        "x-queue-type": "quorum",
        "x-message-ttl": RETRY_TIERS[tier],
        "x-dead-letter-exchange": OPS_EXCHANGE,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def dead_letter_queue_arguments() -> dict[str, Any]:
    return {"x-queue-type": "quorum"}


# --- headers the fleet sets on messages it moves between queues -----------------------------------------

DELAYED_RETRIES_HEADER = "x-scf-delayed-retries"  # how many delayed retries this request has had
DEAD_REASON_HEADER = "x-scf-dead-reason"  # why a worker dead-lettered it (a DeadReason value)
DEAD_ERROR_HEADER = "x-scf-error"  # the last error, as ErrorInfo JSON
ATTEMPTS_HEADER = "x-scf-attempts"  # deliveries plus delayed retries when it was given up
ORIGIN_EXCHANGE_HEADER = "x-scf-origin-exchange"  # where a replay re-publishes it
ORIGIN_ROUTING_KEY_HEADER = "x-scf-origin-routing-key"
REPLAYED_FROM_HEADER = "x-scf-replayed-from"  # the dead letter id a replayed message came from
FORWARDED_AT_HEADER = "x-scf-forwarded-at"  # when the dispatcher forwarded it (decimal text, see fleet/amqp)


def retry_tier_seconds() -> list[tuple[str, float]]:
    """The delayed-retry tiers, shortest first, in seconds."""
    return sorted(((name, ms / 1000) for name, ms in RETRY_TIERS.items()), key=lambda t: t[1])
