"""Where PDF bytes come from: inline base64 under max_bytes, and object/URL sources through a fetch.

The fetch is a stand-in for `sources.read_reference` (the bound object reader, the guarded URL fetch);
the header check decides what counts as a PDF.
"""

from __future__ import annotations

from typing import Any

import pytest

from scf.connectors.parsing.pdf.source import Fetch, load_pdf_bytes, pdf_version
from scf.connectors.sources import FileData
from scf.schemas.configs.pdf import PdfConfig
from scf.schemas.errors import ErrorCode, PermanentError, TransientError
from scf.schemas.validation import parse_model
from tests.support.pdfs import b64

PDF = b"%PDF-1.7\n%fake but headed\n"


async def never(data: FileData, max_bytes: int) -> bytes:
    raise AssertionError("inline data is never fetched")


async def load(
    data: dict[str, Any], data_format: str = "base64", config: PdfConfig | None = None, fetch: Fetch = never
) -> bytes:
    parsed = parse_model(FileData, data, "data")
    return await load_pdf_bytes(parsed, data_format, config or PdfConfig(), fetch)


async def refused(data: dict[str, Any], data_format: str = "base64", **kw: Any) -> PermanentError:
    with pytest.raises(PermanentError) as caught:
        await load(data, data_format, **kw)
    return caught.value


@pytest.mark.parametrize("data_format", ["base64", "json", "pdf"])
async def test_inline_base64_is_decoded(data_format: str) -> None:
    assert await load({"file_data": b64(PDF)}, data_format) == PDF


async def test_inline_data_past_max_bytes_is_refused_before_decoding() -> None:
    error = await refused({"file_data": b64(bytes(4096))}, config=PdfConfig(max_bytes=1024))

    assert error.code == ErrorCode.LIMIT_EXCEEDED
    assert "max_bytes" in error.message


@pytest.mark.parametrize(
    ("data", "data_format", "code", "fragment"),
    [
        ({}, "base64", ErrorCode.INVALID_REQUEST, "exactly one source"),
        (
            {"file_data": b64(PDF), "url": "https://x"},
            "base64",
            ErrorCode.INVALID_REQUEST,
            "not file_data and url",
        ),
        ({"file_data": "%%% not base64"}, "base64", ErrorCode.INVALID_DATA, "not valid base64"),
        ({"file_data": 12}, "base64", ErrorCode.INVALID_REQUEST, "file_data"),
        ({"file_data": b64(PDF)}, "csv", ErrorCode.INVALID_REQUEST, "data_format must be one of"),
        ({"object": {"service_name": "s3"}}, "base64", ErrorCode.INVALID_REQUEST, "object.key"),
        ({"url": "file:///etc/passwd"}, "base64", ErrorCode.INVALID_REQUEST, "http:// or https://"),
    ],
)
async def test_bad_sources_are_refused(
    data: dict[str, Any], data_format: str, code: ErrorCode, fragment: str
) -> None:
    error = await refused(data, data_format)

    assert error.code == code
    assert fragment in error.message


async def test_a_fetch_gets_the_reference_and_the_size_cap() -> None:
    asked: list[tuple[FileData, int]] = []

    async def fetch(data: FileData, max_bytes: int) -> bytes:
        asked.append((data, max_bytes))
        return PDF

    data = await load(
        {"object": {"service_name": "files", "key": "in/a.pdf"}}, config=PdfConfig(max_bytes=99), fetch=fetch
    )

    assert data == PDF
    [(given, cap)] = asked
    assert given.object is not None and (given.object.service_name, given.object.key) == ("files", "in/a.pdf")
    assert cap == 99


async def test_fetched_bytes_past_max_bytes_are_refused() -> None:
    async def fetch(data: FileData, max_bytes: int) -> bytes:
        return bytes(100)

    error = await refused({"url": "https://example.org/big.pdf"}, config=PdfConfig(max_bytes=10), fetch=fetch)

    assert error.code == ErrorCode.LIMIT_EXCEEDED


async def test_a_fetchs_typed_error_reaches_the_caller() -> None:
    async def fetch(data: FileData, max_bytes: int) -> bytes:
        raise TransientError("the object store is down")

    with pytest.raises(TransientError):
        await load({"url": "https://example.org/a.pdf"}, fetch=fetch)


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

    assert await load({"file_data": b64(data)}, config=PdfConfig(max_bytes=1024)) == data


async def test_one_byte_past_max_bytes_is_refused() -> None:
    error = await refused({"file_data": b64(bytes(1025))}, config=PdfConfig(max_bytes=1024))

    assert error.code == ErrorCode.LIMIT_EXCEEDED
    assert "1025 bytes exceeds max_bytes (1024)" in error.message
