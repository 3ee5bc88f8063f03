"""Pure checks of queue and exchange names against what the broker reserves and what the fleet owns.

RabbitMQ reserves `amq.*`. The fleet's topology (`scf`, `scf.*`, docs/architecture.md) may share a broker and
even a vhost with a connector, which must not consume, purge, delete or feed it unless
`custom_config.allow_fleet_names` says so.
"""

from __future__ import annotations

from scf.schemas import topology
from scf.schemas.errors import ErrorCode, PermanentError, SecurityError

RESERVED_PREFIX = "amq."
FLEET_PREFIX = f"{topology.REQUEST_EXCHANGE}."


def is_reserved(name: str) -> bool:
    return name.startswith(RESERVED_PREFIX)


def is_fleet_name(name: str) -> bool:
    return name == topology.REQUEST_EXCHANGE or name.startswith(FLEET_PREFIX)


def refuse_reserved(name: str, where: str) -> None:
    """Declaring or deleting `amq.*` is the broker's alone: say so before asking it."""
    if is_reserved(name):
        raise PermanentError(
            f"{where}: names starting with {RESERVED_PREFIX!r} are reserved by RabbitMQ",
            code=ErrorCode.INVALID_IDENTIFIER,
        )


def refuse_fleet(name: str, where: str, allowed: bool) -> None:
    """A guard like a path guard: refused as `security`, with the reason kept for the logs."""
    if is_fleet_name(name) and not allowed:
        raise SecurityError(
            f"{where}: {name!r} belongs to the fleet's own topology",
            code=ErrorCode.PERMISSION_DENIED,
            detail=f"{where}={name!r} is a fleet name and custom_config.allow_fleet_names is false",
        )


def refuse_direct_route(routing_key: str, where: str, allowed: bool) -> None:
    """A publish to the default exchange goes straight to the queue its routing key names. Besides the
    fleet's queues, refuse server-named `amq.*` ones: RPC callers' reply queues (the fleet's clients
    among them) are named so, and anyone may publish to them, so a connector could forge replies."""
    refuse_fleet(routing_key, where, allowed)
    if is_reserved(routing_key) and not allowed:
        raise SecurityError(
            f"{where}: {routing_key!r} is a server-named queue",
            code=ErrorCode.PERMISSION_DENIED,
            detail=f"{where}={routing_key!r} names an amq.* queue (reply queues); allow_fleet_names is false",
        )
