"""Settings shared by the ingestion connectors that read files by URL (through the SSRF guard)."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from scf.schemas.configs.api import parse_host_rule


class UrlSourceSettings(BaseModel):
    """Widen the SSRF guard on purpose for `data.url` sources (same rules as the api connector's)."""

    url_allowed_hosts: list[str] = Field(default_factory=list, max_length=100)
    url_allow_private: bool = False
    url_timeout: float = Field(default=60.0, gt=0, le=3600)

    @field_validator("url_allowed_hosts")
    @classmethod
    def _host_rules(cls, entries: list[str]) -> list[str]:
        for entry in entries:
            parse_host_rule(entry)  # raises ValueError naming the bad entry
        return entries
