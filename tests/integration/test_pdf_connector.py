"""`PDFIngestionConnector` end to end in-process: real parser processes on PDFs the tests generate.

Text and tables, page selections, preview, validate, OCR of a scanned page by the real tesseract,
encryption, the size caps, and the bombs (a cyclic page tree, nested Flate layers, circular and
fanned-out Form XObjects), each of which must end in a typed error within its limit.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from scf.connectors.parsing.pdf.sandbox import EXTRACT_SCRIPT
from scf.connectors.pdf import PDFIngestionConnector
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConnectorError, ErrorCategory, ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome, OperationRequest
from tests.support import pdfs

pytestmark = pytest.mark.integration


def make_connector(**custom_config: Any) -> PDFIngestionConnector:
    connection = ServiceConnection(service_type="pdf", service_name="pdf_test", custom_config=custom_config)
    return PDFIngestionConnector(connection)


@pytest.fixture
async def connector() -> AsyncIterator[PDFIngestionConnector]:
    built = make_connector()
    yield built
    await built.close()


def pdf_request(operation: str, pdf: bytes, **kw: Any) -> OperationRequest:
    return OperationRequest(
        operation=operation, data_format="base64", data={"file_data": pdfs.b64(pdf)}, **kw
    )


async def run(connector: PDFIngestionConnector, operation: str, pdf: bytes, **kw: Any) -> OperationOutcome:
    return await connector.execute(pdf_request(operation, pdf, **kw))


async def refused(connector: PDFIngestionConnector, operation: str, pdf: bytes, **kw: Any) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        await run(connector, operation, pdf, **kw)
    return caught.value


def parser_processes() -> list[int]:
    """Pids of extract.py processes still alive (zombies included) anywhere on this machine."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(EXTRACT_SCRIPT).encode() in cmdline:
                found.append(int(entry.name))
    return found


# --- text, tables, pages ----------------------------------------------------------------------------


async def test_ingest_returns_text_tables_and_metadata_per_page(connector: PDFIngestionConnector) -> None:
    outcome = await run(connector, "ingest", pdfs.text_pdf(pages=3))

    data = outcome.result_data
    assert outcome.records_processed == 3
    assert data["page_count"] == 3 and data["truncated"] is False
    assert data["metadata"]["Title"] == "Quarterly report"
    assert data["metadata"]["Author"] == "SCF tests"
    first, second, third = data["pages"]
    assert first["page"] == 1 and first["text"].startswith("Page 1 says hello.")
    assert first["tables"] == [pdfs.TABLE]
    assert first["ocr"] is False
    assert (second["text"], second["tables"]) == ("Page 2 says hello.", [])
    assert third["page"] == 3


async def test_ingest_reads_only_the_selected_pages(connector: PDFIngestionConnector) -> None:
    ranged = await run(connector, "ingest", pdfs.text_pdf(pages=5), parameters={"pages": "2-3,5"})
    listed = await run(connector, "ingest", pdfs.text_pdf(pages=5), parameters={"pages": [4]})

    assert [p["page"] for p in ranged.result_data["pages"]] == [2, 3, 5]
    assert ranged.records_processed == 3 and ranged.result_data["page_count"] == 5
    assert [p["text"] for p in listed.result_data["pages"]] == ["Page 4 says hello."]


async def test_a_page_past_the_last_is_an_invalid_request(connector: PDFIngestionConnector) -> None:
    error = await refused(connector, "ingest", pdfs.text_pdf(pages=2), parameters={"pages": [1, 7]})

    assert (error.category, error.code) == (ErrorCategory.PERMANENT, ErrorCode.INVALID_REQUEST)
    assert "page 7, but the PDF has 2 pages" in error.message


async def test_tables_can_be_left_out(connector: PDFIngestionConnector) -> None:
    outcome = await run(connector, "ingest", pdfs.text_pdf(pages=1), parameters={"extract_tables": False})

    assert outcome.result_data["pages"][0]["tables"] == []


async def test_preview_shows_the_first_pages_with_their_text_cut(connector: PDFIngestionConnector) -> None:
    default = await run(connector, "preview", pdfs.text_pdf(pages=4))
    short = await run(connector, "preview", pdfs.text_pdf(pages=4), parameters={"pages_count": 1, "chars": 6})

    assert [p["page"] for p in default.result_data["pages"]] == [1, 2]
    assert default.result_data["page_count"] == 4 and default.records_processed == 2
    assert default.result_data["pages"][0]["tables"] == [pdfs.TABLE]
    (page,) = short.result_data["pages"]
    assert (page["text"], page["text_truncated"]) == ("Page 1", True)


