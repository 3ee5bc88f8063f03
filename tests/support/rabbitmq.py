"""Helpers for RabbitMQ connector tests: connectors in a test vhost, calls, unique names, rabbitmqctl."""

from __future__ import annotations

import subprocess
import uuid
from typing import Any

from scf.connectors.rabbitmq import RabbitMQConnector
from scf.schemas.connection import ServiceConnection
from scf.schemas.operation import OperationResult
from tests.support.services import Vhost


def build(vhost: Vhost, **custom: Any) -> RabbitMQConnector:
    """A connector on 127.0.0.1 in `vhost` (guest), with `custom` added to its custom_config."""
    return RabbitMQConnector(
        ServiceConnection.model_validate(
            {
                "service_type": "rabbitmq",
                "service_name": "mq_direct",
                "host": "127.0.0.1",
                "connection_timeout": 5,
                "custom_config": {"vhost": vhost.name, **custom},
            }
        )
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def call(
    connector: RabbitMQConnector, operation: str, data: dict[str, Any] | None = None, **fields: Any
) -> OperationResult:
    """Run through the spec API (failures come back as results); `fields` are request fields."""
    body: dict[str, Any] = {"operation": operation, "data": data or {}}
    body["parameters"] = fields.pop("parameters", {})
    return await connector.execute_operation({**body, **fields})


async def ok(
    connector: RabbitMQConnector, operation: str, data: dict[str, Any] | None = None, **parameters: Any
) -> Any:
    """Run with `parameters`, require success, return `result_data`."""
    result = await call(connector, operation, data, parameters=parameters)
    assert result.status == "success", result.error
    return result.result_data


async def new_queue(connector: RabbitMQConnector, **arguments: Any) -> str:
    name = unique("q")
    await ok(connector, "declare_queue", queue=name, durable=False, arguments=arguments)
    return name


def rabbitmqctl(*args: str, check: bool = True) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=check, capture_output=True, timeout=60)
