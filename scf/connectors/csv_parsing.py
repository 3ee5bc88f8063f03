"""Pure CSV helpers for the CSV connector: decode a payload, pick a dialect, read records under limits.

Nothing here does I/O or knows about requests; the connector (`csv_ingest`) feeds these functions and
shapes their results. Type inference lives in `ColumnProfile`; paging in `encode_page_token`.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import csv
import hashlib
import io
import itertools
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import charset_normalizer

from scf.schemas.configs.csv import CsvConfig
from scf.schemas.errors import ErrorCode, PermanentError

# csv.Sniffer is superlinear in its sample (its quote regex backtracks): 64 KiB took 0.37 s, 16 KiB 0.03 s.
SNIFF_SAMPLE_CHARS = 16 * 1024
SNIFF_DELIMITERS = ",;\t|"
DEFAULT_DELIMITER = ","
DETECT_WINDOW_BYTES = 32 * 1024
PAGE_TOKEN_VERSION = 1
SAMPLE_VALUE_CHARS = 40

ColumnType = Literal["int", "float", "bool", "str"]
ValueKind = Literal["blank", "int", "float", "bool", "str"]

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Leading zeros stay text ("007" is an identifier, not 7); over-long digit runs stay text too.
_INT = re.compile(r"[+-]?(?:0|[1-9][0-9]{0,99})")
_FLOAT = re.compile(r"[+-]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BOOLS = {"true": True, "false": False}
_FITS: dict[ColumnType, frozenset[ValueKind]] = {
    "int": frozenset({"blank", "int"}),
    "float": frozenset({"blank", "int", "float"}),
    "bool": frozenset({"blank", "bool"}),
    "str": frozenset({"blank", "int", "float", "bool", "str"}),
}


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


def _choose_codec(raw: bytes, encoding: str | None) -> str:
    if encoding is not None:
        return canonical_encoding(encoding)
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            return codec
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


# --- records ----------------------------------------------------------------------------------------


class MalformedCsvError(PermanentError):
    """The csv reader gave up (unmatched quote, stray quote); `line` is where the bad record starts."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"malformed CSV at line {line}: {reason}", code=ErrorCode.INVALID_DATA)
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Row:
    line: int  # physical line where the record starts (quoted newlines make records span lines)
    fields: list[str]


def read_rows(text: str, dialect: CsvDialect, limits: CsvLimits) -> Iterator[Row]:
    """Yield every non-blank record, enforcing max_columns and max_field_size.

    The process-wide `csv.field_size_limit` is left at Python's default (131072, the ceiling of
    max_field_size) because parsing runs in worker threads; smaller limits are checked here.
    """
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=dialect.delimiter,
        quotechar=dialect.quotechar,
        strict=True,
    )
    end_line = 0
    while True:
        start = end_line + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise limit_exceeded(
                    "max_field_size", limits.max_field_size, f"a field at line {start}"
                ) from None
            raise MalformedCsvError(start, _reason(exc)) from None
        end_line = reader.line_num
        if not fields:
            continue
        if len(fields) > limits.max_columns:
            raise limit_exceeded("max_columns", limits.max_columns, f"{len(fields)} fields at line {start}")
        if any(len(value) > limits.max_field_size for value in fields):
            raise limit_exceeded("max_field_size", limits.max_field_size, f"a field at line {start}")
        yield Row(start, fields)


def _reason(exc: csv.Error) -> str:
    text = str(exc)
    return "unmatched quote" if text == "unexpected end of data" else text


@dataclass
class Table:
    """A header (read or generated) and an iterator over the data rows, which enforces max_rows."""

    header: list[str] | None
    header_line: int
    width: int
    rows: Iterator[Row]


def open_table(text: str, dialect: CsvDialect, limits: CsvLimits, *, has_headers: bool) -> Table:
    rows = read_rows(text, dialect, limits)
    first = next(rows, None)
    if first is None:
        return Table(None, 0, 0, iter(()))
    if has_headers:
        return Table(first.fields, first.line, len(first.fields), _capped(rows, limits.max_rows))
    return Table(None, 0, len(first.fields), _capped(itertools.chain([first], rows), limits.max_rows))


