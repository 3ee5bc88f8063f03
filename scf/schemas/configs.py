"""Per-service-type `custom_config` models, checked when a connector is created or updated.

The dispatcher validates a create request with these models without importing any driver; the
connector parses the same model when it opens. A type without a model here accepts no custom keys.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from scf.schemas.connection import ServiceConnection

PG_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


class PostgresConfig(BaseModel):
    """`custom_config` of a `postgresql` connector (spec: PostgreSQL Configuration)."""

    model_config = ConfigDict(extra="forbid")

    connection_string: str | None = Field(default=None, repr=False)
    database: str | None = None
    schema_: str = Field(default="public", alias="schema", pattern=PG_IDENTIFIER.pattern)
    ssl_mode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = None
    connection_pool_size: int | None = Field(default=None, ge=1, le=200)
    max_connections: int | None = Field(default=None, ge=1, le=500)
    auto_commit: bool = True
    allow_writes_in_query: bool = False
    max_rows: int = Field(default=10_000, ge=1, le=1_000_000)


class CsvConfig(BaseModel):
    """`custom_config` of a `csv` connector: limits and defaults for parsing."""

    model_config = ConfigDict(extra="forbid")

    delimiter: str | None = Field(default=None, min_length=1, max_length=1)
    encoding: str | None = None
    has_headers: bool = True
    max_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    max_rows: int = Field(default=1_000_000, ge=1)
    max_columns: int = Field(default=1_000, ge=1, le=100_000)
    max_field_size: int = Field(default=131_072, ge=1, le=131_072)
    preview_rows: int = Field(default=10, ge=1, le=1_000)


CONFIG_MODELS: dict[str, type[BaseModel]] = {
    "postgresql": PostgresConfig,
    "csv": CsvConfig,
}


def parse_type_config(service_type: str, custom_config: dict[str, Any]) -> BaseModel | None:
    model = CONFIG_MODELS.get(service_type)
    return None if model is None else model.model_validate(custom_config)


def validate_type_config(connection: ServiceConnection) -> None:
    """Raise ValueError (so pydantic reports it per field) when the type's config does not hold."""
    model = CONFIG_MODELS.get(connection.service_type.value)
    if model is not None:
        try:
            parsed = model.model_validate(connection.custom_config)
        except ValidationError as exc:
            fields = ", ".join(
                "custom_config." + ".".join(str(p) for p in e["loc"]) + ": " + e["msg"]
                for e in exc.errors(include_input=False, include_url=False)
            )
            raise ValueError(fields) from None
        if isinstance(parsed, PostgresConfig) and not (connection.host or parsed.connection_string):
            raise ValueError("postgresql needs host or custom_config.connection_string")
