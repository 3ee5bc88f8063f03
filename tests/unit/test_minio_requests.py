"""MinIO requests are checked before any I/O: shapes, keys, limits, tokens, ingest formats.

The planners run here against an SDK client that points at nothing: planning never calls it.
"""

from __future__ import annotations

from typing import Any

import pytest
from minio import Minio

from scf.connectors.minio import MinIOStorageConnector
from scf.connectors.minio.buckets import BUCKET_PLANS
from scf.connectors.minio.ingest import object_format, plan_ingest
from scf.connectors.minio.names import ObjectNames
from scf.connectors.minio.objects import OBJECT_PLANS
from scf.connectors.minio.store import Store
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationRequest

PLANS = {**OBJECT_PLANS, **BUCKET_PLANS}
STORE = Store(
    sdk=Minio("127.0.0.1:9", secure=False),
    bucket="data-lake",
    names=ObjectNames("tenant/"),
    region=None,
    max_object_bytes=1000,
    max_ingest_bytes=5000,
    part_size=5 * 1024 * 1024,
)


def refusal(operation: str, **request: Any) -> PermanentError:
    with pytest.raises(PermanentError) as caught:
        req = OperationRequest(operation=operation, **request)
        if operation == "ingest":
            plan_ingest(STORE, req)
        else:
            PLANS[operation](STORE, req)
    return caught.value


def test_every_operation_the_connector_announces_has_a_planner() -> None:
    assert MinIOStorageConnector.operations == {*PLANS, "ingest"}


@pytest.mark.parametrize(
    "operation",
    ["get_object", "stat_object", "delete_object", "presigned_get", "presigned_put", "ingest"],
)
def test_every_key_taking_operation_refuses_traversal(operation: str) -> None:
    error = refusal(operation, parameters={"key": "../other-tenant/x.csv"})

    assert error.code == ErrorCode.INVALID_IDENTIFIER


def test_put_and_copy_check_every_key_they_name() -> None:
    put = refusal("put_object", parameters={"key": "a/../../b"}, data={"text": "x"})
    copy_from = refusal("copy_object", parameters={"key": "ok", "source_key": "/etc/passwd"})
    copy_to = refusal("copy_object", parameters={"key": "a\\b", "source_key": "ok"})

    assert {put.code, copy_from.code, copy_to.code} == {ErrorCode.INVALID_IDENTIFIER}
    assert "parameters.source_key" in copy_from.message


def test_delete_objects_names_the_bad_key_by_index() -> None:
    error = refusal("delete_objects", parameters={"keys": ["fine", "also/fine", "%2e%2e/x"]})

    assert error.code == ErrorCode.INVALID_IDENTIFIER
    assert "parameters.keys[2]" in error.message


def test_delete_objects_takes_at_most_a_thousand_keys() -> None:
    error = refusal("delete_objects", parameters={"keys": [f"k{i}" for i in range(1001)]})

    assert error.code == ErrorCode.INVALID_REQUEST


def test_list_objects_refuses_a_prefix_outside_the_folder() -> None:
    assert refusal("list_objects", parameters={"prefix": "../"}).code == ErrorCode.INVALID_IDENTIFIER


def test_a_range_longer_than_the_cap_is_refused_before_reading() -> None:
    error = refusal("get_object", parameters={"key": "big.bin", "offset": 0, "length": 1001})

    assert error.code == ErrorCode.LIMIT_EXCEEDED
    assert "max_object_bytes (1000)" in error.message


@pytest.mark.parametrize(
    ("operation", "request_body"),
    [
        ("put_object", {"parameters": {"key": "k", "contenttype": "text/csv"}, "data": {"text": "x"}}),
        ("get_object", {"parameters": {"key": "k", "encoding": "hex"}}),
        ("get_object", {"parameters": {"key": "k", "offset": -1}}),
        ("list_objects", {"parameters": {"page_size": 0}}),
        ("list_objects", {"parameters": {"page_size": 1001}}),
        ("presigned_get", {"parameters": {"key": "k", "expires": 0}}),
        ("presigned_put", {"parameters": {"key": "k", "expires": 7 * 24 * 3600 + 1}}),
        ("create_bucket", {"parameters": {"bucket": "someone-elses"}}),
        ("list_buckets", {"parameters": {"prefix": "x"}}),
        ("stat_object", {"parameters": {}}),
        ("stat_object", {"parameters": {"key": 5}}),
    ],
)
def test_misshapen_parameters_are_invalid_requests(operation: str, request_body: dict[str, Any]) -> None:
    assert refusal(operation, **request_body).code == ErrorCode.INVALID_REQUEST


def test_a_foreign_page_token_is_refused_before_listing() -> None:
    error = refusal("list_objects", parameters={"prefix": "a/"}, page_token="bm90LWEtdG9rZW4")

    assert error.code == ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize(
    ("key", "declared", "expected"),
    [
        ("x/data.csv", None, "csv"),
        ("x/DATA.TSV", None, "csv"),
        ("scan.pdf", None, "pdf"),
        ("export", "csv", "csv"),
        ("data.csv", "pdf", "pdf"),
    ],
)
def test_the_ingest_format_is_declared_or_follows_the_extension(
    key: str, declared: Any, expected: str
) -> None:
    assert object_format(key, declared) == expected


@pytest.mark.parametrize("key", ["export", "archive.tar.gz", "dir.csv/file", "notes.txt"])
def test_an_unknown_extension_asks_for_the_format(key: str) -> None:
    with pytest.raises(PermanentError, match=r"parameters\.format"):
        object_format(key, None)


def test_a_pdf_object_is_planned_for_the_pdf_parser() -> None:
    plan = plan_ingest(
        STORE, OperationRequest(operation="ingest", parameters={"key": "scan.pdf", "pages": [1]})
    )

    assert plan.format == "pdf"
    assert plan.parser_parameters == {"pages": [1]}


def test_ingest_hands_other_parameters_to_the_csv_parser() -> None:
    request = OperationRequest(
        operation="ingest", parameters={"key": "d.csv", "delimiter": ";", "page_size": 5}, page_token="t"
    )

    plan = plan_ingest(STORE, request)

    assert plan.name == "tenant/d.csv"
    assert plan.parser_parameters == {"delimiter": ";", "page_size": 5}
    assert plan.page_token == "t"
