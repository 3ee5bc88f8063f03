"""Where a PDF's bytes come from: inline base64, or an object or URL through the connector's fetch.

`load_pdf_bytes` is the one entry point. Inline `data.file_data` is decoded here under `max_bytes`;
`data.object` and `data.url` go to the fetch the connector passes (`sources.fetch_file`: the bound
object reader, the SSRF-guarded URL fetcher).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable

from scf.connectors.sources import FileData
from scf.schemas.configs.pdf import PdfConfig
from scf.schemas.errors import ErrorCode, PermanentError

DATA_FORMATS = frozenset({"base64", "json", "pdf"})
HEADER_WINDOW = 1024  # readers accept a few bytes of junk before the header
_HEADER = re.compile(rb"%PDF-([0-9]\.[0-9])")


def _invalid(message: str) -> PermanentError:
    return PermanentError(message, code=ErrorCode.INVALID_REQUEST)


def check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise PermanentError(
            f"the PDF of {size} bytes exceeds max_bytes ({max_bytes})", code=ErrorCode.LIMIT_EXCEEDED
        )


def decode_base64(data: str, max_bytes: int) -> bytes:
    """Strict base64 (whitespace allowed), refused before decoding when the result cannot fit."""
    compact = "".join(data.split())
    check_size(len(compact) // 4 * 3 - compact[-2:].count("="), max_bytes)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise PermanentError("data.file_data is not valid base64", code=ErrorCode.INVALID_DATA) from None


#: Reads `data.object` or `data.url` (at most the given bytes); `sources.read_reference`.
Fetch = Callable[[FileData, int], Awaitable[bytes]]


async def load_pdf_bytes(data: FileData, data_format: str, config: PdfConfig, fetch: Fetch) -> bytes:
    """The PDF `data` names, at most `config.max_bytes` long.

    Raises INVALID_REQUEST (no source, several, a bad URL or data_format), INVALID_DATA (bad base64)
    and LIMIT_EXCEEDED (max_bytes); `fetch` raises its own typed errors.
    """
    kind = data.source()
    if kind is None:
        raise _invalid("data needs exactly one source: file_data (base64), object or url")
    if data_format not in DATA_FORMATS:
        raise _invalid(f"data_format must be one of {', '.join(sorted(DATA_FORMATS))} for a PDF")
    if data.file_data is not None:
        return decode_base64(data.file_data, config.max_bytes)
    if data.url is not None and not data.url.startswith(("http://", "https://")):
        raise _invalid("data.url must be an http:// or https:// URL")
    fetched = await fetch(data, config.max_bytes)
    check_size(len(fetched), config.max_bytes)
    return fetched


def pdf_version(data: bytes) -> str | None:
    """The version in the `%PDF-x.y` header, or None when the bytes do not start like a PDF."""
    match = _HEADER.search(data, 0, HEADER_WINDOW)
    return match.group(1).decode("ascii") if match else None
