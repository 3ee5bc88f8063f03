"""CSV and PDF files by URL: fetched only through the SSRF guard, widened on purpose by the config."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scf import ServiceConnectorFactory
from scf.schemas.operation import OperationResult
from tests.support.http_servers import HttpServer, Reply
from tests.support.pdfs import text_pdf

pytestmark = pytest.mark.integration

CSV = b"sku,qty\nA-1,3\nB-2,5\n"


@pytest.fixture(scope="module")
def files() -> Iterator[HttpServer]:
    server = HttpServer().start()
    server.route("/stock.csv", lambda _seen: Reply(200, CSV, [("Content-Type", "text/csv")]))
    server.route("/gone.csv", lambda _seen: Reply(404, b"no such file"))
    server.route("/report.pdf", lambda _seen: Reply(200, text_pdf(pages=1, title="URL report")))
    try:
        yield server
    finally:
        server.stop()


async def ingest(files: HttpServer, path: str, **custom: object) -> OperationResult:
    async with ServiceConnectorFactory() as factory:
        await factory.create_connector(
            {"service_type": "csv", "service_name": "by_url", "custom_config": custom}
        )
        return await factory.execute_operation(
            "by_url", {"operation": "ingest", "data": {"url": f"{files.url}{path}"}}
        )


async def test_an_allowed_host_serves_the_file(files: HttpServer) -> None:
    result = await ingest(files, "/stock.csv", url_allowed_hosts=[files.host_port])

    assert result.status == "success", result.error
    assert result.result_data["records"] == [{"sku": "A-1", "qty": 3}, {"sku": "B-2", "qty": 5}]


async def test_loopback_is_refused_by_default_without_a_connection(files: HttpServer) -> None:
    before = files.connections

    result = await ingest(files, "/stock.csv")

    assert result.error is not None and result.error.category == "security"
    assert files.connections == before


async def test_an_http_error_is_typed(files: HttpServer) -> None:
    result = await ingest(files, "/gone.csv", url_allowed_hosts=[files.host_port])

    assert result.error is not None and result.error.category == "permanent"
    assert "404" in result.error.message


async def test_a_pdf_by_url_goes_through_the_same_guard(files: HttpServer) -> None:
    async with ServiceConnectorFactory() as factory:
        await factory.create_connector({"service_type": "pdf", "service_name": "open", "custom_config": {}})
        await factory.create_connector(
            {
                "service_type": "pdf",
                "service_name": "allowed",
                "custom_config": {"url_allowed_hosts": [files.host_port]},
            }
        )
        request = {"operation": "ingest", "data": {"url": f"{files.url}/report.pdf"}}
        refused = await factory.execute_operation("open", request)
        served = await factory.execute_operation("allowed", request)

    assert refused.error is not None and refused.error.category == "security"
    assert served.status == "success", served.error
    assert "Page 1 says hello." in served.result_data["pages"][0]["text"]
    assert "URL report" in str(served.result_data["metadata"])
