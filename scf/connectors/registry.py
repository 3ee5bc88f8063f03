"""The one mapping from service type to connector implementation, imported lazily.

A worker serving only `csv` never imports asyncpg: the class is imported the first time its type is
built. Adding a connector means one row here (or an entry point, see the discovery issue).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from scf.schemas.errors import ConfigurationError, ErrorCode
from scf.schemas.plugins import plugin_connectors

if TYPE_CHECKING:
    from scf.connectors.base import ServiceConnector

IMPLEMENTATIONS: dict[str, str] = {
    "postgresql": "scf.connectors.postgresql:PostgreSQLOutputConnector",
    "csv": "scf.connectors.csv_ingest:CSVIngestionConnector",
    "qdrant": "scf.connectors.qdrant:QdrantVectorConnector",
    "elasticsearch": "scf.connectors.elasticsearch:ElasticsearchConnector",
    "minio": "scf.connectors.minio:MinIOStorageConnector",
    "api": "scf.connectors.api:ApiIngestionConnector",
    "pdf": "scf.connectors.pdf:PDFIngestionConnector",
    "redis": "scf.connectors.redis:RedisConnector",
    "rabbitmq": "scf.connectors.rabbitmq:RabbitMQConnector",
}


def implementations() -> dict[str, str]:
    """Built-in connectors plus those other packages declare as `scf.connectors` entry points."""
    return {**plugin_connectors(), **IMPLEMENTATIONS}


def available_types() -> list[str]:
    return sorted(implementations())


def is_available(service_type: str) -> bool:
    return service_type in implementations()


def connector_class(service_type: str) -> type[ServiceConnector]:
    target = implementations().get(service_type)
    if target is None:
        raise ConfigurationError(
            f"service type {service_type!r} has no connector in this build; available: "
            + ", ".join(available_types()),
            code=ErrorCode.INVALID_CONFIG,
        )
    module_name, _, class_name = target.partition(":")
    cls: type[ServiceConnector] = getattr(importlib.import_module(module_name), class_name)
    return cls


def operation_catalog(service_types: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every type's declared operations (name, summary, traits, data and parameters JSON Schemas,
    aliases), as `GET /connector-types` and the AsyncAPI document publish them. Imports each type's
    connector module; a type whose module cannot be imported here is left out."""
    catalog: dict[str, list[dict[str, Any]]] = {}
    for service_type in service_types or available_types():
        try:
            table = connector_class(service_type).operation_table
        except ImportError:  # a plugin whose driver this process lacks: no operations to show
            continue
        catalog[service_type] = [operation.describe() for operation in table.values()]
    return catalog
