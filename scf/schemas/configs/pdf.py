"""`custom_config` of a `pdf` connector: caps on input and output, sandbox limits, OCR defaults.

Parsing runs in a child process under `memory_limit_mb`, `cpu_limit_seconds` and a wall-clock
`parse_timeout`; at most `max_parsers` such processes run at once per connector. Operation
`parameters` may choose OCR and pages per request, never raise these limits.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from scf.schemas.configs.url_sources import UrlSourceSettings

OcrMode = Literal["auto", "always", "never"]

#: Tesseract language codes joined by '+' ("eng", "deu+fra", "chi_sim"): a safe command-line argument.
OCR_LANGUAGE_PATTERN = r"^[a-z]{3}(_[a-z]{2,4})?(\+[a-z]{3}(_[a-z]{2,4})?){0,7}$"
MIB = 1024 * 1024


class PdfConfig(UrlSourceSettings):
    """`custom_config` of a `pdf` connector.

    Limits: `max_bytes` (file size), `max_pages` (pages one operation reads), `max_text_bytes`
    (extracted text and tables of one reply), `memory_limit_mb`, `cpu_limit_seconds` and
    `parse_timeout` (the parser process), `max_parsers` (parser processes at once), `max_ocr_pages`.
    Defaults: `ocr` ("auto": only pages without a text layer), `ocr_language`, `ocr_resolution` (dpi),
    `preview_pages` and `preview_chars`. The default timeout stays under the fleet's 30 s deadline so a
    slow PDF ends as LIMIT_EXCEEDED rather than DEADLINE_EXCEEDED.
    """

    model_config = ConfigDict(extra="forbid")

    max_bytes: int = Field(default=64 * MIB, ge=1, le=1024 * MIB)
    max_pages: int = Field(default=1_000, ge=1, le=100_000)
    max_text_bytes: int = Field(default=16 * MIB, ge=1024, le=256 * MIB)
    memory_limit_mb: int = Field(default=512, ge=256, le=16_384)
    cpu_limit_seconds: int = Field(default=20, ge=1, le=3_600)
    parse_timeout: float = Field(default=25.0, gt=0, le=3_600)
    max_parsers: int = Field(default=2, ge=1, le=64)
    ocr: OcrMode = "auto"
    ocr_language: str = Field(default="eng", pattern=OCR_LANGUAGE_PATTERN)
    ocr_resolution: int = Field(default=200, ge=72, le=600)
    max_ocr_pages: int = Field(default=50, ge=0, le=10_000)
    preview_pages: int = Field(default=2, ge=1, le=50)
    preview_chars: int = Field(default=2_000, ge=1, le=1_000_000)
