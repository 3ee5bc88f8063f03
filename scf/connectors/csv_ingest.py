"""The CSV connector (`csv`): ingest, validate and preview CSV sent inline in a request.

There is no service behind it, so open/close do no I/O. Each operation decodes the payload, picks a
dialect and reads it with the pure helpers of `csv_parsing`, inside a worker thread so that a large file
does not stall the event loop. Object-store and URL sources come with a later issue.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scf.connectors.base import ErrorRule, ServiceConnector
from scf.connectors.csv_parsing import (
    ColumnProfile,
    ColumnType,
    CsvDialect,
    CsvLimits,
    MalformedCsvError,
    Row,
    Table,
    canonical_encoding,
    check_dialect,
    check_size,
    coerce_value,
    column_names,
    decode_base64,
    decode_bytes,
    decode_page_token,
    encode_page_token,
    encode_text,
    fingerprint,
    header_problems,
    open_table,
    sniff_delimiter,
    strip_bom,
)
from scf.connectors.csv_sink import StreamOptions, inline_chunks, stream_to_sink
from scf.connectors.sources import DEADLINE, ObjectRef, SinkTarget
from scf.schemas.configs.csv import CsvConfig
from scf.schemas.connection import ServiceType, describe_validation_error
from scf.schemas.errors import ErrorCategory, ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome, OperationRequest, TestVerdict

MAX_PAGE_SIZE = 10_000
PREVIEW_SAMPLE_ROWS = 1_000  # preview infers types over at least this many leading rows


class CsvParameters(BaseModel):
    """`parameters` of a CSV operation. Unknown keys are refused so a misspelt option is not ignored."""

    model_config = ConfigDict(extra="forbid")

    delimiter: str | None = Field(default=None, min_length=1, max_length=1)
    quotechar: str = Field(default='"', min_length=1, max_length=1)
    has_headers: bool | None = None
    encoding: str | None = Field(default=None, min_length=1, max_length=64)
    base64: bool = False
    coerce_types: bool = True
    page_size: int = Field(default=1_000, ge=1, le=MAX_PAGE_SIZE)
    rows: int | None = Field(default=None, ge=1, le=1_000)
    max_errors: int = Field(default=100, ge=1, le=10_000)
    sink: SinkTarget | None = None
    schema_: dict[str, ColumnType] = Field(default_factory=dict, alias="schema", max_length=10_000)

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> CsvParameters:
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            message = "invalid parameters: " + describe_validation_error(exc)
            raise PermanentError(message, code=ErrorCode.INVALID_REQUEST) from None


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


def load_source(
    request: OperationRequest,
    params: CsvParameters,
    config: CsvConfig,
    *,
    lenient: bool,
    fetched: bytes | None = None,
) -> CsvSource:
    """Read `data.file_data` (text, or base64 when `data_format` is base64 or `parameters.base64`),
    or the bytes already `fetched` for an object reference."""
    encoding = params.encoding or config.encoding
    if fetched is not None:
        check_size(len(fetched), config.max_bytes)
        decoded = decode_bytes(fetched, encoding, lenient=lenient)
        return _source(
            fetched, decoded.text, decoded.encoding, params, config, decoded.issue, decoded.issue_line
        )
    data = request.data.get("file_data")
    if not isinstance(data, str):
        raise PermanentError(
            "data.file_data is required: CSV text, or base64 with data_format 'base64'",
            code=ErrorCode.INVALID_DATA,
        )
    if request.data_format == "base64" or params.base64:
        raw = decode_base64(data, config.max_bytes)
        decoded = decode_bytes(raw, encoding, lenient=lenient)
        text, codec, issue, issue_line = decoded.text, decoded.encoding, decoded.issue, decoded.issue_line
    else:
        # Inline text is already Unicode (the wire is JSON); an encoding given for it is only checked.
        raw = encode_text(data, config.max_bytes)
        if encoding is not None:
            canonical_encoding(encoding)
        text, codec, issue, issue_line = strip_bom(data), "utf-8", None, 0
    return _source(raw, text, codec, params, config, issue, issue_line)


def _source(
    raw: bytes,
    text: str,
    codec: str,
    params: CsvParameters,
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
    source: CsvSource, params: CsvParameters, limits: CsvLimits, page_token: str | None
) -> OperationOutcome:
    """One page of records, typed by inference over the whole file so every page agrees on types."""
    offset = decode_page_token(page_token, source.file_id, source.reading_id) if page_token else 0
    table = source.table(limits)
    columns = column_names(table.header, table.width)
    profiles = [ColumnProfile() for _ in columns]
    page: list[Row] = []
    total = 0
    for row in table.rows:
        _require_width(row, table.width)
        if offset <= total < offset + params.page_size:
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


def run_validate(source: CsvSource, params: CsvParameters, limits: CsvLimits) -> OperationOutcome:
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
    source: CsvSource, params: CsvParameters, limits: CsvLimits, default_rows: int
) -> OperationOutcome:
    """The first rows, read strictly, and a schema inferred over them plus up to ~1000 rows after."""
    wanted = params.rows or default_rows
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


# --- the connector ----------------------------------------------------------------------------------


class CSVIngestionConnector(ServiceConnector):
    """Reads CSV from the request itself (the spec's `CSVIngestionConnector`).

    Operations:

    * `ingest` -> `{"records", "columns", "delimiter", "encoding", "row_offset", "total_rows"}`, at most
      `parameters.page_size` records (default 1000, max 10000). When more remain the outcome carries
      `next_page_token`; to get the next page the caller sends the *same* `file_data` and parameters
      again with `page_token` set (the token holds the row offset and a fingerprint of the file, and is
      refused for other data). Types are inferred over the whole file; `coerce_types: false` keeps text.
    * `validate` -> a report `{"valid", "rows", "columns", "errors", "error_count", "errors_truncated",
      "inferred_types", ...}`. Bad content (ragged rows, blank or repeated headers, type mismatches,
      undecodable bytes, a malformed record) is reported, never raised.
    * `preview` -> the first `parameters.rows` records (default `custom_config.preview_rows`) and a
      schema `[{"name", "type", "nullable"}]` inferred over the leading rows.

    Raises `permanent` errors only: INVALID_REQUEST (bad parameters or page token), INVALID_DATA
    (missing file_data, bad base64, undecodable or malformed CSV, ragged rows in ingest/preview) and
    LIMIT_EXCEEDED (max_bytes, max_rows, max_columns, max_field_size of `custom_config`; in every
    operation, validate included).
    """

    service_type = ServiceType.CSV
    operations: ClassVar[frozenset[str]] = frozenset({"ingest", "validate", "preview"})
    error_rules: ClassVar[tuple[ErrorRule, ...]] = (
        # Backstops: the helpers already raise typed errors, but a stray driver error is still bad data.
        ErrorRule(csv.Error, ErrorCategory.PERMANENT, ErrorCode.INVALID_DATA, "malformed CSV"),
        ErrorRule(
            UnicodeError, ErrorCategory.PERMANENT, ErrorCode.INVALID_DATA, "file_data cannot be decoded"
        ),
    )

    @property
    def config(self) -> CsvConfig:
        assert isinstance(self.type_config, CsvConfig)
        return self.type_config

    async def _open(self) -> None:
        """Nothing to connect to."""

    async def _close(self) -> None:
        """Nothing to release."""

    async def _check(self) -> dict[str, TestVerdict]:
        return {"connection_test": "passed", "authentication_test": "passed", "permissions_test": "passed"}

    async def _execute(self, request: OperationRequest) -> OperationOutcome:
        params = CsvParameters.parse(request.parameters)
        if request.page_token is not None and request.operation != "ingest":
            raise PermanentError("page_token applies only to ingest", code=ErrorCode.INVALID_REQUEST)
        ref = _object_ref(request)
        if params.sink is not None:
            return await self._ingest_to_sink(request, params, params.sink, ref)
        fetched = None
        if ref is not None:
            reader = await self.bindings.object_reader(ref)
            fetched = await reader.read_object_bytes(ref.key, self.config.max_bytes)
        # Decoding, sniffing and parsing are CPU work on up to max_bytes: keep large inputs off the event
        # loop; a small one parses faster than a thread hand-off costs.
        if fetched is None and _inline_size(request) <= INLINE_PARSE_BYTES:
            return self._run(request, params, None)
        return await asyncio.to_thread(self._run, request, params, fetched)

    async def _ingest_to_sink(
        self, request: OperationRequest, params: CsvParameters, target: SinkTarget, ref: ObjectRef | None
    ) -> OperationOutcome:
        """Stream the whole file into the sink connector in batches (see `csv_sink`)."""
        if request.operation != "ingest":
            raise PermanentError("parameters.sink applies only to ingest", code=ErrorCode.INVALID_REQUEST)
        if request.page_token is not None:
            raise PermanentError(
                "a sink ingest is not paged: drop page_token", code=ErrorCode.INVALID_REQUEST
            )
        config = self.config
        sink = self.bindings.require_sink()
        if ref is not None:
            reader = await self.bindings.object_reader(ref)
            chunks = reader.stream_object(ref.key, config.max_bytes)
        else:
            chunks = inline_chunks(load_source(request, params, config, lenient=False).text.encode())
        options = StreamOptions(
            delimiter=params.delimiter or config.delimiter,
            quotechar=params.quotechar,
            has_headers=config.has_headers if params.has_headers is None else params.has_headers,
            encoding=params.encoding or config.encoding,
        )
        deadline = DEADLINE.get() or time.time() + (request.timeout or SINK_DEFAULT_SECONDS)
        report = await stream_to_sink(
            chunks,
            options,
            CsvLimits.from_config(config),
            target,
            sink,
            request.operation_id or "op",
            deadline,
        )
        return OperationOutcome(
            records_processed=report.rows,
            records_affected=report.affected,
            result_data=report.result_data(target),
        )

    def _run(
        self, request: OperationRequest, params: CsvParameters, fetched: bytes | None
    ) -> OperationOutcome:
        config = self.config
        limits = CsvLimits.from_config(config)
        source = load_source(
            request, params, config, lenient=request.operation == "validate", fetched=fetched
        )
        runners: dict[str, Callable[[], OperationOutcome]] = {
            "ingest": lambda: run_ingest(source, params, limits, request.page_token),
            "validate": lambda: run_validate(source, params, limits),
            "preview": lambda: run_preview(source, params, limits, config.preview_rows),
        }
        return runners[request.operation]()


#: Inputs up to this size are parsed on the event loop (well under a millisecond of work).
INLINE_PARSE_BYTES = 16 * 1024


def _inline_size(request: OperationRequest) -> int:
    data = request.data.get("file_data")
    return len(data) if isinstance(data, str) else INLINE_PARSE_BYTES + 1


#: How long a sink ingest may run when neither the fleet nor the request set a deadline.
SINK_DEFAULT_SECONDS = 3600.0


def _object_ref(request: OperationRequest) -> ObjectRef | None:
    """`data.object` -> a reference to an object held by another connector (MinIO/S3)."""
    raw = request.data.get("object")
    if raw is None:
        return None
    if "file_data" in request.data:
        raise PermanentError("give data.file_data or data.object, not both", code=ErrorCode.INVALID_REQUEST)
    try:
        return ObjectRef.model_validate(raw)
    except ValidationError as exc:
        message = "invalid data.object: " + describe_validation_error(exc)
        raise PermanentError(message, code=ErrorCode.INVALID_REQUEST) from None
