"""`custom_config` of a `csv` connector: parsing defaults and limits."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from scf.schemas.configs.api import parse_host_rule


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
    # Files by URL go through the SSRF guard; these widen it on purpose (see the api connector's rules).
    url_allowed_hosts: list[str] = Field(default_factory=list, max_length=100)
    url_allow_private: bool = False
    url_timeout: float = Field(default=60.0, gt=0, le=3600)

    @field_validator("url_allowed_hosts")
    @classmethod
    def _host_rules(cls, entries: list[str]) -> list[str]:
        for entry in entries:
            parse_host_rule(entry)  # raises ValueError naming the bad entry
        return entries
