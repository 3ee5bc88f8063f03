"""Pydantic schemas as AsyncAPI `components.schemas`: `$defs` hoisted, refs rewritten, aliases named."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, get_args

from pydantic import AliasChoices, BaseModel

from scf.schemas.asyncapi.contract import SCHEMA_REF
from scf.schemas.connection import SERVICE_NAME_PATTERN, ServiceConnection
from scf.schemas.control import (
    HealthStatus,
)
from scf.schemas.errors import ErrorInfo

# --- pydantic schemas -> components.schemas --------------------------------------------------------------

_DEFS_PREFIX = "#/$defs/"


def _rewrite_refs(node: Any) -> Any:
    """A copy of `node` whose local `#/$defs/X` references point at `#/components/schemas/X`."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_DEFS_PREFIX):
                out[key] = SCHEMA_REF.format(model=value.removeprefix(_DEFS_PREFIX))
            else:
                out[key] = _rewrite_refs(value)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    return node


def _pop_defs(node: Any, found: dict[str, Any]) -> None:
    """Remove every (possibly nested) `$defs` from `node`, collecting its entries into `found`."""
    if isinstance(node, dict):
        defs = node.pop("$defs", None)
        if isinstance(defs, dict):
            for name, schema in defs.items():
                _pop_defs(schema, found)
                found[name] = schema
        for value in node.values():
            _pop_defs(value, found)
    elif isinstance(node, list):
        for item in node:
            _pop_defs(item, found)


def merge_schema(schemas: dict[str, Any], name: str, schema: Mapping[str, Any]) -> dict[str, str]:
    """Hoist `schema` and all its `$defs` into `schemas` (components.schemas) under their names.

    References are rewritten to `#/components/schemas/<name>`. Two different schemas under one name
    raise `ValueError` instead of one silently replacing the other. Returns a `$ref` to `name`.
    """
    body = copy.deepcopy(dict(schema))
    found: dict[str, Any] = {}
    _pop_defs(body, found)
    found[name] = body
    for def_name, def_schema in found.items():
        rewritten = _rewrite_refs(def_schema)
        existing = schemas.setdefault(def_name, rewritten)
        if existing != rewritten:
            raise ValueError(f"two different JSON schemas are both named {def_name!r}")
    return {"$ref": SCHEMA_REF.format(model=name)}


def model_schema(schemas: dict[str, Any], model: type[BaseModel]) -> dict[str, str]:
    """Add `model` (and the models it uses) to `schemas`; returns a `$ref` to it."""
    return merge_schema(schemas, model.__name__, model.model_json_schema(ref_template=SCHEMA_REF))


def add_alias_properties(schemas: dict[str, Any], model: type[BaseModel]) -> None:
    """Document the alternative names a field accepts (`AliasChoices`), e.g. `connection_id`.

    pydantic's JSON schema names only the first choice, and with `extra="forbid"` a strict reader of the
    schema would refuse a body the fleet accepts.
    """
    schema = schemas[model.__name__]
    properties: dict[str, Any] = schema.get("properties", {})
    for field_name, field in model.model_fields.items():
        if not isinstance(field.validation_alias, AliasChoices):
            continue
        names = [c for c in field.validation_alias.choices if isinstance(c, str)]
        primary = next((n for n in [*names, field_name] if n in properties), None)
        if primary is None:
            continue
        for alias in names:
            if alias not in properties:
                properties[alias] = {
                    **copy.deepcopy(properties[primary]),
                    "title": alias,
                    "description": f"Alias of `{primary}`.",
                }


def restrict_service_types(schemas: dict[str, Any], types: list[str]) -> None:
    """`ServiceConnection.service_type` is a plain string checked by a validator: name the accepted values."""
    field = schemas[ServiceConnection.__name__]["properties"]["service_type"]
    if field.get("type") == "string" and "enum" not in field:
        field["enum"] = list(types)


def health_event_schema(schemas: dict[str, Any]) -> dict[str, Any]:
    """The body of `health.<name>` events (built as a dict by `dispatcher.health_monitor`)."""
    statuses = list(get_args(HealthStatus))
    nullable_number = {"anyOf": [{"type": "number"}, {"type": "null"}]}
    return {
        "type": "object",
        "properties": {
            "service_name": {"type": "string", "pattern": SERVICE_NAME_PATTERN},
            "service_type": {"type": "string"},
            "status": {"enum": statuses},
            "previous": {"enum": statuses},
            "at": {"type": "number", "description": "Unix time of the change."},
            "response_time": nullable_number,
            "error": {"anyOf": [model_schema(schemas, ErrorInfo), {"type": "null"}]},
        },
        "required": ["service_name", "status", "previous", "at"],
    }
