"""The CSV connector (`csv`): ingest, validate and preview CSV sent inline, by object or by URL.

There is no service behind it, so open/close do no I/O. Each operation fetches the file if it is a
reference (an object through the bound lookup, a URL through the SSRF guard), then reads it with the
pure helpers of `operations` and `csv_parsing` (in a thread when large), or streams it into a sink.
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import Callable
from typing import ClassVar

from pydantic import ValidationError

from scf.connectors.base import ErrorRule, ServiceConnector
from scf.connectors.csv_ingest.operations import (
    CsvParameters,
    load_source,
    run_ingest,
    run_preview,
    run_validate,
)
from scf.connectors.csv_ingest.sink import StreamOptions, inline_chunks, stream_to_sink
from scf.connectors.csv_parsing import (
    CsvLimits,
)
from scf.connectors.sources import DEADLINE, ObjectRef, SinkTarget, time_left
from scf.connectors.url_source import fetch_url_bytes
from scf.schemas.configs.csv import CsvConfig
from scf.schemas.connection import ServiceType, describe_validation_error
from scf.schemas.errors import ErrorCategory, ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome, OperationRequest, TestVerdict


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
    #: Reading and checking a CSV changes nothing anywhere: the worker may claim their ids while they run.
    read_operations: ClassVar[frozenset[str]] = frozenset({"validate", "preview"})
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
        fetched = await self._fetch_url(request)
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
        """Stream the whole file into the sink connector in batches (see `sink`)."""
        if request.operation != "ingest":
            raise PermanentError("parameters.sink applies only to ingest", code=ErrorCode.INVALID_REQUEST)
        if request.page_token is not None:
            raise PermanentError(
                "a sink ingest is not paged: drop page_token", code=ErrorCode.INVALID_REQUEST
            )
        config = self.config
        sink = self.bindings.require_sink()
        fetched = await self._fetch_url(request)
        if ref is not None:
            reader = await self.bindings.object_reader(ref)
            chunks = reader.stream_object(ref.key, config.max_bytes)
        elif fetched is not None:
            chunks = inline_chunks(fetched)
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

    async def _fetch_url(self, request: OperationRequest) -> bytes | None:
        """`data.url` -> the file's bytes, fetched through the SSRF guard (None when there is no URL)."""
        url = request.data.get("url")
        if url is None:
            return None
        if not isinstance(url, str) or "file_data" in request.data or "object" in request.data:
            raise PermanentError(
                "data.url must be a string, and alone (not with file_data or object)",
                code=ErrorCode.INVALID_REQUEST,
            )
        config = self.config
        return await fetch_url_bytes(
            url,
            allowed_hosts=config.url_allowed_hosts,
            allow_private=config.url_allow_private,
            max_bytes=config.max_bytes,
            timeout=time_left(min(config.url_timeout, request.timeout or config.url_timeout)),
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
