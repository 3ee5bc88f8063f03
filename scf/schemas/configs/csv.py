"""`custom_config` of a `csv` connector: parsing defaults and limits."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from scf.schemas.configs.url_sources import UrlSourceSettings


class CsvConfig(UrlSourceSettings):
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
