"""The shapes of `data` and `parameters` for each Elasticsearch operation, validated before any I/O.

`parameters` names the index and says how (query, sort, paging, options); `data` carries the payload
(documents, a partial document). Unknown keys are refused so a misspelt option is never silently
ignored. Query DSL, mappings, settings, sorts and aggregations are passed to the cluster as given: the
cluster is their validator. Index names are checked separately (`names.py`), since a missing one falls
back to the configured default index.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, model_validator

from scf.connectors.operation_table import PageParameters, Strict

Refresh = bool | Literal["wait_for"]
IndexTarget = str | list[str]
Sort = str | dict[str, Any] | list[str | dict[str, Any]]
SourceFilter = bool | str | list[str] | dict[str, Any]

MAX_BATCH_SIZE = 10_000
#: Elasticsearch's default `index.max_result_window`.
MAX_RESULT_WINDOW = 10_000
#: Hits per page when `parameters.page_size` is not given.
DEFAULT_PAGE_SIZE = 10
KEEP_ALIVE_PATTERN = r"^[1-9][0-9]{0,3}[smh]$"


class OneIndex(Strict):
    """Writes and single-document reads act on one concrete index (default: `custom_config.index`)."""

    index: str | None = None


class IndexTargets(Strict):
    """Reads may name several indices or `*` patterns (default: `custom_config.index`)."""

    index: IndexTarget | None = None


class CreateIndexParameters(OneIndex):
    mappings: dict[str, Any] | None = None
    settings: dict[str, Any] | None = None
    aliases: dict[str, Any] | None = None
    if_not_exists: bool = False


class DeleteIndexParameters(OneIndex):
    if_exists: bool = False


class ListIndicesParameters(Strict):
    pattern: IndexTarget = "*"
    include_hidden: bool = False


class InsertData(Strict):
    """`documents` (the spec's `records` is moved here), and optionally one `_id` per document in `ids`."""

    documents: list[dict[str, Any]] = Field(min_length=1)
    ids: list[str | int] | None = None

    @model_validator(mode="after")
    def _ids_fit(self) -> Self:
        if self.ids is not None and len(self.ids) != len(self.documents):
            raise ValueError(f"ids has {len(self.ids)} entries for {len(self.documents)} documents")
        return self


class InsertParameters(OneIndex):
    batch_size: int = Field(default=500, ge=1, le=MAX_BATCH_SIZE)
    refresh: Refresh = False
    id_field: str | None = Field(default=None, min_length=1, max_length=256)
    return_ids: bool = True


class SearchParameters(IndexTargets, PageParameters):
    """One page of hits. `paginate` (or a `page_token`) pages with search_after in a point in time.

    `page_size` 0 asks for the total only (no hits), as Elasticsearch's own `size: 0` does.
    """

    page_size: int | None = Field(default=None, ge=0, le=MAX_RESULT_WINDOW)
    query: dict[str, Any] | None = None
    from_: int = Field(default=0, ge=0, le=MAX_RESULT_WINDOW, alias="from")
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
            raise ValueError("paginate needs a page_size of at least 1")
        return self

    @property
    def size(self) -> int:
        return DEFAULT_PAGE_SIZE if self.page_size is None else self.page_size

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


class AggregateParameters(IndexTargets):
    """`aggs` (Elasticsearch's `aggregations` is moved here) over the documents `query` matches."""

    query: dict[str, Any] | None = None
    aggs: dict[str, Any] = Field(min_length=1)


class CountParameters(IndexTargets):
    query: dict[str, Any] | None = None


class GetParameters(OneIndex):
    id: str | int
    source: bool | str | list[str] | None = Field(default=None, alias="_source")


class UpdateData(Strict):
    doc: dict[str, Any] = Field(min_length=1)


class UpdateParameters(OneIndex):
    id: str | int
    refresh: Refresh = False
    upsert: bool = False
    retry_on_conflict: int = Field(default=3, ge=0, le=10)


class DeleteParameters(OneIndex):
    """Delete one document by `id`, or every document matching `query` (delete by query)."""

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
