"""PDF ingestion through the fleet: FleetClient, dispatcher and worker processes, real parser children.

The PDF travels base64 in the AMQP message; the worker runs the sandboxed parser. A bomb must come
back as a typed reply while the worker process lives on and serves the next PDF.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from scf.fleet.client import FleetClient
from scf.schemas.operation import OperationResult
from tests.support import pdfs
from tests.support.fleet import FleetProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def service(client: FleetClient) -> AsyncIterator[str]:
    name = "fleet_pdf"
    created = await client.create_connector(
        {"service_type": "pdf", "service_name": name, "custom_config": {"max_parsers": 2}}
    )
    assert created.created.connector_info.connection_status == "connected", created.created
    yield name
    await client.delete_connector(name)


async def call(
    client: FleetClient, service: str, operation: str, pdf: bytes, **request: Any
) -> OperationResult:
    body = {"operation": operation, "data_format": "base64", "data": {"file_data": pdfs.b64(pdf)}, **request}
    return await client.execute_operation(service, body)


async def ok(
    client: FleetClient, service: str, operation: str, pdf: bytes, **request: Any
) -> OperationResult:
    result = await call(client, service, operation, pdf, **request)
    assert result.status == "success", result.error
    return result


async def test_the_connection_test_starts_a_parser_on_the_worker(client: FleetClient, service: str) -> None:
    tested = await client.test_connection(service)

    assert tested.status == "success", tested.error
    assert tested.test_results["connection_test"] == "passed"


async def test_ingest_preview_and_validate_through_the_fleet(client: FleetClient, service: str) -> None:
    document = pdfs.text_pdf(pages=3)

    ingested = await ok(client, service, "ingest", document, parameters={"pages": "1,3"})
    previewed = await ok(client, service, "preview", document, parameters={"pages_count": 1, "chars": 6})
    validated = await ok(client, service, "validate", document)

    assert ingested.records_processed == 2
    assert [p["page"] for p in ingested.result_data["pages"]] == [1, 3]
    assert ingested.result_data["pages"][0]["tables"] == [pdfs.TABLE]
    assert ingested.result_data["metadata"]["Title"] == "Quarterly report"
    assert previewed.result_data["pages"][0]["text"] == "Page 1"
    assert validated.result_data["valid"] is True and validated.result_data["page_count"] == 3


async def test_a_scanned_pdf_is_read_by_ocr_on_the_worker(client: FleetClient, service: str) -> None:
    pdfs.require_tesseract()

    result = await ok(client, service, "ingest", pdfs.scanned_pdf())

    (page,) = result.result_data["pages"]
    assert page["ocr"] is True and "Total amount 4521" in page["text"]


async def test_an_encrypted_pdf_without_its_password_is_a_typed_reply(
    client: FleetClient, service: str
) -> None:
    locked = await call(client, service, "ingest", pdfs.encrypted_pdf())
    opened = await ok(client, service, "ingest", pdfs.encrypted_pdf(), parameters={"password": pdfs.PASSWORD})

    assert locked.error is not None
    assert (locked.error.category, locked.error.code, locked.error.retryable) == (
        "permanent",
        "PERMISSION_DENIED",
        False,
    )
    assert opened.result_data["pages"][0]["text"] == "Top secret text"


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (pdfs.flate_bomb_pdf, "LIMIT_EXCEEDED"),
        (pdfs.cyclic_page_tree_pdf, "INVALID_DATA"),
        (pdfs.circular_xobject_pdf, "INVALID_DATA"),
    ],
    ids=["flate_bomb", "cyclic_page_tree", "circular_xobjects"],
)
async def test_a_bomb_is_a_typed_reply_and_the_worker_serves_the_next_pdf(
    client: FleetClient, service: str, fleet: dict[str, FleetProcess], make: Any, code: str
) -> None:
    started = time.monotonic()
    bombed = await call(client, service, "ingest", make())
    took = time.monotonic() - started
    after = await ok(client, service, "ingest", pdfs.text_pdf(pages=1))

    assert bombed.error is not None
    assert (bombed.error.category, bombed.error.code) == ("permanent", code)
    assert took < 20
    assert fleet["worker"].proc.poll() is None, "the worker died"
    assert after.result_data["pages"][0]["text"].startswith("Page 1 says hello.")


async def test_a_cpu_bomb_ends_within_the_connectors_limits(client: FleetClient) -> None:
    name = "fleet_pdf_tight"
    await client.create_connector(
        {
            "service_type": "pdf",
            "service_name": name,
            "custom_config": {"cpu_limit_seconds": 2, "parse_timeout": 10},
        }
    )
    try:
        bombed = await call(client, name, "ingest", pdfs.fanout_xobject_pdf())
        after = await ok(client, name, "ingest", pdfs.text_pdf(pages=1))
    finally:
        await client.delete_connector(name)

    assert bombed.error is not None and bombed.error.code == "LIMIT_EXCEEDED"
    assert "CPU time" in bombed.error.message
    assert after.records_processed == 1
