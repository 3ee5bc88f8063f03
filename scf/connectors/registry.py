"""The one mapping from service type to connector implementation, imported lazily.

A worker serving only `csv` never imports asyncpg: the class is imported the first time its type is
built. A type is registered once, as an entry point (scf/schemas/plugins.py); this module only looks
its connector up.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any

import structlog

from scf.extras import DRIVERS
from scf.schemas.errors import ConfigurationError, ErrorCode
from scf.schemas.plugins import registrations

log = structlog.get_logger(__name__)

if TYPE_CHECKING:
    from scf.connectors.base import ServiceConnector


def implementations() -> dict[str, str]:
    """Type -> "module:Class" of its connector, from the registrations (scf/schemas/plugins.py)."""
    return {name: record.connector for name, record in registrations().items()}


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
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if (exc.name or "scf").partition(".")[0] == "scf":
            raise  # a module of ours is missing: a broken install, not a missing extra
        # A slim or partial install: name the extra that brings the driver, not a traceback. Only a
        # built-in type has an extra of its name; a plugin's package brings its own dependencies.
        hint = f": pip install 'service-connector-factory[{service_type}]'" if service_type in DRIVERS else ""
        raise ConfigurationError(
            f"the {service_type} connector needs {exc.name} that is not installed{hint}",
            code=ErrorCode.INVALID_CONFIG,
        ) from exc
    cls: type[ServiceConnector] = getattr(module, class_name)
    return cls


def operation_catalog(service_types: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every type's declared operations (name, summary, traits, data and parameters JSON Schemas,
    aliases), as `GET /connector-types` and the AsyncAPI document publish them. Built once per set of
    types (the tables never change in a process): serving the documents costs no schema generation
    per request. Callers must not mutate what they get. A type whose connector cannot be imported here
    (a broken plugin, a driver this process lacks) is left out with a warning, so one bad plugin never
    hides the others."""
    return _catalog(tuple(service_types or available_types()))


@functools.cache
def _catalog(service_types: tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
    catalog: dict[str, list[dict[str, Any]]] = {}
    for service_type in service_types:
        try:
            table = connector_class(service_type).operation_table
        except Exception as exc:
            log.warning("connector_type_unavailable", service_type=service_type, error=type(exc).__name__)
            continue
        catalog[service_type] = [operation.describe() for operation in table.values()]
    return catalog
