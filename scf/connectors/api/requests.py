"""The shapes of `data` and `parameters` for ingest, preview and validate, checked before any I/O.

`parameters.endpoint` names the resource (the spec's `data.api_endpoint` is accepted too); `parameters`
carry method, headers, query, records_path, pagination (`true` = the connector's default style, else
RFC 8288 Link headers) and, for ingest and preview, `page_size`; `data.body` is the JSON body of a POST.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from scf.connectors.operation_table import Alias, PageParameters, Strict
from scf.schemas.configs.api import PaginationSpec, check_headers

QueryValue = str | int | float | bool

#: The most records one preview returns.
MAX_PREVIEW_RECORDS = 1000

#: Every operation: the spec's `data.api_endpoint` (accepted) and the body's old places (deprecated).
REQUEST_ALIASES = (
    Alias("data", "api_endpoint", "parameters", "endpoint", deprecated=False),
    Alias("parameters", "body", "data", "body"),
    Alias("parameters", "json", "data", "body"),
)
#: preview's old page size.
PREVIEW_ALIASES = (*REQUEST_ALIASES, Alias("parameters", "limit", "parameters", "page_size"))


class ApiData(Strict):
    """The payload: the JSON body sent with method POST (a search query, a GraphQL document, ...)."""

    body: Any = Field(default=None, description="JSON body of a POST request")


class CallParameters(Strict):
    """Where and how to call: endpoint, method, headers, query, where the records are, how to page."""

    endpoint: str | None = Field(
        default=None,
        min_length=1,
        max_length=8192,
        description="path relative to custom_config.base_url, or an absolute URL (default: the base URL)",
    )
    method: Literal["GET", "POST"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict, max_length=64, repr=False)
    query: dict[str, QueryValue | list[QueryValue]] = Field(default_factory=dict, max_length=256)
    records_path: str | None = Field(default=None, min_length=1, max_length=512)
    pagination: bool | PaginationSpec | None = None
    max_pages: int | None = Field(default=None, ge=1)
    max_records: int | None = Field(default=None, ge=1)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        return check_headers(headers)

    def pagination_spec(self, default: PaginationSpec | None) -> PaginationSpec | None:
        """`true` means the connector's default style (else Link headers); absent means the default."""
        if self.pagination is None:
            return default
        if self.pagination is True:
            return default or PaginationSpec(type="link")
        if self.pagination is False:
            return None
        return self.pagination


class PagedCallParameters(CallParameters, PageParameters):
    """ingest: `page_size` caps the records of one call; `next_page_token` resumes where it stopped."""


class PreviewParameters(PagedCallParameters):
    """preview: `page_size` records (custom_config.preview_records by default, at most 1000)."""

    page_size: int | None = Field(default=None, ge=1, le=MAX_PREVIEW_RECORDS)
