"""Where PDF bytes come from: inline base64 under max_bytes, and object/URL sources through a fetcher.

The fetcher is a stand-in for the fleet's resolver; the header check decides what counts as a PDF.
"""

from __future__ import annotations

from typing import Any

import pytest

from scf.connectors.pdf.source import load_pdf_bytes, pdf_version
from scf.schemas.configs.pdf import PdfConfig
from scf.schemas.errors import ErrorCode, PermanentError, TransientError
from scf.schemas.operation import OperationRequest
from tests.support.pdfs import b64

PDF = b"%PDF-1.7\n%fake but headed\n"


def request(data: dict[str, Any], data_format: str = "base64") -> OperationRequest:
    return OperationRequest(operation="ingest", data_format=data_format, data=data)


async def refused(req: OperationRequest, config: PdfConfig | None = None, **kw: Any) -> PermanentError:
    with pytest.raises(PermanentError) as caught:
        await load_pdf_bytes(req, config or PdfConfig(), **kw)
    return caught.value


@pytest.mark.parametrize("data_format", ["base64", "json", "pdf"])
async def test_inline_base64_is_decoded(data_format: str) -> None:
    assert await load_pdf_bytes(request({"file_data": b64(PDF)}, data_format), PdfConfig()) == PDF


async def test_inline_data_past_max_bytes_is_refused_before_decoding() -> None:
    error = await refused(request({"file_data": b64(bytes(4096))}), PdfConfig(max_bytes=1024))

    assert error.code == ErrorCode.LIMIT_EXCEEDED
    assert "max_bytes" in error.message


@pytest.mark.parametrize(
    ("data", "data_format", "code", "fragment"),
    [
        ({}, "base64", ErrorCode.INVALID_REQUEST, "exactly one source"),
        ({"file_data": b64(PDF), "url": "https://x"}, "base64", ErrorCode.INVALID_REQUEST, "exactly one"),
        ({"file_data": "%%% not base64"}, "base64", ErrorCode.INVALID_DATA, "not valid base64"),
        ({"file_data": 12}, "base64", ErrorCode.INVALID_DATA, "as base64 text"),
        ({"file_data": b64(PDF)}, "csv", ErrorCode.INVALID_REQUEST, "data_format must be one of"),
        ({"object": {"service_name": "s3"}}, "base64", ErrorCode.INVALID_REQUEST, "data.object must be"),
        ({"url": "file:///etc/passwd"}, "base64", ErrorCode.INVALID_REQUEST, "http:// or https://"),
    ],
)
async def test_bad_sources_are_refused(
    data: dict[str, Any], data_format: str, code: ErrorCode, fragment: str
) -> None:
    error = await refused(request(data, data_format))

    assert error.code == code
    assert fragment in error.message


@pytest.mark.parametrize(
    "data", [{"object": {"service_name": "files", "key": "a.pdf"}}, {"url": "https://example.org/a.pdf"}]
)
async def test_object_and_url_sources_need_the_fleets_resolver(data: dict[str, Any]) -> None:
    error = await refused(request(data))

    assert error.code == ErrorCode.INVALID_REQUEST
    assert "source resolver" in error.message
    assert "data.file_data" in error.message


async def test_a_fetcher_gets_the_reference_and_the_size_cap() -> None:
    asked: list[dict[str, Any]] = []

    async def fetch(source: dict[str, Any]) -> bytes:
        asked.append(source)
        return PDF

    data = await load_pdf_bytes(
        request({"object": {"service_name": "files", "key": "in/a.pdf"}}), PdfConfig(max_bytes=99), fetch
    )

    assert data == PDF
    assert asked == [{"kind": "object", "service_name": "files", "key": "in/a.pdf", "max_bytes": 99}]


async def test_fetched_bytes_past_max_bytes_are_refused() -> None:
    async def fetch(source: dict[str, Any]) -> bytes:
        return bytes(100)

    error = await refused(
        request({"url": "https://example.org/big.pdf"}), PdfConfig(max_bytes=10), fetch_source=fetch
    )

    assert error.code == ErrorCode.LIMIT_EXCEEDED


async def test_a_fetchers_typed_error_reaches_the_caller() -> None:
    async def fetch(source: dict[str, Any]) -> bytes:
        raise TransientError("the object store is down")

    with pytest.raises(TransientError):
        await load_pdf_bytes(request({"url": "https://example.org/a.pdf"}), PdfConfig(), fetch)


@pytest.mark.parametrize(
    ("head", "version"),
    [
        (b"%PDF-1.4\n", "1.4"),
        (b"\xef\xbb\xbfjunk%PDF-2.0\n", "2.0"),
        (b"PK\x03\x04 a zip", None),
        (b" " * 1100 + b"%PDF-1.7", None),
    ],
)
def test_the_header_gives_the_version(head: bytes, version: str | None) -> None:
    assert pdf_version(head) == version


@pytest.mark.parametrize("size", [1022, 1023, 1024])
async def test_a_file_of_exactly_max_bytes_is_accepted(size: int) -> None:
    data = PDF + bytes(size - len(PDF))

    assert await load_pdf_bytes(request({"file_data": b64(data)}), PdfConfig(max_bytes=1024)) == data


async def test_one_byte_past_max_bytes_is_refused() -> None:
    error = await refused(request({"file_data": b64(bytes(1025))}), PdfConfig(max_bytes=1024))

    assert error.code == ErrorCode.LIMIT_EXCEEDED
    assert "1025 bytes exceeds max_bytes (1024)" in error.message
