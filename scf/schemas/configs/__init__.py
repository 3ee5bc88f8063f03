"""Per-service-type `custom_config` models, checked when a connector is created or updated.

The dispatcher validates a create request with these models without importing any driver; the
connector parses the same model when it opens. One module per built-in type in this package, named by
the type's registration (the `scf.connector_configs` entry point) and imported on first use. A type
without a model accepts no custom keys.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from scf.schemas.plugins import registrations

if TYPE_CHECKING:
    from scf.schemas.connection import ServiceConnection


def config_model(service_type: str) -> type[BaseModel] | None:
    record = registrations().get(service_type)
    target = None if record is None else record.config
    if target is None:
        return None
    module_name, _, class_name = target.partition(":")
    model: type[BaseModel] = getattr(importlib.import_module(module_name), class_name)
    return model


def parse_type_config(service_type: str, custom_config: dict[str, Any]) -> BaseModel | None:
    model = config_model(service_type)
    return None if model is None else model.model_validate(custom_config)


def validate_type_config(connection: ServiceConnection) -> None:
    """Raise ValueError (so pydantic reports it per field) when the type's config does not hold.

    A config model may define `check_connection(connection)` for rules that span the connection's
    own fields and its custom_config (e.g. PostgreSQL needs a host or a connection string).
    """
    model = config_model(connection.service_type)
    if model is None:
        return
    try:
        parsed = model.model_validate(connection.custom_config)
    except ValidationError as exc:
        fields = ", ".join(
            "custom_config." + ".".join(str(p) for p in e["loc"]) + ": " + e["msg"]
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise ValueError(fields) from None
    check = getattr(parsed, "check_connection", None)
    if check is not None:
        check(connection)
