"""The shapes of `data` and `parameters` for each Qdrant operation, validated before any I/O.

`parameters` says what to act on and how: the collection, point ids to read or delete, the query vector
and filter of a search, page size and options. `data` carries the payload: the vectors to write, with
their metadata (payloads) and optional ids. Unknown keys are refused so that a misspelt option is not
silently ignored; a request that does not fit is a `permanent` INVALID_REQUEST naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt, StrictStr, model_validator

from scf.connectors.operation_table import PageParameters, Strict
from scf.connectors.qdrant.filters import FilterSpec
from scf.connectors.qdrant.ids import RESERVED_ID_KEY
from scf.schemas.configs.qdrant import COLLECTION_NAME_PATTERN, MAX_VECTOR_DIMENSION, HnswSettings, Metric
from scf.schemas.errors import ErrorCode, PermanentError

MAX_POINTS_PER_REQUEST = 100_000
MAX_BATCH_SIZE = 1_000
MAX_LIMIT = 1_000
MAX_OFFSET = 10_000
#: Points per page when `parameters.page_size` is not given.
DEFAULT_SEARCH_PAGE = 10
DEFAULT_SCROLL_PAGE = 100
MAX_IDS = 10_000

Vector = Annotated[
    list[Annotated[float, Field(strict=True, allow_inf_nan=False)]],
    Field(min_length=1, max_length=MAX_VECTOR_DIMENSION),
]
CallerId = StrictInt | StrictStr
Ids = Annotated[list[CallerId], Field(min_length=1, max_length=MAX_IDS)]
VectorName = Annotated[str, Field(min_length=1, max_length=255)]


class Target(Strict):
    """Which collection: `parameters.collection`, else the configured `custom_config.collection_name`."""

    collection: str | None = Field(default=None, pattern=COLLECTION_NAME_PATTERN)


class ReadOptions(Target):
    with_payload: bool | Annotated[list[StrictStr], Field(max_length=256)] = True
    with_vectors: bool = False


# --- writes -----------------------------------------------------------------------------------------


class WriteData(Strict):
    """The spec's vector-storage shape: `vectors`, optional `metadata` and `ids` of the same length."""

    vectors: list[Vector] = Field(min_length=1, max_length=MAX_POINTS_PER_REQUEST)
    metadata: list[dict[str, Any]] | None = None
    ids: list[CallerId] | None = None

    @model_validator(mode="after")
    def _lengths_agree(self) -> WriteData:
        count = len(self.vectors)
        for name, values in (("metadata", self.metadata), ("ids", self.ids)):
            if values is not None and len(values) != count:
                raise ValueError(f"{name} has {len(values)} entries for {count} vectors")
        if any(RESERVED_ID_KEY in entry for entry in self.metadata or ()):
            raise ValueError(f"metadata must not use the reserved key {RESERVED_ID_KEY!r}")
        if self.ids is not None and len(set(map(str, self.ids))) != count:
            raise ValueError("ids must be unique within one request")
        return self


class WriteParameters(Target):
    batch_size: int = Field(default=64, ge=1, le=MAX_BATCH_SIZE)
    vector_name: VectorName | None = None
    create_collection_if_missing: bool = False


# --- reads ------------------------------------------------------------------------------------------


class SearchParameters(ReadOptions, PageParameters):
    """How to search: the query `vector`, an optional `filter` and threshold, one page of the nearest."""

    vector: Vector
    page_size: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    score_threshold: float | None = Field(default=None, allow_inf_nan=False)
    filter: FilterSpec | None = None
    vector_name: VectorName | None = None

    @property
    def limit(self) -> int:
        return DEFAULT_SEARCH_PAGE if self.page_size is None else self.page_size


class RetrieveParameters(ReadOptions):
    ids: Ids


class ScrollParameters(ReadOptions, PageParameters):
    page_size: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    filter: FilterSpec | None = None

    @property
    def limit(self) -> int:
        return DEFAULT_SCROLL_PAGE if self.page_size is None else self.page_size


class CountParameters(Target):
    filter: FilterSpec | None = None
    exact: bool = True


# --- deletes and collections ------------------------------------------------------------------------


class DeleteParameters(Target):
    """Which points: `ids`, or every point a non-empty `filter` matches (checked by `require_selection`)."""

    ids: Ids | None = None
    filter: FilterSpec | None = None


class CreateCollectionParameters(Target):
    """The spec's Qdrant configuration keys; unset ones come from `custom_config`."""

    vector_dimension: int | None = Field(default=None, ge=1, le=MAX_VECTOR_DIMENSION)
    metric: Metric | None = None
    index_type: Literal["HNSW", "hnsw"] = "HNSW"
    hnsw_config: HnswSettings | None = None
    replication_factor: int | None = Field(default=None, ge=1, le=64)
    shard_number: int | None = Field(default=None, ge=1, le=1_024)
    on_disk: bool | None = None
    if_not_exists: bool = False


def require_selection(parameters: DeleteParameters) -> None:
    """A delete names its points by `parameters.ids` or by a non-empty `parameters.filter`, never both."""
    has_filter = parameters.filter is not None and not parameters.filter.is_empty_filter
    if (parameters.ids is None) == (not has_filter):
        raise PermanentError(
            "delete needs exactly one of parameters.ids or a non-empty parameters.filter "
            "(use delete_collection to remove every point)",
            code=ErrorCode.INVALID_REQUEST,
        )
