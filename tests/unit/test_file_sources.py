"""The request convention for the file connectors: the file in `data`, options in `parameters`.

CSV and PDF read `data.object` through the bound `ObjectReader` (as MinIO's `ingest` reads its own
objects) and call the pure parsers of `scf.connectors.parsing`; a sink batch goes out in the convention.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest

from scf.connectors.csv_ingest import CSVIngestionConnector
from scf.connectors.minio.ingest import IngestParameters, handle_ingest
from scf.connectors.operation_table import Call, NoData
from scf.connectors.sources import SinkTarget
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationRequest
from scf.schemas.validation import parse_model

PEOPLE = b"name;age\nAda;36\nGrace;45\nLinus;50\n"


class Objects:
    """An object store double: what `ObjectReader` asks of MinIO."""

    def __init__(self, **objects: bytes) -> None:
        self.objects = objects
        self.reads: list[tuple[str, int]] = []

    async def read_object_bytes(self, key: str, max_bytes: int) -> bytes:
        self.reads.append((key, max_bytes))
        return self.objects[key]

    @contextmanager
    def stream_object(self, key: str, max_bytes: int) -> Iterator[Iterator[bytes]]:
        yield iter([self.objects[key]])


def csv_connector(store: Objects | None = None) -> CSVIngestionConnector:
    connector = CSVIngestionConnector(ServiceConnection(service_type="csv", service_name="files"))
    if store is not None:

        async def lookup(name: str) -> Any:
            assert name == "lake"
            return store

        connector.bindings.lookup = lookup
    return connector


async def test_the_spec_csv_example_runs_as_written() -> None:
    outcome = await csv_connector().execute(
        OperationRequest(
            operation="ingest",
            data={"file_data": "a,b\n1,x\n2,y\n"},
            parameters={"delimiter": ",", "has_headers": True, "encoding": "utf-8"},
        )
    )

    assert outcome.records_processed == 2
    assert outcome.result_data["records"] == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]


async def test_a_csv_object_is_read_through_the_object_reader_and_paged() -> None:
    store = Objects(**{"in/people.csv": PEOPLE})
    connector = csv_connector(store)
    data = {"object": {"service_name": "lake", "key": "in/people.csv"}}

    first = await connector.execute(
        OperationRequest(operation="ingest", data=data, parameters={"page_size": 2})
    )
    second = await connector.execute(
        OperationRequest(
            operation="ingest", data=data, parameters={"page_size": 2}, page_token=first.next_page_token
        )
    )

    assert [r["name"] for r in first.result_data["records"]] == ["Ada", "Grace"]
    assert [r["name"] for r in second.result_data["records"]] == ["Linus"]
    assert second.next_page_token is None
    assert store.reads == [("in/people.csv", connector.config.max_bytes)] * 2


@pytest.mark.parametrize(
    ("operation", "request_body"),
    [
        ("ingest", {"data": {"file_data": "a\n1\n", "url": "https://example.org/a.csv"}}),
        ("validate", {"data": {"file_data": "a\n1\n"}, "page_token": "t"}),
        ("preview", {"data": {"file_data": "a\n1\n"}, "parameters": {"page_size": 2}}),
        ("ingest", {"data": {"file_data": "a\n1\n", "sink": {"service_name": "pg", "table_name": "t"}}}),
    ],
)
async def test_misplaced_csv_fields_are_refused_before_any_work(
    operation: str, request_body: dict[str, Any]
) -> None:
    with pytest.raises(PermanentError) as caught:
        await csv_connector().execute(OperationRequest(operation=operation, **request_body))

    assert caught.value.code == ErrorCode.INVALID_REQUEST


async def test_the_old_preview_rows_name_still_works() -> None:
    request = OperationRequest(
        operation="preview", data={"file_data": "n\n1\n2\n3\n"}, parameters={"rows": 2}
    )

    outcome = await csv_connector().execute(request)

    assert [r["n"] for r in outcome.result_data["records"]] == [1, 2]


def test_a_sink_batch_goes_out_in_the_convention() -> None:
    table = SinkTarget(service_name="pg", table_name="people", parameters={"on_conflict": "ignore"})
    index = SinkTarget(service_name="es", index="people")
    records = [{"name": "Ada"}]

    assert table.request_body(records) == (
        {"records": records},
        {"on_conflict": "ignore", "table": "people", "batch_size": 1},
    )
    assert index.request_body(records) == ({"documents": records}, {"index": "people"})


class MinioDouble:
    """What `handle_ingest` uses of a MinIO connector: its config, its objects and its time."""

    def __init__(self, store: Objects) -> None:
        self.config = SimpleNamespace(max_ingest_bytes=1000, bucket_name="data-lake")
        self.service_name = "lake"
        self.read_object_bytes = store.read_object_bytes
        self.stream_object = store.stream_object

    def time_left(self, limit: float | None = None) -> float | None:
        return limit


def minio_double(store: Objects) -> Any:
    return MinioDouble(store)


def ingest_call(page_token: str | None = None, **parameters: Any) -> Call[NoData, IngestParameters]:
    request = OperationRequest(operation="ingest", parameters=parameters, page_token=page_token)
    return Call(NoData(), parse_model(IngestParameters, parameters, "parameters"), request)


async def test_minio_ingest_reads_its_object_and_calls_the_same_csv_parser() -> None:
    store = Objects(**{"people.csv": PEOPLE})

    first = await handle_ingest(minio_double(store), ingest_call(key="people.csv", page_size=2))
    second = await handle_ingest(
        minio_double(store), ingest_call(first.next_page_token, key="people.csv", page_size=2)
    )

    assert [r["age"] for r in first.result_data["records"]] == [36, 45]
    assert [r["age"] for r in second.result_data["records"]] == [50]
    assert first.result_data["source"] == {"bucket": "data-lake", "key": "people.csv", "size": len(PEOPLE)}
    assert store.reads == [("people.csv", 1000)] * 2


async def test_minio_ingest_checks_the_pdf_request_before_reading() -> None:
    store = Objects()

    with pytest.raises(PermanentError) as paged:
        await handle_ingest(minio_double(store), ingest_call("t", key="scan.pdf"))
    with pytest.raises(PermanentError) as pages:
        await handle_ingest(minio_double(store), ingest_call(key="scan.pdf", pages="3-1"))

    assert paged.value.code == pages.value.code == ErrorCode.INVALID_REQUEST
    assert store.reads == []


async def test_minio_ingest_of_a_pdf_object_refuses_what_is_no_pdf() -> None:
    store = Objects(**{"notes.pdf": b"just text"})

    with pytest.raises(PermanentError) as caught:
        await asyncio.wait_for(handle_ingest(minio_double(store), ingest_call(key="notes.pdf")), 10)

    assert caught.value.code == ErrorCode.INVALID_DATA
