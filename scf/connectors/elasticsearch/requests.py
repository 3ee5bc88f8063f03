"""The shapes of `data` and `parameters` for each Elasticsearch operation, validated before any I/O.

Unknown keys are refused so a misspelt option is never silently ignored. Query DSL, mappings, settings,
sorts and aggregations are passed to the cluster as given: the cluster is their validator. Index names
are checked separately (`names.py`), since a missing one falls back to the configured default index.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from scf.schemas.validation import parse_model

#: Validates `data` or `parameters` against a model (the helper every connector shares).
parse = parse_model

Refresh = bool | Literal["wait_for"]
IndexTarget = str | list[str]
Sort = str | dict[str, Any] | list[str | dict[str, Any]]
SourceFilter = bool | str | list[str] | dict[str, Any]

MAX_BATCH_SIZE = 10_000
#: Elasticsearch's default `index.max_result_window`.
MAX_RESULT_WINDOW = 10_000
KEEP_ALIVE_PATTERN = r"^[1-9][0-9]{0,3}[smh]$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CreateIndexParameters(_Strict):
    index: str | None = None
    mappings: dict[str, Any] | None = None
    settings: dict[str, Any] | None = None
    aliases: dict[str, Any] | None = None
    if_not_exists: bool = False


class DeleteIndexParameters(_Strict):
    index: str | None = None
    if_exists: bool = False


class ListIndicesParameters(_Strict):
    pattern: IndexTarget = "*"
    include_hidden: bool = False


class InsertData(_Strict):
    """`documents` (or the spec's `records`), and optionally one `_id` per document in `ids`."""

    documents: list[dict[str, Any]] | None = Field(default=None, min_length=1)
    records: list[dict[str, Any]] | None = Field(default=None, min_length=1)
    ids: list[str | int] | None = None

    @model_validator(mode="after")
    def _one_list(self) -> Self:
        if (self.documents is None) == (self.records is None):
            raise ValueError("give exactly one of documents or records (a non-empty list of objects)")
        if self.ids is not None and len(self.ids) != len(self.rows):
            raise ValueError(f"ids has {len(self.ids)} entries for {len(self.rows)} documents")
        return self

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self.documents if self.documents is not None else (self.records or [])


class InsertParameters(_Strict):
    index: str | None = None
    batch_size: int = Field(default=500, ge=1, le=MAX_BATCH_SIZE)
    refresh: Refresh = False
    id_field: str | None = Field(default=None, min_length=1, max_length=256)
    return_ids: bool = True


class SearchParameters(_Strict):
    """One page of hits. `paginate` (or a `page_token`) pages with search_after in a point in time."""

    index: IndexTarget | None = None
    query: dict[str, Any] | None = None
    from_: int = Field(default=0, ge=0, le=MAX_RESULT_WINDOW, alias="from")
    size: int = Field(default=10, ge=0, le=MAX_RESULT_WINDOW)
    sort: Sort | None = None
    source: SourceFilter | None = Field(default=None, alias="_source")
    highlight: dict[str, Any] | None = None
    track_total_hits: bool | int | None = None
    paginate: bool = False
    keep_alive: str = Field(default="5m", pattern=KEEP_ALIVE_PATTERN)

    @model_validator(mode="after")
    def _paging_fits(self) -> Self:
        if self.paginate and self.from_:
            raise ValueError("from cannot be combined with paginate: pages continue from page_token")
        if self.paginate and self.size == 0:
            raise ValueError("paginate needs a size of at least 1")
        return self

    def search_body(self) -> dict[str, Any]:
        """The parts of the search that define its result list (what a page token is bound to)."""
        body = {
            "query": self.query,
            "sort": self.sort,
            "_source": self.source,
            "highlight": self.highlight,
            "track_total_hits": self.track_total_hits,
        }
        return {k: v for k, v in body.items() if v is not None}


class AggregateParameters(_Strict):
    index: IndexTarget | None = None
    query: dict[str, Any] | None = None
    aggs: dict[str, Any] | None = Field(default=None, min_length=1)
    aggregations: dict[str, Any] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_aggs(self) -> Self:
        if (self.aggs is None) == (self.aggregations is None):
            raise ValueError("give exactly one of aggs or aggregations")
        return self

    @property
    def definitions(self) -> dict[str, Any]:
        return self.aggs if self.aggs is not None else (self.aggregations or {})


class CountParameters(_Strict):
    index: IndexTarget | None = None
    query: dict[str, Any] | None = None


class GetParameters(_Strict):
    index: str | None = None
    id: str | int
    source: bool | str | list[str] | None = Field(default=None, alias="_source")


class UpdateData(_Strict):
    doc: dict[str, Any] = Field(min_length=1)


class UpdateParameters(_Strict):
    index: str | None = None
    id: str | int
    refresh: Refresh = False
    upsert: bool = False
    retry_on_conflict: int = Field(default=3, ge=0, le=10)


class DeleteParameters(_Strict):
    """Delete one document by `id`, or every document matching `query` (delete by query)."""

    index: str | None = None
    id: str | int | None = None
    query: dict[str, Any] | None = Field(default=None, min_length=1)
    refresh: Refresh = False
    conflicts: Literal["abort", "proceed"] = "abort"

    @model_validator(mode="after")
    def _id_or_query(self) -> Self:
        if (self.id is None) == (self.query is None):
            raise ValueError("give exactly one of id (one document) or query (delete by query)")
        if self.query is not None and self.refresh == "wait_for":
            raise ValueError("delete by query takes refresh true or false, not wait_for")
        return self
