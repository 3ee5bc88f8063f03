"""Elasticsearch insert, the pure parts: deterministic ids, bulk bodies and the per-item summary."""

from __future__ import annotations

from typing import Any

import pytest

from scf.connectors.elasticsearch.bulk import (
    MAX_REPORTED_FAILURES,
    BulkSummary,
    bulk_operations,
    derived_id,
    describe_failures,
    document_ids,
    raise_if_retryable,
)
from scf.schemas.errors import ConnectorError, ErrorCategory, PermanentError

DOCS: list[dict[str, Any]] = [{"sku": "a-1", "n": 1}, {"sku": "b-2", "n": 2}, {"sku": 3, "n": 3}]


def test_derived_ids_are_deterministic_per_key_and_position() -> None:
    first = document_ids(DOCS, ids=None, id_field=None, key="op_123")
    again = document_ids(DOCS, ids=None, id_field=None, key="op_123")
    other = document_ids(DOCS, ids=None, id_field=None, key="op_456")

    assert first == again  # a redelivered insert overwrites its own documents
    assert len(set(first)) == 3
    assert not set(first) & set(other)
    assert first[1] == derived_id("op_123", 1)


def test_given_ids_win_and_are_checked() -> None:
    assert document_ids(DOCS, ids=["x", 7, "z"], id_field="sku", key="k") == ["x", "7", "z"]

    with pytest.raises(PermanentError) as caught:
        document_ids(DOCS, ids=["x", "", "z"], id_field=None, key="k")
    assert "data.ids[1]" in caught.value.message


def test_an_id_field_supplies_ids() -> None:
    assert document_ids(DOCS, ids=None, id_field="sku", key="k") == ["a-1", "b-2", "3"]


def test_a_document_without_its_id_field_is_refused_by_position() -> None:
    with pytest.raises(PermanentError) as caught:
        document_ids([{"sku": "a"}, {"other": 1}], ids=None, id_field="sku", key="k")

    assert "documents[1].sku" in caught.value.message


def test_bulk_operations_use_the_index_action_with_explicit_ids() -> None:
    operations = bulk_operations("books", DOCS[:2], ["i1", "i2"])

    assert operations == [
        {"index": {"_index": "books", "_id": "i1"}},
        DOCS[0],
        {"index": {"_index": "books", "_id": "i2"}},
        DOCS[1],
    ]


def _ok(doc_id: str, result: str = "created") -> dict[str, Any]:
    return {
        "index": {
            "_index": "books",
            "_id": doc_id,
            "result": result,
            "status": 201 if result == "created" else 200,
        }
    }


def _failed(doc_id: str, status: int, error_type: str, reason: str = "nope") -> dict[str, Any]:
    error = {"type": error_type, "reason": reason}
    return {"index": {"_index": "books", "_id": doc_id, "status": status, "error": error}}


def test_the_summary_counts_created_updated_and_lists_each_failure_by_position() -> None:
    summary = BulkSummary()
    ids = ["a", "b", "c", "d"]

    summary.add([_ok("a"), _failed("b", 400, "document_parsing_exception")], 0, ids)
    summary.add([_ok("c", "updated"), _ok("d")], 2, ids)

    assert (summary.created, summary.updated, summary.succeeded) == (2, 1, 3)
    data = summary.result_data("books", ids)
    assert data["failed"] == [
        {
            "position": 1,
            "id": "b",
            "status": 400,
            "error_type": "document_parsing_exception",
            "reason": "nope",
        }
    ]
    assert data["failed_count"] == 1
    assert data["ids"] == ids
    assert summary.retryable() == []


def test_rejections_for_load_or_unavailability_are_retryable() -> None:
    summary = BulkSummary()
    summary.add(
        [
            _failed("a", 429, "es_rejected_execution_exception"),
            _failed("b", 503, "unavailable_shards_exception"),
            _failed("c", 409, "version_conflict_engine_exception"),
        ],
        0,
        ["a", "b", "c"],
    )

    assert [f.id for f in summary.retryable()] == ["a", "b"]


@pytest.mark.parametrize(
    ("statuses", "category"),
    [
        ((429, 400), ErrorCategory.RESOURCE),
        ((503, 429), ErrorCategory.RESOURCE),
        ((502, 504), ErrorCategory.TRANSIENT),
    ],
)
def test_an_insert_with_retryable_rejections_raises_a_retryable_error(
    statuses: tuple[int, int], category: ErrorCategory
) -> None:
    summary = BulkSummary()
    summary.add([_ok("a"), *(_failed(f"x{s}", s, "rejected") for s in statuses)], 0, ["a", "b", "c"])

    with pytest.raises(ConnectorError) as caught:
        raise_if_retryable(summary, 3)

    assert caught.value.category is category
    assert caught.value.retryable
    assert "retrying the whole insert is safe" in caught.value.message


def test_permanent_item_failures_alone_are_not_retryable() -> None:
    summary = BulkSummary()
    summary.add(
        [_failed("a", 400, "document_parsing_exception"), _failed("b", 409, "conflict")], 0, ["a", "b"]
    )

    raise_if_retryable(summary, 2)  # nothing raised: they are reported in the reply instead


def test_value_previews_are_dropped_from_reasons() -> None:
    summary = BulkSummary()
    reason = (
        "failed to parse field [pin] of type [integer] in document with id 'a'. "
        "Preview of field's value: '4321'"
    )

    summary.add([_failed("a", 400, "document_parsing_exception", reason)], 0, ["a"])

    assert "4321" not in summary.failures[0].reason
    assert "failed to parse field [pin]" in summary.failures[0].reason


def test_an_item_without_an_error_object_still_counts_as_failed() -> None:
    summary = BulkSummary()
    summary.add([{"index": {"_id": "a", "status": 500}}, {}], 0, ["a", "b"])

    assert [(f.id, f.status, f.error_type) for f in summary.failures] == [
        ("a", 500, "unknown"),
        ("b", 0, "unknown"),
    ]


def test_the_reply_lists_a_bounded_number_of_failures_but_counts_them_all() -> None:
    summary = BulkSummary()
    ids = [str(i) for i in range(MAX_REPORTED_FAILURES + 5)]
    summary.add([_failed(i, 400, "x") for i in ids], 0, ids)

    data = summary.result_data("books", None)

    assert len(data["failed"]) == MAX_REPORTED_FAILURES
    assert data["failed_count"] == MAX_REPORTED_FAILURES + 5
    assert "ids" not in data


def test_describe_failures_names_the_first_few() -> None:
    summary = BulkSummary()
    summary.add(
        [_failed(str(i), 400, "mapper_parsing_exception") for i in range(5)], 0, [str(i) for i in range(5)]
    )

    text = describe_failures(summary.failures, 9)

    assert text.startswith("5 of 9 documents failed: position 0 (id '0'): HTTP 400 mapper_parsing_exception")
    assert text.endswith("and 2 more")
