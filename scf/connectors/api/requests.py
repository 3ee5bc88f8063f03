"""The shapes of `data` and `parameters` for ingest, preview and validate, checked before any I/O.

`data.api_endpoint` names the resource; `parameters` carry method, headers, query, a JSON body,
records_path and pagination (`true` = the connector's default style, else RFC 8288 Link headers).
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from scf.schemas.configs.api import PaginationSpec, check_headers
from scf.schemas.validation import parse_model

#: Validates `data` or `parameters` against a model (the helper every connector shares).
parse = parse_model

QueryValue = str | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ApiData(_Strict):
    api_endpoint: str | None = Field(default=None, min_length=1, max_length=8192)


class FetchParameters(_Strict):
    method: Literal["GET", "POST"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict, max_length=64, repr=False)
    query: dict[str, QueryValue | list[QueryValue]] = Field(default_factory=dict, max_length=256)
    body: Any = Field(default=None, validation_alias=AliasChoices("json", "body"))
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

    @model_validator(mode="after")
    def _body_needs_post(self) -> Self:
        if self.body is not None and self.method != "POST":
            raise ValueError("a json body needs method POST")
        return self

    def pagination_spec(self, default: PaginationSpec | None) -> PaginationSpec | None:
        """`true` means the connector's default style (else Link headers); absent means the default."""
        if self.pagination is None:
            return default
        if self.pagination is True:
            return default or PaginationSpec(type="link")
        if self.pagination is False:
            return None
        return self.pagination


class PreviewParameters(FetchParameters):
    limit: int | None = Field(default=None, ge=1, le=1000)
