"""Pure parts of `insert`: document ids, bulk bodies, the per-item summary of a reply, the retry decision.

Every document gets a deterministic `_id` (given, taken from a field, or derived from the idempotency
key or operation id and its position) and is written with the bulk `index` action, so a redelivered or
retried insert overwrites its own documents instead of adding copies.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from scf.connectors.elasticsearch.errors import safe_reason
from scf.connectors.elasticsearch.names import check_document_id
from scf.schemas.errors import ErrorCode, ResourceError, TransientError

#: Namespace of derived ids: uuid5(ID_NAMESPACE, f"{idempotency_key or operation_id}:{position}").
ID_NAMESPACE = uuid.UUID("6f1c2a47-3b7e-5d1a-9c0e-2e4f8a9b1d35")
#: Per-item statuses worth retrying the whole (idempotent) insert for.
RESOURCE_ITEM_STATUSES = frozenset({429})
TRANSIENT_ITEM_STATUSES = frozenset({502, 503, 504})
#: A reply lists at most this many failed items; `failed_count` always has the full number.
MAX_REPORTED_FAILURES = 1000


def derived_id(key: str, position: int) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f"{key}:{position}"))


def document_ids(
    documents: Sequence[dict[str, Any]], *, ids: Sequence[Any] | None, id_field: str | None, key: str
) -> list[str]:
    """One `_id` per document: `ids` if given, else the `id_field` value, else derived from `key`."""
    if ids is not None:
        return [check_document_id(value, f"data.ids[{i}]") for i, value in enumerate(ids)]
    if id_field is not None:
        return [
            check_document_id(doc.get(id_field), f"documents[{i}].{id_field}")
            for i, doc in enumerate(documents)
        ]
    return [derived_id(key, i) for i in range(len(documents))]


def bulk_operations(
    index: str, documents: Sequence[dict[str, Any]], ids: Sequence[str]
) -> list[dict[str, Any]]:
    """The bulk body: an `index` action line followed by its document, for each document."""
    operations: list[dict[str, Any]] = []
    for doc, doc_id in zip(documents, ids, strict=True):
        operations.append({"index": {"_index": index, "_id": doc_id}})
        operations.append(doc)
    return operations


@dataclass(frozen=True)
class ItemFailure:
    position: int
    id: str
    status: int
    error_type: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "id": self.id,
            "status": self.status,
            "error_type": self.error_type,
            "reason": self.reason,
        }


@dataclass
class BulkSummary:
    """What a sequence of bulk replies did, item by item, positions counted over the whole insert."""

    created: int = 0
    updated: int = 0
    failures: list[ItemFailure] = field(default_factory=list)

    @property
    def succeeded(self) -> int:
        return self.created + self.updated

    def retryable(self) -> list[ItemFailure]:
        statuses = RESOURCE_ITEM_STATUSES | TRANSIENT_ITEM_STATUSES
        return [f for f in self.failures if f.status in statuses]

    def add(self, items: Sequence[dict[str, Any]], offset: int, ids: Sequence[str]) -> None:
        """Fold one bulk reply's `items` in; item k is document `offset + k` of the insert."""
        for k, item in enumerate(items):
            result: dict[str, Any] = next(iter(item.values()), {}) if isinstance(item, dict) else {}
            position = offset + k
            doc_id = str(result.get("_id") or (ids[position] if position < len(ids) else ""))
            status = int(result.get("status") or 0)
            error = result.get("error")
            if error is None and 200 <= status < 300:
                if result.get("result") == "created":
                    self.created += 1
                else:
                    self.updated += 1
                continue
            error_type, reason = _describe(error)
            self.failures.append(ItemFailure(position, doc_id, status, error_type, reason))

    def result_data(self, index: str, ids: Sequence[str] | None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "index": index,
            "indexed": self.succeeded,
            "created": self.created,
            "updated": self.updated,
            "failed": [f.as_dict() for f in self.failures[:MAX_REPORTED_FAILURES]],
            "failed_count": len(self.failures),
        }
        if ids is not None:
            data["ids"] = list(ids)
        return data


def _describe(error: Any) -> tuple[str, str]:
    if isinstance(error, dict):
        return str(error.get("type") or "unknown"), safe_reason(error.get("reason"))
    if error is None:
        return "unknown", "the cluster reported no result for this document"
    return "unknown", safe_reason(error)


def raise_if_retryable(summary: BulkSummary, total: int) -> None:
    """Raise `resource` (any 429) or `transient` (502-504) when items failed for reasons a retry cures."""
    retryable = summary.retryable()
    if not retryable:
        return
    message = (
        describe_failures(retryable, total) + "; retrying the whole insert is safe (ids are deterministic)"
    )
    if any(f.status in RESOURCE_ITEM_STATUSES for f in retryable):
        raise ResourceError(message, code=ErrorCode.LIMIT_EXCEEDED)
    raise TransientError(message, code=ErrorCode.CONNECTION_FAILED)


def describe_failures(failures: Sequence[ItemFailure], total: int, limit: int = 3) -> str:
    """A one-line account of failed items for an error message: count, then the first few."""
    shown = "; ".join(
        f"position {f.position} (id {f.id!r}): HTTP {f.status} {f.error_type}: {f.reason}"
        for f in failures[:limit]
    )
    more = len(failures) - limit
    return f"{len(failures)} of {total} documents failed: {shown}" + (
        f"; and {more} more" if more > 0 else ""
    )
