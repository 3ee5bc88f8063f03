"""Index operations: `create_index` (mappings, settings, aliases), `delete_index` and `list_indices`.

Both writes name exactly one concrete index (never a pattern). `if_not_exists` / `if_exists` make them
idempotent for callers that may run them twice; without them an existing (or missing) index is a
`permanent` error with its own code, so the caller can tell it from a failure.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import AsyncElasticsearch, BadRequestError, NotFoundError

from scf.connectors.elasticsearch.errors import error_types
from scf.connectors.elasticsearch.requests import (
    CreateIndexParameters,
    DeleteIndexParameters,
    ListIndicesParameters,
)
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome


async def run_create_index(
    es: AsyncElasticsearch, index: str, params: CreateIndexParameters
) -> OperationOutcome:
    try:
        reply = await es.indices.create(
            index=index, mappings=params.mappings, settings=params.settings, aliases=params.aliases
        )
    except BadRequestError as exc:
        if "resource_already_exists_exception" not in error_types(exc.body):
            raise
        if not params.if_not_exists:
            raise PermanentError(
                f"index {index!r} already exists; set parameters.if_not_exists to accept an existing index",
                code=ErrorCode.CONSTRAINT_VIOLATION,
            ) from None
        return OperationOutcome(result_data={"index": index, "created": False, "acknowledged": True})
    return OperationOutcome(
        records_affected=1,
        result_data={
            "index": index,
            "created": True,
            "acknowledged": bool(reply.body.get("acknowledged")),
            "shards_acknowledged": bool(reply.body.get("shards_acknowledged")),
        },
    )


async def run_delete_index(
    es: AsyncElasticsearch, index: str, params: DeleteIndexParameters
) -> OperationOutcome:
    try:
        reply = await es.indices.delete(index=index)
    except NotFoundError as exc:
        if "index_not_found_exception" not in error_types(exc.body):
            raise
        if not params.if_exists:
            raise PermanentError(
                f"index {index!r} does not exist; set parameters.if_exists to accept a missing index",
                code=ErrorCode.NOT_FOUND,
            ) from None
        return OperationOutcome(result_data={"index": index, "deleted": False, "acknowledged": True})
    return OperationOutcome(
        records_affected=1,
        result_data={"index": index, "deleted": True, "acknowledged": bool(reply.body.get("acknowledged"))},
    )


async def run_list_indices(
    es: AsyncElasticsearch, pattern: str, params: ListIndicesParameters
) -> OperationOutcome:
    reply = await es.cat.indices(
        index=pattern,
        format="json",
        bytes="b",
        expand_wildcards="all" if params.include_hidden else ["open", "closed"],
    )
    rows = reply.body if isinstance(reply.body, list) else []
    indices = sorted((index_row(r) for r in rows if isinstance(r, dict)), key=lambda r: str(r["index"]))
    return OperationOutcome(records_processed=len(indices), result_data={"indices": indices})


def index_row(row: dict[str, Any]) -> dict[str, Any]:
    """One `_cat/indices` row (all strings) as typed JSON."""
    return {
        "index": row.get("index"),
        "health": row.get("health"),
        "status": row.get("status"),
        "uuid": row.get("uuid"),
        "primaries": _number(row.get("pri")),
        "replicas": _number(row.get("rep")),
        "docs_count": _number(row.get("docs.count")),
        "size_bytes": _number(row.get("store.size")),
    }


def _number(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None  # closed indices report no counts