def _capped(rows: Iterator[Row], max_rows: int) -> Iterator[Row]:
    for count, row in enumerate(rows, start=1):
        if count > max_rows:
            raise limit_exceeded("max_rows", max_rows, f"data row {count} at line {row.line}")
        yield row


def column_names(header: list[str] | None, width: int) -> list[str]:
    """Unique, non-empty keys: blank headers become column_<n>, repeats get _2, _3 ..."""
    if header is None:
        return [f"column_{i}" for i in range(1, width + 1)]
    names: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(header, start=1):
        base = raw.strip() or f"column_{i}"
        name, n = base, 1
        while name in seen:
            n += 1
            name = f"{base}_{n}"
        seen.add(name)
        names.append(name)
    return names


def header_problems(header: list[str]) -> list[tuple[Literal["empty_header", "duplicate_header"], str]]:
    problems: list[tuple[Literal["empty_header", "duplicate_header"], str]] = []
    seen: set[str] = set()
    for i, raw in enumerate(header, start=1):
        name = raw.strip()
        if not name:
            problems.append(("empty_header", f"column {i} has an empty header"))
        elif name in seen:
            problems.append(("duplicate_header", f"header {name!r} repeats at column {i}"))
        seen.add(name)
    return problems


# --- types ------------------------------------------------------------------------------------------


def classify_value(value: str) -> ValueKind:
    """What a raw field looks like: blank (empty or whitespace) is null; surrounding whitespace is ignored."""
    stripped = value.strip()
    if not stripped:
        return "blank"
    if _INT.fullmatch(stripped):
        return "int"
    if _FLOAT.fullmatch(stripped) and math.isfinite(float(stripped)):
        return "float"
    if stripped.lower() in _BOOLS:
        return "bool"
    return "str"


def coerce_value(value: str, column_type: ColumnType) -> Any:
    """Convert a raw field to its column's type; only call with the type inferred over that column."""
    stripped = value.strip()
    if not stripped:
        return None
    if column_type == "int":
        return int(stripped)
    if column_type == "float":
        return float(stripped)
    if column_type == "bool":
        return _BOOLS[stripped.lower()]
    return value


@dataclass
class ColumnProfile:
    """Counts of each value kind in one column, plus the first `keep` (line, value) samples per kind.

    `widened_type` is what `ingest` coerces to (any conflict falls back to str, so coercion never
    fails); `dominant_type` is what `validate` expects (the kind most values share), so the few
    values that break it can be reported as type mismatches.
    """

    keep: int = 0
    counts: dict[ValueKind, int] = field(default_factory=dict)
    samples: dict[ValueKind, list[tuple[int, str]]] = field(default_factory=dict)

    def observe(self, value: str, line: int) -> None:
        if self.keep == 0 and self.counts.get("str"):  # already text: only nulls still matter
            kind: ValueKind = "blank" if not value.strip() else "str"
        else:
            kind = classify_value(value)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.keep and kind != "blank":
            kept = self.samples.setdefault(kind, [])
            if len(kept) < self.keep:
                kept.append((line, value[:SAMPLE_VALUE_CHARS]))

    @property
    def nullable(self) -> bool:
        return self.counts.get("blank", 0) > 0

    @property
    def widened_type(self) -> ColumnType:
        kinds = {k for k, n in self.counts.items() if n and k != "blank"}
        if kinds == {"int"}:
            return "int"
        if kinds and kinds <= {"int", "float"}:
            return "float"
        if kinds == {"bool"}:
            return "bool"
        return "str"

    @property
    def dominant_type(self) -> ColumnType:
        widened = self.widened_type
        if widened != "str":
            return widened
        total = sum(n for k, n in self.counts.items() if k != "blank")
        numeric = self.counts.get("int", 0) + self.counts.get("float", 0)
        if numeric * 2 > total:
            return "float" if self.counts.get("float") else "int"
        if self.counts.get("bool", 0) * 2 > total:
            return "bool"
        return "str"

    def mismatches(self) -> tuple[int, list[tuple[int, str]]]:
        """(how many values break the dominant type, the kept samples of them)."""
        fits = _FITS[self.dominant_type]
        bad = [k for k in self.counts if k not in fits]
        samples = [s for k in bad for s in self.samples.get(k, [])]
        return sum(self.counts[k] for k in bad), samples


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