async def test_a_page_token_is_refused(connector: PDFIngestionConnector) -> None:
    error = await refused(connector, "ingest", pdfs.text_pdf(), page_token="abc")

    assert error.code == ErrorCode.INVALID_REQUEST


# --- validate ---------------------------------------------------------------------------------------


async def test_validate_reports_a_text_pdf(connector: PDFIngestionConnector) -> None:
    report = (await run(connector, "validate", pdfs.text_pdf(pages=2))).result_data

    assert report["valid"] and report["is_pdf"]
    assert (report["encrypted"], report["page_count"], report["has_text_layer"]) == (False, 2, True)
    assert report["pdf_version"] == "1.3" and report["errors"] == []


async def test_validate_finds_pages_without_a_text_layer(connector: PDFIngestionConnector) -> None:
    scanned = (await run(connector, "validate", pdfs.scanned_pdf())).result_data
    mixed = (await run(connector, "validate", pdfs.mixed_pdf())).result_data

    assert (scanned["has_text_layer"], scanned["pages_without_text"]) == (False, [1])
    assert (mixed["has_text_layer"], mixed["pages_without_text"]) == (True, [2])


@pytest.mark.parametrize(
    "data", [b"just some text", b"%PDF-1.4\nno objects, no xref", pdfs.text_pdf()[:300]], ids=str
)
async def test_validate_reports_a_file_that_is_no_pdf_without_raising(
    connector: PDFIngestionConnector, data: bytes
) -> None:
    report = (await run(connector, "validate", data)).result_data

    assert report["is_pdf"] is False and report["valid"] is False
    assert report["errors"][0]["code"] == "INVALID_DATA"


async def test_ingest_of_a_file_that_is_no_pdf_is_invalid_data(connector: PDFIngestionConnector) -> None:
    no_header = await refused(connector, "ingest", b"PK\x03\x04 a zip file")
    broken = await refused(connector, "ingest", pdfs.text_pdf()[:300])

    assert no_header.code == broken.code == ErrorCode.INVALID_DATA
    assert broken.message == "the file is not a readable PDF"


# --- OCR --------------------------------------------------------------------------------------------


async def test_a_scanned_page_is_read_by_ocr(connector: PDFIngestionConnector) -> None:
    pdfs.require_tesseract()

    (page,) = (await run(connector, "ingest", pdfs.scanned_pdf())).result_data["pages"]

    assert page["ocr"] is True and "ocr_error" not in page
    assert "SCANNED INVOICE" in page["text"]
    assert "Total amount 4521" in page["text"]


async def test_auto_ocr_reads_only_the_pages_without_text(connector: PDFIngestionConnector) -> None:
    pdfs.require_tesseract()

    typed, scanned = (await run(connector, "ingest", pdfs.mixed_pdf())).result_data["pages"]

    assert (typed["ocr"], typed["text"]) == (False, "Typed text on the first page.")
    assert scanned["ocr"] is True and "HELLO FROM A SCAN" in scanned["text"]


async def test_ocr_always_reads_text_pages_too(connector: PDFIngestionConnector) -> None:
    pdfs.require_tesseract()

    outcome = await run(connector, "ingest", pdfs.mixed_pdf(), parameters={"ocr": "always", "pages": [1]})

    (page,) = outcome.result_data["pages"]
    assert page["ocr"] is True and "Typed text" in page["text"]


async def test_ocr_never_leaves_a_scanned_page_empty(connector: PDFIngestionConnector) -> None:
    (page,) = (await run(connector, "ingest", pdfs.scanned_pdf(), parameters={"ocr": "never"})).result_data[
        "pages"
    ]

    assert (page["text"], page["ocr"]) == ("", False)


async def test_a_missing_ocr_language_is_the_pages_error_not_the_operations(
    connector: PDFIngestionConnector,
) -> None:
    pdfs.require_tesseract()

    outcome = await run(connector, "ingest", pdfs.mixed_pdf(), parameters={"ocr_language": "xyz"})

    typed, scanned = outcome.result_data["pages"]
    assert typed["text"] == "Typed text on the first page." and "ocr_error" not in typed
    assert scanned["ocr"] is False and scanned["text"] == ""
    assert "Failed loading language 'xyz'" in scanned["ocr_error"]


async def test_pages_past_max_ocr_pages_are_not_read() -> None:
    connector = make_connector(max_ocr_pages=0)

    (page,) = (await run(connector, "ingest", pdfs.scanned_pdf())).result_data["pages"]

    assert page["ocr"] is False
    assert "max_ocr_pages" in page["ocr_error"]


# --- encryption -------------------------------------------------------------------------------------


