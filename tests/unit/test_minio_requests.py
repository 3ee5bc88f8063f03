"""MinIO requests are checked before any I/O: shapes, keys, limits, tokens, ingest formats.

The planners run here against an SDK client that points at nothing: planning never calls it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from minio import Minio

from scf.connectors.minio import MinIOStorageConnector
from scf.connectors.minio.ingest import IngestParameters, object_format
from scf.connectors.minio.names import ObjectNames
from scf.connectors.minio.store import Planner, Store
from scf.connectors.minio.table import OPERATIONS
from scf.connectors.operation_table import Call
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationRequest
from scf.schemas.validation import parse_model

STORE = Store(
    sdk=Minio("127.0.0.1:9", secure=False),
    bucket="data-lake",
    names=ObjectNames("tenant/"),
    region=None,
    max_object_bytes=1000,
    max_ingest_bytes=5000,
    part_size=5 * 1024 * 1024,
)


class PlanOnly:
    """Stands in for the connector: runs a row's planner on STORE (no I/O) and returns the plan."""

    async def run_plan(self, operation: str, planner: Planner, call: Call[Any, Any]) -> Any:
        return planner(STORE, call)


def refusal(operation: str, **request: Any) -> PermanentError:
    row = OPERATIONS[operation]
    connector: Any = PlanOnly()

    async def plan() -> Any:
        call = row.parse(OperationRequest(operation=operation, **request), "minio")
        return await row.handler(connector, call)

    with pytest.raises(PermanentError) as caught:
        asyncio.run(plan())
    return caught.value


def test_every_operation_the_connector_announces_is_a_row() -> None:
    assert MinIOStorageConnector.operations == set(OPERATIONS)


@pytest.mark.parametrize(
    "operation",
    ["get_object", "stat_object", "delete_object", "presigned_get", "presigned_put"],
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


def ingest_parameters(**raw: Any) -> IngestParameters:
    return parse_model(IngestParameters, raw, "parameters")


def test_ingest_takes_the_pdf_options_for_a_pdf_object() -> None:
    params = ingest_parameters(key="scan.pdf", pages=[1])

    params.only_for(object_format(params.key, params.format))
    assert params.pages == [1]


def test_ingest_takes_the_csv_options_and_page_size_for_a_csv_object() -> None:
    params = ingest_parameters(key="d.csv", delimiter=";", page_size=5)

    params.only_for("csv")
    assert (params.delimiter, params.page_size) == (";", 5)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [({"key": "d.csv", "pages": [1]}, "csv"), ({"key": "s.pdf", "delimiter": ";"}, "pdf")],
)
def test_ingest_refuses_the_options_of_the_other_format(raw: dict[str, Any], kind: Any) -> None:
    with pytest.raises(PermanentError) as caught:
        ingest_parameters(**raw).only_for(kind)

    assert caught.value.code == ErrorCode.INVALID_REQUEST


def test_ingest_refuses_an_unknown_option_before_any_io() -> None:
    with pytest.raises(PermanentError) as caught:
        ingest_parameters(key="d.csv", delimitter=";")

    assert caught.value.code == ErrorCode.INVALID_REQUEST
