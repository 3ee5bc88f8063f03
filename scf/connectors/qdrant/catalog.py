"""What the connector knows about collections: their vector spaces (cached), and how to create one.

Writes and searches check every vector's dimension against the collection before sending anything, so
a mismatch is a clear `permanent` error naming both sizes. The cache is per connector and forgotten
for a collection whenever an operation on it fails (it may have been recreated elsewhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qdrant_client import AsyncQdrantClient, models

from scf.connectors.qdrant.requests import CreateCollectionParameters
from scf.connectors.qdrant.settings import DISTANCES
from scf.schemas.configs.qdrant import HnswSettings, QdrantConfig
from scf.schemas.errors import ErrorCode, PermanentError

UNNAMED = ""  # the key of a collection's single unnamed vector


@dataclass(frozen=True)
class VectorSpace:
    size: int
    distance: str  # Qdrant's Distance value: "Cosine", "Dot", "Euclid", "Manhattan"


Spaces = dict[str, VectorSpace]


def spaces_of(params: models.CollectionParams) -> Spaces:
    vectors = params.vectors
    if isinstance(vectors, models.VectorParams):
        return {UNNAMED: VectorSpace(vectors.size, vectors.distance.value)}
    return {name: VectorSpace(v.size, v.distance.value) for name, v in (vectors or {}).items()}


def pick_space(spaces: Spaces, collection: str, vector_name: str | None) -> tuple[str | None, VectorSpace]:
    """The vector a request uses: the named one, the unnamed one, or a collection's only named one."""
    if vector_name is not None:
        if vector_name not in spaces:
            raise PermanentError(
                f"collection {collection!r} has no vector named {vector_name!r}"
                + (f"; it has {', '.join(sorted(spaces))}" if UNNAMED not in spaces else ""),
                code=ErrorCode.INVALID_REQUEST,
            )
        return vector_name, spaces[vector_name]
    if UNNAMED in spaces:
        return None, spaces[UNNAMED]
    if len(spaces) == 1:
        (name, space), *_ = spaces.items()
        return name, space
    raise PermanentError(
        f"collection {collection!r} has named vectors ({', '.join(sorted(spaces)) or 'none'}); "
        "say which with parameters.vector_name",
        code=ErrorCode.INVALID_REQUEST,
    )


def check_dimensions(vectors: Sequence[Sequence[float]], space: VectorSpace, collection: str) -> None:
    for index, vector in enumerate(vectors):
        if len(vector) != space.size:
            raise PermanentError(
                f"vector dimension mismatch for collection {collection!r}: expected {space.size}, "
                f"got {len(vector)} (vector {index})",
                code=ErrorCode.INVALID_DATA,
            )


class Catalog:
    """Vector spaces per collection, fetched once and kept until `forget`."""

    def __init__(self) -> None:
        self._spaces: dict[str, Spaces] = {}

    async def spaces(self, client: AsyncQdrantClient, collection: str) -> Spaces:
        cached = self._spaces.get(collection)
        if cached is None:
            info = await client.get_collection(collection)
            cached = self._spaces[collection] = spaces_of(info.config.params)
        return cached

    async def vector_for(
        self,
        client: AsyncQdrantClient,
        collection: str,
        vector_name: str | None,
        vectors: Sequence[Sequence[float]],
    ) -> str | None:
        """The vector name to write or search, once `vectors` fit it; a cached space that disagrees is
        fetched again first (the collection may have been recreated by another client)."""
        name, space = pick_space(await self.spaces(client, collection), collection, vector_name)
        if all(len(vector) == space.size for vector in vectors):
            return name
        self.forget(collection)
        name, space = pick_space(await self.spaces(client, collection), collection, vector_name)
        check_dimensions(vectors, space, collection)
        return name

    def forget(self, collection: str) -> None:
        self._spaces.pop(collection, None)

    def clear(self) -> None:
        self._spaces.clear()


@dataclass(frozen=True)
class CollectionPlan:
    """A new collection: request parameters first, then `custom_config`, then Qdrant's defaults."""

    name: str
    space: VectorSpace
    hnsw: HnswSettings | None
    replication_factor: int | None
    shard_number: int | None
    on_disk: bool | None

    def vectors_config(self) -> models.VectorParams:
        distance = models.Distance(self.space.distance)
        return models.VectorParams(size=self.space.size, distance=distance, on_disk=self.on_disk)

    def hnsw_config(self) -> models.HnswConfigDiff | None:
        if self.hnsw is None:
            return None
        return models.HnswConfigDiff(**self.hnsw.model_dump(exclude_none=True))


def collection_plan(
    name: str, params: CreateCollectionParameters, config: QdrantConfig, fallback_size: int | None = None
) -> CollectionPlan:
    size = params.vector_dimension or config.vector_dimension or fallback_size
    if size is None:
        raise PermanentError(
            f"creating collection {name!r} needs a vector_dimension "
            "(in parameters or custom_config.vector_dimension)",
            code=ErrorCode.INVALID_REQUEST,
        )
    metric = params.metric or config.metric
    return CollectionPlan(
        name=name,
        space=VectorSpace(size, models.Distance[DISTANCES[metric]].value),
        hnsw=params.hnsw_config or config.hnsw_config,
        replication_factor=params.replication_factor or config.replication_factor,
        shard_number=params.shard_number or config.shard_number,
        on_disk=params.on_disk,
    )


async def create_collection(client: AsyncQdrantClient, plan: CollectionPlan) -> None:
    await client.create_collection(
        plan.name,
        vectors_config=plan.vectors_config(),
        hnsw_config=plan.hnsw_config(),
        replication_factor=plan.replication_factor,
        shard_number=plan.shard_number,
    )
