"""Pure request handling for the PDF connector: parameters, page selections and the parser's job.

The `parameters` models (one per operation: unknown or misplaced options are refused);
`parse_page_selection` turns `[1, 3]` or "1-3,5" into sorted page numbers without expanding huge ranges;
`build_job` is the one place that decides what the child process (`extract.Job`) is asked to do.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, SecretStr, field_validator

from scf.schemas.configs.pdf import OCR_LANGUAGE_PATTERN, OcrMode, PdfConfig
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.validation import Strict

PREVIEW_TABLE_ROWS = 5
MAX_PREVIEW_PAGES = 50
_SPAN = re.compile(r"\s*([0-9]{1,9})\s*(?:-\s*([0-9]{1,9})\s*)?")


class PdfReadOptions(Strict):
    """How to read a PDF (every operation, and MinIO `ingest` of a PDF object)."""

    extract_tables: bool = True
    ocr: OcrMode | None = None
    ocr_language: str | None = Field(default=None, pattern=OCR_LANGUAGE_PATTERN)
    password: SecretStr | None = Field(default=None, min_length=1, max_length=1024, repr=False)


class PdfPages(Strict):
    """`pages`: [1, 3] or "1-3,5" (default all, at most `max_pages`)."""

    pages: list[int] | str | None = None


class PdfOptions(PdfReadOptions):
    """The PDF connector's options: `data.file_data` is binary, so always base64."""

    base64: bool = True

    @field_validator("base64")
    @classmethod
    def _always_base64(cls, value: bool) -> bool:
        if not value:
            raise ValueError("PDF file_data is binary and always travels as base64")
        return value


class PdfIngestParameters(PdfOptions, PdfPages):
    """`parameters` of PDF `ingest`."""


class PdfPreviewParameters(PdfOptions):
    """The first `pages_count` pages, text cut to `chars`."""

    pages_count: int | None = Field(default=None, ge=1, le=MAX_PREVIEW_PAGES)
    chars: int | None = Field(default=None, ge=1, le=1_000_000)


class PdfValidateParameters(PdfOptions):
    pass


#: Each operation's `parameters` model.
PARAMETERS: dict[str, type[PdfOptions]] = {
    "ingest": PdfIngestParameters,
    "preview": PdfPreviewParameters,
    "validate": PdfValidateParameters,
}


def _bad_pages(message: str) -> PermanentError:
    return PermanentError(f"parameters.pages: {message}", code=ErrorCode.INVALID_REQUEST)


def _spans(spec: list[int] | str) -> list[tuple[int, int]]:
    if isinstance(spec, list):
        return [(page, page) for page in spec]
    spans: list[tuple[int, int]] = []
    for item in spec.split(","):
        match = _SPAN.fullmatch(item)
        if match is None:
            raise _bad_pages(f"{item.strip()!r} is not a page number or a range like 2-5")
        first = int(match.group(1))
        last = int(match.group(2) or first)
        if last < first:
            raise _bad_pages(f"the range {first}-{last} runs backwards")
        spans.append((first, last))
    return spans


def parse_page_selection(spec: list[int] | str, max_pages: int) -> tuple[int, ...]:
    """Sorted, distinct 1-based page numbers; LIMIT_EXCEEDED past `max_pages`, counted before expanding."""
    spans = sorted(_spans(spec))
    if not spans:
        raise _bad_pages("selects no pages")
    if spans[0][0] < 1:
        raise _bad_pages("pages are numbered from 1")
    merged: list[tuple[int, int]] = []
    for first, last in spans:
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    count = sum(last - first + 1 for first, last in merged)
    if count > max_pages:
        raise PermanentError(
            f"parameters.pages selects {count} pages, more than max_pages ({max_pages})",
            code=ErrorCode.LIMIT_EXCEEDED,
        )
    return tuple(page for first, last in merged for page in range(first, last + 1))


def build_job(operation: str, params: PdfReadOptions, config: PdfConfig) -> dict[str, Any]:
    """The child's `extract.Job` as JSON: request choices, bounded by the connector's config."""
    job: dict[str, Any] = {
        "mode": operation,
        "max_pages": config.max_pages,
        "extract_tables": params.extract_tables,
        "ocr": params.ocr or config.ocr,
        "ocr_language": params.ocr_language or config.ocr_language,
        "ocr_resolution": config.ocr_resolution,
        "max_ocr_pages": config.max_ocr_pages,
        "max_text_bytes": config.max_text_bytes,
        "password": params.password.get_secret_value() if params.password is not None else "",
    }
    if isinstance(params, PdfPages) and params.pages is not None:
        job["pages"] = list(parse_page_selection(params.pages, config.max_pages))
    if isinstance(params, PdfPreviewParameters):
        job["first_pages"] = params.pages_count or config.preview_pages
        job["text_chars"] = params.chars or config.preview_chars
        job["table_rows"] = PREVIEW_TABLE_ROWS
    return job