async def test_an_encrypted_pdf_needs_its_password(connector: PDFIngestionConnector) -> None:
    locked = await refused(connector, "ingest", pdfs.encrypted_pdf())
    wrong = await refused(connector, "ingest", pdfs.encrypted_pdf(), parameters={"password": "guess"})
    opened = await run(connector, "ingest", pdfs.encrypted_pdf(), parameters={"password": pdfs.PASSWORD})

    assert (locked.category, locked.code) == (ErrorCategory.PERMANENT, ErrorCode.PERMISSION_DENIED)
    assert locked.message == "the PDF is encrypted: pass parameters.password"
    assert wrong.code == ErrorCode.PERMISSION_DENIED and "does not open" in wrong.message
    assert opened.result_data["pages"][0]["text"] == "Top secret text"


async def test_validate_reports_encryption(connector: PDFIngestionConnector) -> None:
    locked = (await run(connector, "validate", pdfs.encrypted_pdf())).result_data
    opened = (
        await run(connector, "validate", pdfs.encrypted_pdf(), parameters={"password": pdfs.PASSWORD})
    ).result_data
    open_to_all = (await run(connector, "validate", pdfs.encrypted_pdf(user_password=""))).result_data

    assert (locked["is_pdf"], locked["encrypted"], locked["page_count"]) == (True, True, None)
    assert locked["errors"][0]["code"] == "PERMISSION_DENIED"
    assert (opened["valid"], opened["encrypted"], opened["page_count"]) == (True, True, 1)
    assert (open_to_all["valid"], open_to_all["encrypted"]) == (True, True)


async def test_the_password_appears_in_no_log_and_no_error(connector: PDFIngestionConnector) -> None:
    canary = "canary-" + pdfs.PASSWORD
    with structlog.testing.capture_logs() as logs:
        result = await connector.execute_operation(
            pdf_request("ingest", pdfs.encrypted_pdf(), parameters={"password": canary})
        )

    assert result.error is not None and result.error.code == "PERMISSION_DENIED"
    assert logs, "the parser run should have been logged"
    assert canary not in repr(logs)
    assert canary not in result.model_dump_json()


# --- caps -------------------------------------------------------------------------------------------


async def test_text_past_max_text_bytes_is_cut_and_flagged() -> None:
    connector = make_connector(max_text_bytes=4096)

    outcome = await run(connector, "ingest", pdfs.long_text_pdf(pages=4, words_per_page=400))

    data = outcome.result_data
    assert data["truncated"] is True and data["page_count"] == 4
    assert 1 <= outcome.records_processed < 4
    assert data["pages"][-1]["text_truncated"] is True
    assert sum(len(p["text"].encode()) for p in data["pages"]) <= 4096


async def test_a_pdf_with_more_pages_than_max_pages_needs_a_selection() -> None:
    connector = make_connector(max_pages=2)

    error = await refused(connector, "ingest", pdfs.text_pdf(pages=3))
    chosen = await run(connector, "ingest", pdfs.text_pdf(pages=3), parameters={"pages": [3]})
    too_many = await refused(connector, "ingest", pdfs.text_pdf(pages=3), parameters={"pages": "1-3"})

    assert error.code == ErrorCode.LIMIT_EXCEEDED and "max_pages (2)" in error.message
    assert [p["page"] for p in chosen.result_data["pages"]] == [3]
    assert too_many.code == ErrorCode.LIMIT_EXCEEDED


async def test_a_file_past_max_bytes_is_refused_before_parsing() -> None:
    error = await refused(make_connector(max_bytes=1024), "ingest", pdfs.scanned_pdf())

    assert error.code == ErrorCode.LIMIT_EXCEEDED and "max_bytes" in error.message


# --- sources ----------------------------------------------------------------------------------------


async def test_object_sources_are_read_through_the_fleets_fetcher(connector: PDFIngestionConnector) -> None:
    request = OperationRequest(operation="ingest", data={"object": {"service_name": "files", "key": "a.pdf"}})
    unbound = await connector.execute_operation(request)
    asked: list[tuple[str, int]] = []

    class Files:
        async def read_object_bytes(self, key: str, max_bytes: int) -> bytes:
            asked.append((key, max_bytes))
            return pdfs.text_pdf(pages=1)

        def stream_object(self, key: str, max_bytes: int) -> Any:
            raise AssertionError("a PDF is read whole")

    async def lookup(name: str) -> Any:
        assert name == "files"
        return Files()

    connector.bindings.lookup = lookup
    bound = await connector.execute(request)

    assert unbound.error is not None and unbound.error.code == "INVALID_CONFIG"  # built outside a factory
    assert "look up connectors" in unbound.error.message
    assert bound.result_data["pages"][0]["text"].startswith("Page 1 says hello.")
    assert asked == [("a.pdf", connector.config.max_bytes)]


