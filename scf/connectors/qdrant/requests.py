"""The shapes of `data` and `parameters` for each Qdrant operation, validated before any I/O.

What to act on is `data` (vectors, a query vector, ids); how is `parameters` (collection, limit,
filter, options). Unknown keys are refused so that a misspelt option is not silently ignored; a request
that does not fit is a `permanent` INVALID_REQUEST naming the field, never a driver error.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    model_validator,
)

from scf.connectors.qdrant.filters import FilterSpec
from scf.connectors.qdrant.ids import RESERVED_ID_KEY
from scf.schemas.configs.qdrant import COLLECTION_NAME_PATTERN, MAX_VECTOR_DIMENSION, HnswSettings, Metric
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.validation import parse_model

#: Validates `data` or `parameters` against a model (the helper every connector shares).
parse = parse_model

MAX_POINTS_PER_REQUEST = 100_000
MAX_BATCH_SIZE = 1_000
MAX_LIMIT = 1_000
MAX_IDS = 10_000

Vector = Annotated[
    list[Annotated[float, Field(strict=True, allow_inf_nan=False)]],
    Field(min_length=1, max_length=MAX_VECTOR_DIMENSION),
]
CallerId = StrictInt | StrictStr
Ids = Annotated[list[CallerId], Field(min_length=1, max_length=MAX_IDS)]
VectorName = Annotated[str, Field(min_length=1, max_length=255)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class NoData(_Strict):
    """`data` of operations that take none."""


class Target(_Strict):
    """Which collection: `parameters.collection` (or `collection_name`), else the configured default."""

    collection: str | None = Field(
        default=None,
        pattern=COLLECTION_NAME_PATTERN,
        validation_alias=AliasChoices("collection", "collection_name"),
    )


class ReadOptions(Target):
    with_payload: bool | Annotated[list[StrictStr], Field(max_length=256)] = True
    with_vectors: bool = False


# --- writes -----------------------------------------------------------------------------------------


class WriteData(_Strict):
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


class SearchData(_Strict):
    vector: Vector | None = None
    query_vector: Vector | None = None

    @model_validator(mode="after")
    def _one_vector(self) -> SearchData:
        if (self.vector is None) == (self.query_vector is None):
            raise ValueError("give exactly one of vector or query_vector")
        return self

    @property
    def query(self) -> list[float]:
        query = self.vector if self.vector is not None else self.query_vector
        assert query is not None  # guaranteed by the validator
        return query


class SearchParameters(ReadOptions):
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=10_000)
    score_threshold: float | None = Field(default=None, allow_inf_nan=False)
    filter: FilterSpec | None = None
    vector_name: VectorName | None = None


class IdsData(_Strict):
    ids: Ids


class ScrollParameters(ReadOptions):
    limit: int = Field(default=100, ge=1, le=MAX_LIMIT)
    filter: FilterSpec | None = None


class CountParameters(Target):
    filter: FilterSpec | None = None
    exact: bool = True


# --- deletes and collections ------------------------------------------------------------------------


class DeleteData(_Strict):
    ids: Ids | None = None


class DeleteParameters(Target):
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


class NoParameters(_Strict):
    """`parameters` of operations that take none."""


def require_selection(data: DeleteData, parameters: DeleteParameters) -> None:
    """A delete names its points by `data.ids` or by a non-empty `parameters.filter`, never both."""
    has_filter = parameters.filter is not None and not parameters.filter.is_empty_filter
    if (data.ids is None) == (not has_filter):
        raise PermanentError(
            "delete needs exactly one of data.ids or a non-empty parameters.filter "
            "(use delete_collection to remove every point)",
            code=ErrorCode.INVALID_REQUEST,
        )
