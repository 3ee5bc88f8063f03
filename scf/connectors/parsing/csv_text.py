"""Pure CSV helpers, text side: limits, decoding a payload, the dialect and page tokens.

Nothing here does I/O or knows about requests; `csv.py` feeds these functions and shapes their results.
Records and type inference live in `csv_rows`.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import csv
import hashlib
import json
from dataclasses import dataclass

import charset_normalizer

from scf.schemas.configs.csv import CsvConfig
from scf.schemas.errors import ErrorCode, PermanentError

# csv.Sniffer is superlinear in its sample (its quote regex backtracks): 64 KiB took 0.37 s, 16 KiB 0.03 s.
SNIFF_SAMPLE_CHARS = 16 * 1024
SNIFF_DELIMITERS = ",;\t|"
DEFAULT_DELIMITER = ","
DETECT_WINDOW_BYTES = 32 * 1024
PAGE_TOKEN_VERSION = 1

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# --- limits -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvLimits:
    """The connector's refusal thresholds; every breach is a LIMIT_EXCEEDED error naming the limit."""

    max_bytes: int
    max_rows: int
    max_columns: int
    max_field_size: int

    @classmethod
    def from_config(cls, config: CsvConfig) -> CsvLimits:
        return cls(config.max_bytes, config.max_rows, config.max_columns, config.max_field_size)


def limit_exceeded(limit: str, value: int, what: str) -> PermanentError:
    return PermanentError(f"{what} exceeds {limit} ({value})", code=ErrorCode.LIMIT_EXCEEDED)


# --- payload ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecodedText:
    """Payload text plus the codec used; `issue` is set only when a lenient decode had to replace bytes."""

    text: str
    encoding: str
    issue: str | None = None
    issue_line: int = 0


def decode_base64(data: str, max_bytes: int) -> bytes:
    """Strict base64 (whitespace allowed); refuses before decoding when the result cannot fit."""
    compact = "".join(data.split())
    if len(compact) // 4 * 3 > max_bytes + 2:
        raise limit_exceeded("max_bytes", max_bytes, "decoded file_data")
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise PermanentError("data.file_data is not valid base64", code=ErrorCode.INVALID_DATA) from None
    check_size(len(raw), max_bytes)
    return raw


def check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise limit_exceeded("max_bytes", max_bytes, f"file_data of {size} bytes")


def encode_text(text: str, max_bytes: int) -> bytes:
    """Inline text as UTF-8 (for its size and fingerprint); refuses before encoding when obviously too big."""
    if len(text) > max_bytes:  # every character is at least one byte
        raise limit_exceeded("max_bytes", max_bytes, f"file_data of at least {len(text)} bytes")
    raw = text.encode("utf-8", "surrogatepass")
    check_size(len(raw), max_bytes)
    return raw


def canonical_encoding(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise PermanentError(f"unknown encoding {name!r}", code=ErrorCode.INVALID_REQUEST) from None


def decode_bytes(raw: bytes, encoding: str | None = None, *, lenient: bool = False) -> DecodedText:
    """Decode with the given codec, else a BOM, else UTF-8, else what charset-normalizer detects.

    Strict mode raises INVALID_DATA naming the line of the first undecodable byte; lenient mode (for
    `validate`) replaces bad bytes and records that line as the issue instead.
    """
    try:
        codec = _choose_codec(raw, encoding)
    except PermanentError:
        if not lenient or encoding is not None:
            raise
        codec = "utf-8"  # nothing fits: validate reports where UTF-8 breaks rather than refusing
    if codec == "utf-8":
        codec = "utf-8-sig"  # a BOM is never data
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        message = f"file_data is not valid {_display(codec)}: undecodable byte at line {line}"
        if not lenient:
            raise PermanentError(message, code=ErrorCode.INVALID_DATA) from None
        return DecodedText(strip_bom(raw.decode(codec, "replace")), _display(codec), message, line)
    return DecodedText(strip_bom(text), _display(codec))


def bom_codec(raw: bytes) -> str | None:
    """The codec a byte-order mark at the start of `raw` names, if any."""
    return next((codec for bom, codec in _BOMS if raw.startswith(bom)), None)


def _choose_codec(raw: bytes, encoding: str | None) -> str:
    if encoding is not None:
        return canonical_encoding(encoding)
    marked = bom_codec(raw)
    if marked is not None:
        return marked
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Detect on a window around the first non-UTF-8 byte, so a late Latin-1 byte is still seen.
        start = max(0, exc.start - DETECT_WINDOW_BYTES)
        return detect_codec(raw[start : exc.start + DETECT_WINDOW_BYTES])
    return "utf-8"


def detect_codec(sample: bytes) -> str:
    """charset-normalizer's pick, except that cp1252 wins a tie among the least chaotic candidates.

    Short Western European text (a few accented names) decodes cleanly in several code pages and the
    detector then often picks a Baltic or Central European one; cp1252 is by far the likelier source.
    """
    matches = charset_normalizer.from_bytes(sample)
    best = matches.best()
    if best is None:
        raise PermanentError(
            "cannot detect the encoding of file_data; pass parameters.encoding", code=ErrorCode.INVALID_DATA
        )
    least = min(m.chaos for m in matches)
    if any("cp1252" in m.could_be_from_charset for m in matches if m.chaos == least):
        return "cp1252"
    return canonical_encoding(best.encoding)


def _display(codec: str) -> str:
    return "utf-8" if codec == "utf-8-sig" else codec


def strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text


def fingerprint(raw: bytes) -> str:
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


# --- dialect ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvDialect:
    delimiter: str
    quotechar: str = '"'


def sniff_delimiter(text: str) -> str:
    """Guess the delimiter from the first 16 KiB (whole lines only); ',' when the sniffer cannot tell."""
    sample = text[:SNIFF_SAMPLE_CHARS]
    if len(text) > SNIFF_SAMPLE_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    try:
        return csv.Sniffer().sniff(sample, delimiters=SNIFF_DELIMITERS).delimiter
    except csv.Error:
        return DEFAULT_DELIMITER


def check_dialect(dialect: CsvDialect) -> None:
    if dialect.delimiter in "\r\n" or dialect.delimiter == dialect.quotechar or dialect.quotechar in "\r\n":
        raise PermanentError(
            "delimiter and quotechar must be different characters and not line breaks",
            code=ErrorCode.INVALID_REQUEST,
        )


# --- paging -----------------------------------------------------------------------------------------


def encode_page_token(offset: int, file_id: str, dialect_id: str) -> str:
    body = {"v": PAGE_TOKEN_VERSION, "offset": offset, "file": file_id, "dialect": dialect_id}
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()


def decode_page_token(token: str, file_id: str, dialect_id: str) -> int:
    """The row offset a token resumes at; INVALID_REQUEST if it is garbled or belongs to other data."""
    try:
        body = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        offset, same = body["offset"], (body["file"], body["dialect"]) == (file_id, dialect_id)
        valid = body["v"] == PAGE_TOKEN_VERSION and type(offset) is int and offset >= 0
    except (ValueError, TypeError, KeyError, binascii.Error):
        valid = False
    if not valid:
        raise PermanentError(
            "page_token is not a token this connector issued", code=ErrorCode.INVALID_REQUEST
        )
    if not same:
        raise PermanentError(
            "page_token belongs to different file_data or parameters; re-send the same file with the token",
            code=ErrorCode.INVALID_REQUEST,
        )
    result: int = offset
    return result