# --- bombs ------------------------------------------------------------------------------------------


async def assert_bomb_ends(
    connector: PDFIngestionConnector, pdf: bytes, code: ErrorCode, fragment: str, within: float
) -> None:
    started = time.monotonic()
    error = await refused(connector, "ingest", pdf)
    took = time.monotonic() - started

    assert isinstance(error, PermanentError)
    assert error.code == code, error
    assert fragment in error.message
    assert took < within, f"took {took:.1f} s"
    # The same connector goes on parsing, and no parser process is left behind.
    after = await run(connector, "ingest", pdfs.text_pdf(pages=1))
    assert after.records_processed == 1
    assert parser_processes() == []


async def test_a_cyclic_page_tree_is_invalid_data(connector: PDFIngestionConnector) -> None:
    await assert_bomb_ends(connector, pdfs.cyclic_page_tree_pdf(), ErrorCode.INVALID_DATA, "cyclic", 10)


async def test_a_nested_flate_bomb_hits_the_memory_limit(connector: PDFIngestionConnector) -> None:
    bomb = pdfs.flate_bomb_pdf()

    assert len(bomb) < 16_384  # 4 GiB of zeros behind three FlateDecode layers
    await assert_bomb_ends(connector, bomb, ErrorCode.LIMIT_EXCEEDED, "memory", 15)


async def test_circular_form_xobjects_are_invalid_data(connector: PDFIngestionConnector) -> None:
    await assert_bomb_ends(connector, pdfs.circular_xobject_pdf(), ErrorCode.INVALID_DATA, "circular", 10)


async def test_fanned_out_form_xobjects_hit_the_cpu_limit() -> None:
    connector = make_connector(cpu_limit_seconds=2, parse_timeout=30)

    await assert_bomb_ends(connector, pdfs.fanout_xobject_pdf(), ErrorCode.LIMIT_EXCEEDED, "CPU time", 10)


async def test_a_slow_parse_hits_the_wall_clock() -> None:
    connector = make_connector(cpu_limit_seconds=60, parse_timeout=1.5)

    await assert_bomb_ends(connector, pdfs.fanout_xobject_pdf(), ErrorCode.LIMIT_EXCEEDED, "too long", 5)


async def test_a_request_timeout_shortens_the_wall_clock(connector: PDFIngestionConnector) -> None:
    started = time.monotonic()
    error = await refused(connector, "ingest", pdfs.fanout_xobject_pdf(), timeout=2)

    assert error.code == ErrorCode.LIMIT_EXCEEDED and "more than 1.8 s" in error.message
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (pdfs.cyclic_page_tree_pdf, "INVALID_DATA"),
        (pdfs.flate_bomb_pdf, "LIMIT_EXCEEDED"),
        (pdfs.circular_xobject_pdf, "INVALID_DATA"),
    ],
)
async def test_validate_reports_a_bomb_instead_of_raising(
    connector: PDFIngestionConnector, make: Any, code: str
) -> None:
    report = (await run(connector, "validate", make())).result_data

    assert report["is_pdf"] is True and report["valid"] is False
    assert report["errors"][0]["code"] == code


async def test_a_cancelled_operation_leaves_no_parser_behind() -> None:
    connector = make_connector(cpu_limit_seconds=60, parse_timeout=60)
    task = asyncio.create_task(run(connector, "ingest", pdfs.fanout_xobject_pdf()))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if parser_processes():
            break
    assert parser_processes(), "the parser should be running"

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    for _ in range(40):
        if not parser_processes():
            break
        await asyncio.sleep(0.05)
    assert parser_processes() == []


async def test_the_parser_sees_none_of_the_workers_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCF_SECRET_KEY", "worker-secret-canary")
    connector = make_connector(cpu_limit_seconds=60, parse_timeout=60)
    task = asyncio.create_task(run(connector, "ingest", pdfs.fanout_xobject_pdf()))
    try:
        for _ in range(100):
            await asyncio.sleep(0.05)
            if pids := parser_processes():
                break
        environ = Path(f"/proc/{pids[0]}/environ").read_bytes()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert b"worker-secret-canary" not in environ
    assert b"PATH=" in environ
    assert os.environ["SCF_SECRET_KEY"] == "worker-secret-canary"


async def test_the_connection_test_starts_a_parser(connector: PDFIngestionConnector) -> None:
    result = await connector.check()

    assert result.status == "success", result.error
    assert result.test_results == {
        "connection_test": "passed",
        "authentication_test": "passed",
        "permissions_test": "passed",
    }
