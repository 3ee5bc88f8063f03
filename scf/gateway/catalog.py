"""Connector types this build offers, each with its configuration JSON Schema, and dry-run validation.

Pure: no connection is made. Answers `GET /connector-types` and `POST /connector-types/{type}/validate`.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from scf.connectors.registry import available_types, operation_catalog
from scf.schemas.configs import config_model
from scf.schemas.connection import ServiceConnection


class ConnectorType(BaseModel):
    service_type: str
    config_schema: dict[str, Any]
    operations: list[dict[str, Any]] = Field(
        default_factory=list,
        description="every operation the type declares: name, summary, traits (reads, writes, idempotent, "
        "long_running, pages), data_schema and parameters_schema (JSON Schema), aliases",
    )


class FieldProblem(BaseModel):
    field: str
    message: str


class ValidationReport(BaseModel):
    service_type: str
    valid: bool
    errors: list[FieldProblem]


def config_schema(service_type: str) -> dict[str, Any]:
    """ServiceConnection's schema with `service_type` fixed and `custom_config` the type's own model."""
    schema = ServiceConnection.model_json_schema()
    schema["title"] = f"{service_type} connector"
    schema["properties"]["service_type"] = {"const": service_type, "type": "string"}
    model = config_model(service_type)
    if model is not None:
        custom = model.model_json_schema()
        schema.setdefault("$defs", {}).update(custom.pop("$defs", {}))
        schema["properties"]["custom_config"] = custom
    return schema


@functools.cache
def connector_types() -> list[ConnectorType]:
    """Every type with its configuration schema and its declared operations (built once: pure)."""
    operations = operation_catalog()
    return [
        ConnectorType(service_type=t, config_schema=config_schema(t), operations=operations.get(t, []))
        for t in available_types()
    ]


def validate_config(service_type: str, body: dict[str, Any]) -> ValidationReport:
    """Per-field problems of a create body for `service_type`; input values are never echoed."""
    fields: list[FieldProblem] = []
    whole: list[FieldProblem] = []
    try:
        ServiceConnection.model_validate({**body, "service_type": service_type})
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            if error["loc"]:
                fields.append(_problem(error))
            else:
                whole.append(FieldProblem(field="body", message=error["msg"]))
    custom = _custom_config_problems(service_type, body.get("custom_config", {}))
    if custom:
        whole = []  # the cross-field error only restated the custom_config problems, now listed per field
    problems = fields + custom + whole
    return ValidationReport(service_type=service_type, valid=not problems, errors=problems)


def _custom_config_problems(service_type: str, custom: Any) -> list[FieldProblem]:
    model = config_model(service_type)
    if model is None or not isinstance(custom, dict):
        return []
    try:
        model.model_validate(custom)
    except ValidationError as exc:
        return [
            _problem(e, prefix="custom_config.") for e in exc.errors(include_input=False, include_url=False)
        ]
    return []


def _problem(error: Any, prefix: str = "") -> FieldProblem:
    return FieldProblem(field=prefix + ".".join(str(p) for p in error["loc"]), message=error["msg"])
