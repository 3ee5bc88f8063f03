"""Service Connector Factory: one uniform, resilient way to reach data services.

The spec's names are importable from here. `FleetClient` is resolved lazily so an embedded user of
the factory never imports the AMQP client.
"""

from __future__ import annotations

from typing import Any

from scf.factory import ServiceConnectorFactory
from scf.schemas import ConnectionTestResult, OperationRequest, OperationResult, ServiceConnection


def __getattr__(name: str) -> Any:
    if name == "FleetClient":
        from scf.fleet.client import FleetClient

        return FleetClient
    raise AttributeError(f"module 'scf' has no attribute {name!r}")


__all__ = [
    "ConnectionTestResult",
    "FleetClient",
    "OperationRequest",
    "OperationResult",
    "ServiceConnection",
    "ServiceConnectorFactory",
]
