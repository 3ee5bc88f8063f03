"""Service Connector Factory: one uniform, resilient way to reach data services.

The spec's names are importable from here. The clients and the factory are resolved lazily, so a caller
that only sends requests (the slim install) never imports a connector, and an embedded user of the
factory never imports the AMQP client.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from scf._version import __version__
from scf.schemas import ConnectionTestResult, OperationRequest, OperationResult, ServiceConnection

if TYPE_CHECKING:
    from scf.factory import ServiceConnectorFactory
    from scf.fleet.client import FleetClient
    from scf.fleet.sync_client import SyncFleetClient

_LAZY = {
    "FleetClient": "scf.fleet.client",
    "SyncFleetClient": "scf.fleet.sync_client",
    "ServiceConnectorFactory": "scf.factory",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'scf' has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = [
    "ConnectionTestResult",
    "FleetClient",
    "OperationRequest",
    "OperationResult",
    "ServiceConnection",
    "ServiceConnectorFactory",
    "SyncFleetClient",
    "__version__",
]
