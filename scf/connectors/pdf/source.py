"""Where a PDF's bytes come from: inline base64 now, object and URL sources through a pluggable fetcher.

`load_pdf_bytes` is the one entry point. Inline `data.file_data` is decoded here under `max_bytes`;
`data.object` and `data.url` are checked for shape and handed to the connector's `fetch_source`,
which the fleet sets once its resolver (object stores, the guarded URL fetcher) serves this type.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable
from typing import Any

from scf.schemas.configs.pdf import PdfConfig
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationRequest

#: Resolves `{"kind": "object", "service_name", "key", "max_bytes"}` or `{"kind": "url", "url",
#: "max_bytes"}` to the bytes it names; it should stop reading past max_bytes and raise typed errors.
FetchSource = Callable[[dict[str, Any]], Awaitable[bytes]]

SOURCE_KEYS = ("file_data", "object", "url")
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


def source_reference(kind: str, value: Any) -> dict[str, Any]:
    """The fetcher's argument for an `object` or `url` source, after a shape check."""
    if kind == "object":
        if not (
            isinstance(value, dict)
            and set(value) == {"service_name", "key"}
            and all(isinstance(v, str) and v for v in value.values())
        ):
            raise _invalid('data.object must be {"service_name": "...", "key": "..."}')
        return {"kind": "object", "service_name": value["service_name"], "key": value["key"]}
    if not (isinstance(value, str) and value.startswith(("http://", "https://")) and len(value) <= 8192):
        raise _invalid("data.url must be an http:// or https:// URL")
    return {"kind": "url", "url": value}


async def load_pdf_bytes(
    request: OperationRequest, config: PdfConfig, fetch_source: FetchSource | None = None
) -> bytes:
    """The PDF a request names, at most `config.max_bytes` long.

    Raises INVALID_REQUEST (no source, several, a bad shape, or a fetched source without a fetcher),
    INVALID_DATA (bad base64) and LIMIT_EXCEEDED (max_bytes); a fetcher raises its own typed errors.
    """
    given = [key for key in SOURCE_KEYS if key in request.data]
    if len(given) != 1:
        raise _invalid("data needs exactly one source: file_data (base64), object or url")
    if request.data_format not in DATA_FORMATS:
        raise _invalid(f"data_format must be one of {', '.join(sorted(DATA_FORMATS))} for a PDF")
    kind = given[0]
    if kind == "file_data":
        data = request.data["file_data"]
        if not isinstance(data, str):
            raise PermanentError("data.file_data must be the PDF as base64 text", code=ErrorCode.INVALID_DATA)
        return decode_base64(data, config.max_bytes)
    reference = source_reference(kind, request.data[kind])
    if fetch_source is None:
        raise _invalid(
            f"data.{kind} sources need the fleet's source resolver, which does not serve this connector "
            "yet; send the PDF as data.file_data (base64)"
        )
    fetched = await fetch_source({**reference, "max_bytes": config.max_bytes})
    check_size(len(fetched), config.max_bytes)
    return fetched


def pdf_version(data: bytes) -> str | None:
    """The version in the `%PDF-x.y` header, or None when the bytes do not start like a PDF."""
    match = _HEADER.search(data, 0, HEADER_WINDOW)
    return match.group(1).decode("ascii") if match else None
