"""The `parameters` and `data` of each MinIO operation, validated before any I/O.

A request that does not fit is a `permanent` INVALID_REQUEST naming the field; unknown keys are refused
so a misspelt option is not silently ignored. Keys stay plain strings here: they are checked (and given
the connector's prefix) by `ObjectNames`, which answers INVALID_IDENTIFIER.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from scf.connectors.minio.bodies import Encoding
from scf.connectors.operation_table import PageParameters, Strict

#: S3 presigned URLs live at most seven days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
MAX_LIST_PAGE = 1000
DEFAULT_LIST_PAGE = 100
MAX_DELETE_KEYS = 1000
_KEY = Field(max_length=4096)


class KeyParameters(Strict):
    key: str = _KEY


class PutParameters(KeyParameters):
    content_type: str | None = Field(default=None, max_length=255)
    metadata: dict[str, str] = Field(default_factory=dict)


class PutData(Strict):
    """Exactly one of `text` (stored as UTF-8), `base64` (binary) or `json` (any JSON value)."""

    text: str | None = None
    base64: str | None = None
    json_: Any = Field(default=None, alias="json")

    @model_validator(mode="after")
    def _exactly_one_body(self) -> PutData:
        given = [name for name in ("text", "base64", "json_") if name in self.model_fields_set]
        if len(given) != 1:
            raise ValueError("give exactly one of data.text, data.base64 or data.json")
        if self.text is None and self.base64 is None and "json_" not in self.model_fields_set:
            raise ValueError("data.text and data.base64 must be strings")
        return self


class GetParameters(KeyParameters):
    """Without offset/length the whole object; with offset alone at most max_object_bytes from there."""

    offset: int | None = Field(default=None, ge=0)
    length: int | None = Field(default=None, ge=1)
    encoding: Encoding = "base64"


class ListParameters(PageParameters):
    """`page_size` keys a page (default 100, at most 1000)."""

    prefix: str = Field(default="", max_length=1024)
    recursive: bool = False
    page_size: int | None = Field(default=None, ge=1, le=MAX_LIST_PAGE)

    @property
    def size(self) -> int:
        return self.page_size or DEFAULT_LIST_PAGE


class CopyParameters(KeyParameters):
    """Copy `source_key` to `key`; metadata or content_type replace the source's, else they are kept."""

    source_key: str = _KEY
    content_type: str | None = Field(default=None, max_length=255)
    metadata: dict[str, str] | None = None


class DeleteManyParameters(Strict):
    keys: list[str] = Field(min_length=1, max_length=MAX_DELETE_KEYS)


class PresignParameters(KeyParameters):
    expires: int = Field(default=3600, ge=1, le=MAX_PRESIGN_SECONDS, description="seconds")
