"""Document operations: `insert` (bulk, batched), `get`, `update` (partial document) and `delete`.

Partial bulk failures are reported per item in the reply and only successes count as affected. Items
the cluster rejected for load (429) or unavailability (502-504) make the whole insert retryable: ids are
deterministic, so the retry overwrites what the first attempt wrote. If every document failed, the
insert is a `permanent` error naming the first failures.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import AsyncElasticsearch, NotFoundError

from scf.connectors.elasticsearch.bulk import (
    BulkSummary,
    bulk_operations,
    describe_failures,
    document_ids,
    raise_if_retryable,
)
from scf.connectors.elasticsearch.errors import error_types, safe_reason
from scf.connectors.elasticsearch.names import check_document_id
from scf.connectors.elasticsearch.requests import (
    DeleteParameters,
    GetParameters,
    InsertData,
    InsertParameters,
    UpdateData,
    UpdateParameters,
)
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome

MAX_REPORTED_QUERY_FAILURES = 100


async def run_insert(
    es: AsyncElasticsearch, index: str, data: InsertData, params: InsertParameters, key: str
) -> OperationOutcome:
    rows = data.documents
    ids = document_ids(rows, ids=data.ids, id_field=params.id_field, key=key)
    summary = BulkSummary()
    for start in range(0, len(rows), params.batch_size):
        batch, batch_ids = rows[start : start + params.batch_size], ids[start : start + params.batch_size]
        reply = await es.bulk(operations=bulk_operations(index, batch, batch_ids), refresh=params.refresh)
        items = reply.body.get("items") or []
        if len(items) != len(batch):
            raise PermanentError(
                f"the bulk reply has {len(items)} items for {len(batch)} documents", code=ErrorCode.INTERNAL
            )
        summary.add(items, start, ids)
        raise_if_retryable(summary, len(rows))
    if summary.failures and not summary.succeeded:
        raise PermanentError(describe_failures(summary.failures, len(rows)), code=ErrorCode.INVALID_DATA)
    return OperationOutcome(
        records_processed=len(rows),
        records_affected=summary.succeeded,
        result_data=summary.result_data(index, ids if params.return_ids else None),
    )


async def run_get(es: AsyncElasticsearch, index: str, params: GetParameters) -> OperationOutcome:
    doc_id = check_document_id(params.id)
    try:
        reply = await es.get(index=index, id=doc_id, source=params.source)
    except NotFoundError as exc:
        if error_types(exc.body):  # a missing index (or another error) rather than a missing document
            raise
        raise _no_document(index, doc_id) from None
    body = reply.body
    if not body.get("found", True):
        raise _no_document(index, doc_id)
    keep = ("_index", "_id", "_version", "_seq_no", "_primary_term", "_source")
    return OperationOutcome(records_processed=1, result_data={k: body[k] for k in keep if k in body})


async def run_update(
    es: AsyncElasticsearch, index: str, data: UpdateData, params: UpdateParameters
) -> OperationOutcome:
    doc_id = check_document_id(params.id)
    reply = await es.update(
        index=index,
        id=doc_id,
        doc=data.doc,
        doc_as_upsert=params.upsert,
        refresh=params.refresh,
        retry_on_conflict=params.retry_on_conflict,
    )
    result = str(reply.body.get("result"))
    return OperationOutcome(
        records_processed=1,
        records_affected=int(result in ("updated", "created")),
        result_data={"index": index, "id": doc_id, "result": result, "version": reply.body.get("_version")},
    )


async def run_delete(es: AsyncElasticsearch, index: str, params: DeleteParameters) -> OperationOutcome:
    if params.query is not None:
        return await _delete_by_query(es, index, params.query, params)
    doc_id = check_document_id(params.id)
    try:
        reply = await es.delete(index=index, id=doc_id, refresh=params.refresh)
        result = str(reply.body.get("result"))
    except NotFoundError as exc:  # a missing document answers 404 too: deleting it again is not an error
        if error_types(exc.body):
            raise
        result = "not_found"
    deleted = int(result == "deleted")
    return OperationOutcome(
        records_processed=1,
        records_affected=deleted,
        result_data={"index": index, "id": doc_id, "result": result, "deleted": deleted},
    )


async def _delete_by_query(
    es: AsyncElasticsearch, index: str, query: dict[str, Any], params: DeleteParameters
) -> OperationOutcome:
    reply = await es.delete_by_query(
        index=index, query=query, refresh=bool(params.refresh), conflicts=params.conflicts
    )
    body = reply.body
    failures = [_query_failure(f) for f in body.get("failures") or ()]
    deleted = int(body.get("deleted") or 0)
    return OperationOutcome(
        records_processed=int(body.get("total") or 0),
        records_affected=deleted,
        result_data={
            "index": index,
            "deleted": deleted,
            "total": int(body.get("total") or 0),
            "version_conflicts": int(body.get("version_conflicts") or 0),
            "timed_out": bool(body.get("timed_out")),
            "failures": failures[:MAX_REPORTED_QUERY_FAILURES],
            "failed_count": len(failures),
        },
    )


def _query_failure(failure: Any) -> dict[str, Any]:
    if not isinstance(failure, dict):
        return {"id": None, "status": None, "error_type": "unknown", "reason": safe_reason(failure)}
    cause = failure.get("cause") or failure.get("reason") or {}
    cause = cause if isinstance(cause, dict) else {"reason": cause}
    return {
        "id": failure.get("id"),
        "status": failure.get("status"),
        "error_type": str(cause.get("type") or "unknown"),
        "reason": safe_reason(cause.get("reason")),
    }


def _no_document(index: str, doc_id: str) -> PermanentError:
    return PermanentError(f"no document with id {doc_id!r} in index {index!r}", code=ErrorCode.NOT_FOUND)
