"""Connectors: one module per service type behind `ServiceConnector`; drivers are imported lazily.

The spec's class names are importable from here; each resolves on first access so importing this
package never pulls in a driver the process does not use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scf.connectors.base import ServiceConnector
    from scf.connectors.registry import connector_class

# Even the contract is lazy: the slim client imports `scf.connectors.circuit` (settings) and must not
# pull the SSRF guard's HTTP stack through `base`.
_LAZY: dict[str, str] = {
    "ServiceConnector": "scf.connectors.base",
    "connector_class": "scf.connectors.registry",
    "PostgreSQLOutputConnector": "scf.connectors.postgresql",
    "CSVIngestionConnector": "scf.connectors.csv_ingest",
    "QdrantVectorConnector": "scf.connectors.qdrant",
    "ElasticsearchConnector": "scf.connectors.elasticsearch",
    "MinIOStorageConnector": "scf.connectors.minio",
    "ApiIngestionConnector": "scf.connectors.api",
    "PDFIngestionConnector": "scf.connectors.pdf",
    "RedisConnector": "scf.connectors.redis",
    "RabbitMQConnector": "scf.connectors.rabbitmq",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ApiIngestionConnector",
    "CSVIngestionConnector",
    "ElasticsearchConnector",
    "MinIOStorageConnector",
    "PDFIngestionConnector",
    "PostgreSQLOutputConnector",
    "QdrantVectorConnector",
    "RabbitMQConnector",
    "RedisConnector",
    "ServiceConnector",
    "connector_class",
]
