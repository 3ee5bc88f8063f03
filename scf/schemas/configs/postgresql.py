"""`custom_config` of a `postgresql` connector (spec: PostgreSQL Configuration)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from scf.schemas.secret_fields import SecretDsn

if TYPE_CHECKING:
    from scf.schemas.connection import ServiceConnection

MAX_DSN_BYTES = 8192
PG_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


class PostgresConfig(BaseModel):
    """`custom_config` of a `postgresql` connector (spec: PostgreSQL Configuration)."""

    model_config = ConfigDict(extra="forbid")

    connection_string: SecretDsn | None = Field(
        default=None,
        max_length=MAX_DSN_BYTES,
        repr=False,
        description="a postgresql:// URL (asyncpg); shown with its password and secret parameters masked",
    )
    database: str | None = None
    schema_: str = Field(default="public", alias="schema", pattern=PG_IDENTIFIER.pattern)
    ssl_mode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = None
    connection_pool_size: int | None = Field(default=None, ge=1, le=200)
    max_connections: int | None = Field(default=None, ge=1, le=500)
    auto_commit: bool = True
    allow_writes_in_query: bool = False
    max_rows: int = Field(default=10_000, ge=1, le=1_000_000)
    ssl_root_cert: str | None = Field(
        default=None, description="CA bundle (PEM file path) that verify-ca / verify-full check against"
    )
    idempotency_table: str = Field(default="scf_idempotency_ledger", pattern=PG_IDENTIFIER.pattern)
    idempotency_ttl: int = Field(
        default=7 * 86_400, ge=60, le=365 * 86_400, description="seconds a key keeps its stored result"
    )

    def check_connection(self, connection: ServiceConnection) -> None:
        if not (connection.host or self.connection_string):
            raise ValueError("postgresql needs host or custom_config.connection_string")
        if self.ssl_root_cert is not None and self.ssl_mode not in ("verify-ca", "verify-full"):
            raise ValueError("ssl_root_cert applies only with ssl_mode verify-ca or verify-full")
