"""The CSV operations as pure functions: options, a loaded file, and ingest/validate/preview.

Everything here runs without I/O (in a worker thread for large inputs) and without a connector: the CSV
connector and MinIO's `ingest` fetch the bytes (inline, object, URL) and call these.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from scf.connectors.operation_table import PageParameters, Strict
from scf.connectors.parsing.csv_rows import (
    ColumnProfile,
    ColumnType,
    MalformedCsvError,
    Row,
    Table,
    coerce_value,
    column_names,
    header_problems,
    open_table,
)
from scf.connectors.parsing.csv_text import (
    CsvDialect,
    CsvLimits,
    canonical_encoding,
    check_dialect,
    check_size,
    decode_base64,
    decode_bytes,
    decode_page_token,
    encode_page_token,
    encode_text,
    fingerprint,
    sniff_delimiter,
    strip_bom,
)
from scf.connectors.sources import SinkTarget
from scf.schemas.configs.csv import CsvConfig
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome

DEFAULT_PAGE_SIZE = 1_000
PREVIEW_SAMPLE_ROWS = 1_000  # preview infers types over at least this many leading rows


class CsvOptions(Strict):
    """How to read a CSV file (every operation, and MinIO `ingest` of a CSV object)."""

    delimiter: str | None = Field(default=None, min_length=1, max_length=1)
    quotechar: str = Field(default='"', min_length=1, max_length=1)
    has_headers: bool | None = None
    encoding: str | None = Field(default=None, min_length=1, max_length=64)
    coerce_types: bool = True


class CsvPageOptions(CsvOptions, PageParameters):
    """Reading options of a page of records: `page_size` (default 1000) and an optional column `schema`."""

    schema_: dict[str, ColumnType] = Field(default_factory=dict, alias="schema", max_length=10_000)


class InlineOptions(Strict):
    """`base64`: `data.file_data` is base64 (as with the request's `data_format: base64`)."""

    base64: bool = False


class CsvIngestParameters(CsvPageOptions, InlineOptions):
    """`parameters` of CSV `ingest`; `sink` streams the whole file into an output connector instead."""

    sink: SinkTarget | None = None


class CsvValidateParameters(CsvOptions, InlineOptions):
    max_errors: int = Field(default=100, ge=1, le=10_000)


class CsvPreviewParameters(CsvOptions, InlineOptions):
    """`preview_rows`: how many leading rows to show (default `custom_config.preview_rows`)."""

    preview_rows: int | None = Field(default=None, ge=1, le=1_000)


@dataclass(frozen=True)
class CsvSource:
    """A decoded payload and how to read it; `encoding_issue` is set only by a lenient (validate) load."""

    text: str
    encoding: str
    file_id: str
    dialect: CsvDialect
    has_headers: bool
    encoding_issue: str | None = None
    issue_line: int = 0

    @property
    def reading_id(self) -> str:
        """Everything besides the bytes that decides which row is row n: part of every page token."""
        return json.dumps([self.dialect.delimiter, self.dialect.quotechar, self.has_headers, self.encoding])

    def table(self, limits: CsvLimits) -> Table:
        return open_table(self.text, self.dialect, limits, has_headers=self.has_headers)

    def describe(self) -> dict[str, Any]:
        return {"delimiter": self.dialect.delimiter, "encoding": self.encoding}


def inline_payload(file_data: str, base64: bool, max_bytes: int) -> bytes | str:
    """`data.file_data` as the parser takes it: bytes when it is base64, else the text itself."""
    return decode_base64(file_data, max_bytes) if base64 else file_data


def load_source(payload: bytes | str, options: CsvOptions, config: CsvConfig, *, lenient: bool) -> CsvSource:
    """Decode `payload` (bytes: fetched or base64-decoded; str: inline text) and choose the dialect."""
    encoding = options.encoding or config.encoding
    if isinstance(payload, bytes):
        check_size(len(payload), config.max_bytes)
        decoded = decode_bytes(payload, encoding, lenient=lenient)
        return _source(
            payload, decoded.text, decoded.encoding, options, config, decoded.issue, decoded.issue_line
        )
    # Inline text is already Unicode (the wire is JSON); an encoding given for it is only checked.
    raw = encode_text(payload, config.max_bytes)
    if encoding is not None:
        canonical_encoding(encoding)
    return _source(raw, strip_bom(payload), "utf-8", options, config, None, 0)


def _source(
    raw: bytes,
    text: str,
    codec: str,
    params: CsvOptions,
    config: CsvConfig,
    issue: str | None,
    issue_line: int,
) -> CsvSource:
    delimiter = params.delimiter or config.delimiter or sniff_delimiter(text)
    dialect = CsvDialect(delimiter, params.quotechar)
    check_dialect(dialect)
    has_headers = config.has_headers if params.has_headers is None else params.has_headers
    return CsvSource(text, codec, fingerprint(raw), dialect, has_headers, issue, issue_line)


def _require_width(row: Row, width: int) -> None:
    if len(row.fields) != width:
        raise PermanentError(
            f"row at line {row.line} has {len(row.fields)} fields, expected {width}; "
            "run validate for a full report",
            code=ErrorCode.INVALID_DATA,
        )


def _records(rows: list[Row], columns: list[str], types: list[ColumnType] | None) -> list[dict[str, Any]]:
    if types is None:
        return [dict(zip(columns, row.fields, strict=True)) for row in rows]
    return [
        {
            name: _coerce(value, kind, name, row.line)
            for name, value, kind in zip(columns, row.fields, types, strict=True)
        }
        for row in rows
    ]


def _coerce(value: str, kind: ColumnType, column: str, line: int) -> Any:
    try:
        return coerce_value(value, kind)
    except (ValueError, KeyError):  # only a given schema can disagree with the data
        raise PermanentError(
            f"line {line}, column {column!r}: the value is not a {kind} as parameters.schema says",
            code=ErrorCode.INVALID_DATA,
        ) from None


def _column_types(
    columns: list[str], profiles: list[ColumnProfile], given: dict[str, ColumnType]
) -> list[ColumnType]:
    unknown = sorted(set(given) - set(columns))
    if unknown:
        raise PermanentError(
            f"parameters.schema names columns the file does not have: {unknown}",
            code=ErrorCode.INVALID_REQUEST,
        )
    return [given.get(name, profile.widened_type) for name, profile in zip(columns, profiles, strict=True)]


# --- operations -------------------------------------------------------------------------------------


def run_ingest(
    source: CsvSource, params: CsvPageOptions, limits: CsvLimits, page_token: str | None
) -> OperationOutcome:
    """One page of records, typed by inference over the whole file so every page agrees on types."""
    page_size = params.page_size or DEFAULT_PAGE_SIZE
    offset = decode_page_token(page_token, source.file_id, source.reading_id) if page_token else 0
    table = source.table(limits)
    columns = column_names(table.header, table.width)
    profiles = [ColumnProfile() for _ in columns]
    page: list[Row] = []
    total = 0
    for row in table.rows:
        _require_width(row, table.width)
        if offset <= total < offset + page_size:
            page.append(row)
        total += 1
        if params.coerce_types:
            for profile, value in zip(profiles, row.fields, strict=True):
                profile.observe(value, row.line)
    types = _column_types(columns, profiles, params.schema_) if params.coerce_types else None
    end = offset + len(page)
    return OperationOutcome(
        records_processed=len(page),
        result_data={
            "records": _records(page, columns, types),
            "columns": columns,
            **source.describe(),
            "row_offset": offset,
            "total_rows": total,
        },
        next_page_token=encode_page_token(end, source.file_id, source.reading_id) if end < total else None,
    )


@dataclass(frozen=True)
class _Issue:
    line: int
    kind: str
    message: str


def run_validate(source: CsvSource, params: CsvValidateParameters, limits: CsvLimits) -> OperationOutcome:
    """A report of everything wrong with the content; raises only for limit breaches."""
    issues: list[_Issue] = []
    count = 0

    def note(line: int, kind: str, message: str) -> None:
        nonlocal count
        count += 1
        if len(issues) < params.max_errors:  # issues arrive in line order: the first ones are kept
            issues.append(_Issue(line, kind, message))

    columns: list[str] = []
    profiles: list[ColumnProfile] = []
    rows = 0
    try:
        table = source.table(limits)
        columns = column_names(table.header, table.width)
        profiles = [ColumnProfile(keep=params.max_errors) for _ in columns]
        for kind, message in header_problems(table.header or []):
            note(table.header_line, kind, message)
        for row in table.rows:
            rows += 1
            if len(row.fields) != table.width:
                note(row.line, "ragged_row", f"{len(row.fields)} fields, expected {table.width}")
            for profile, value in zip(profiles, row.fields, strict=False):
                profile.observe(value, row.line)
    except MalformedCsvError as exc:
        note(exc.line, "malformed", exc.reason + "; rows after it were not read")
    if source.encoding_issue is not None:
        count += 1
        issues.append(_Issue(source.issue_line, "encoding", source.encoding_issue))
    for name, profile in zip(columns, profiles, strict=True):
        bad, samples = profile.mismatches()
        count += bad
        expected = profile.dominant_type
        issues.extend(
            _Issue(
                line, "type_mismatch", f"column {name!r} holds {expected} values, but {value!r} is not one"
            )
            for line, value in samples
        )
    issues.sort(key=lambda issue: issue.line)
    kept = issues[: params.max_errors]
    return OperationOutcome(
        records_processed=rows,
        result_data={
            "valid": count == 0,
            "rows": rows,
            "columns": columns,
            **source.describe(),
            "errors": [{"line": i.line, "kind": i.kind, "message": i.message} for i in kept],
            "error_count": count,
            "errors_truncated": count > len(kept),
            "inferred_types": {name: p.dominant_type for name, p in zip(columns, profiles, strict=True)},
        },
    )


def run_preview(
    source: CsvSource, params: CsvPreviewParameters, limits: CsvLimits, default_rows: int
) -> OperationOutcome:
    """The first rows, read strictly, and a schema inferred over them plus up to ~1000 rows after."""
    wanted = params.preview_rows or default_rows
    table = source.table(limits)
    columns = column_names(table.header, table.width)
    shown = list(itertools.islice(table.rows, wanted))
    for row in shown:
        _require_width(row, table.width)
    extra, more = _read_on(table, PREVIEW_SAMPLE_ROWS - len(shown))
    profiles = [ColumnProfile() for _ in columns]
    for row in itertools.chain(shown, extra):
        for profile, value in zip(profiles, row.fields, strict=True):
            profile.observe(value, row.line)
    types = [p.widened_type for p in profiles]
    return OperationOutcome(
        records_processed=len(shown),
        result_data={
            "records": _records(shown, columns, types if params.coerce_types else None),
            "columns": columns,
            "schema": [
                {"name": name, "type": kind, "nullable": p.nullable}
                for name, kind, p in zip(columns, types, profiles, strict=True)
            ],
            **source.describe(),
            "truncated": more or bool(extra),
        },
    )


def _read_on(table: Table, limit: int) -> tuple[list[Row], bool]:
    """Up to `limit` further well-formed rows, and whether anything follows them.

    Stops quietly at the first ragged, malformed or over-limit row: what is wrong past the shown rows
    is validate's business, not a reason to refuse a preview.
    """
    rows: list[Row] = []
    try:
        for row in table.rows:
            if len(rows) >= limit or len(row.fields) != table.width:
                return rows, True
            rows.append(row)
    except PermanentError:
        return rows, True
    return rows, False
