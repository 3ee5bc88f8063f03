"""The CSV connector (`csv`): ingest, validate and preview CSV sent inline, by object or by URL.

There is no service behind it, so open/close do no I/O. Each operation fetches the file if it is a
reference (`sources.fetch_file`: an object through the bound reader, a URL through the SSRF guard),
then calls the pure functions of `scf.connectors.parsing.csv` (in a thread when large), or streams the
file into a sink (`sink.py`).
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import Callable
from typing import ClassVar

from scf.connectors.base import ErrorRule, P, ServiceConnector
from scf.connectors.csv_ingest.operations import OPERATIONS
from scf.connectors.csv_ingest.sink import Chunks, StreamOptions, inline_chunks, stream_to_sink
from scf.connectors.parsing.csv import CsvIngestParameters, inline_payload
from scf.connectors.parsing.csv_text import CsvLimits, encode_text
from scf.connectors.sources import DEADLINE, FileData, SinkTarget, UrlSource, fetch_file
from scf.schemas.configs.csv import CsvConfig
from scf.schemas.connection import ServiceType
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome, OperationRequest, TestVerdict

#: Inputs up to this size are parsed on the event loop (well under a millisecond of work).
INLINE_PARSE_BYTES = 16 * 1024
#: How long a sink ingest may run when neither the fleet nor the request set a deadline.
SINK_DEFAULT_SECONDS = 3600.0


class CSVIngestionConnector(ServiceConnector):
    """Reads CSV from the request itself (the spec's `CSVIngestionConnector`); operations in
    `operations.py` and docs/csv.md.

    Raises `permanent` errors only: INVALID_REQUEST (bad parameters or page token), INVALID_DATA
    (missing file_data, bad base64, undecodable or malformed CSV, ragged rows in ingest/preview) and
    LIMIT_EXCEEDED (max_bytes, max_rows, max_columns, max_field_size of `custom_config`; in every
    operation, validate included).
    """

    service_type = ServiceType.CSV
    operation_table = OPERATIONS
    error_rules: ClassVar[tuple[ErrorRule, ...]] = (
        # Backstops: the helpers already raise typed errors, but a stray driver error is still bad data.
        ErrorRule(csv.Error, P, ErrorCode.INVALID_DATA, "malformed CSV"),
        ErrorRule(UnicodeError, P, ErrorCode.INVALID_DATA, "file_data cannot be decoded"),
    )

    @property
    def config(self) -> CsvConfig:
        return self.config_of(CsvConfig)

    @property
    def limits(self) -> CsvLimits:
        return CsvLimits.from_config(self.config)

    async def _open(self) -> None:
        """Nothing to connect to."""

    async def _close(self) -> None:
        """Nothing to release."""

    async def _check(self) -> dict[str, TestVerdict]:
        return {"connection_test": "passed", "authentication_test": "passed", "permissions_test": "passed"}

    async def payload(self, data: FileData, base64: bool, request: OperationRequest) -> bytes | str:
        """The file's bytes (object, URL, base64) or its inline text."""
        config = self.config
        data.source()  # one source only
        url = UrlSource(
            config.url_allowed_hosts,
            config.url_allow_private,
            min(config.url_timeout, request.timeout or config.url_timeout),
        )
        fetched = await fetch_file(data, self.bindings, url, config.max_bytes)
        if fetched is not None:
            return fetched
        if data.file_data is None:
            raise PermanentError(
                "data.file_data is required: CSV text, or base64 with data_format 'base64'",
                code=ErrorCode.INVALID_DATA,
            )
        return inline_payload(data.file_data, base64 or request.data_format == "base64", config.max_bytes)

    @staticmethod
    async def off_loop(payload: bytes | str, work: Callable[[], OperationOutcome]) -> OperationOutcome:
        """Run parsing on the event loop when small, else in a thread (decoding up to max_bytes is CPU)."""
        if isinstance(payload, str) and len(payload) <= INLINE_PARSE_BYTES:
            return work()
        return await asyncio.to_thread(work)

    async def ingest_to_sink(
        self, data: FileData, params: CsvIngestParameters, target: SinkTarget, request: OperationRequest
    ) -> OperationOutcome:
        """Stream the whole file into the sink connector in batches (see `sink`)."""
        if request.page_token is not None:
            raise PermanentError(
                "a sink ingest is not paged: drop page_token", code=ErrorCode.INVALID_REQUEST
            )
        config = self.config
        sink = self.bindings.require_sink()
        chunks = await self._chunks(data, params, request)
        options = StreamOptions(
            delimiter=params.delimiter or config.delimiter,
            quotechar=params.quotechar,
            has_headers=config.has_headers if params.has_headers is None else params.has_headers,
            encoding=params.encoding or config.encoding,
        )
        deadline = DEADLINE.get() or time.time() + (request.timeout or SINK_DEFAULT_SECONDS)
        key = request.operation_id or "op"
        report = await stream_to_sink(chunks, options, self.limits, target, sink, key, deadline)
        return OperationOutcome(
            records_processed=report.rows,
            records_affected=report.affected,
            result_data=report.result_data(target),
        )

    async def _chunks(self, data: FileData, params: CsvIngestParameters, request: OperationRequest) -> Chunks:
        """An object is streamed chunk by chunk; anything else is loaded whole first."""
        if data.source() == "object" and data.object is not None:
            reader = await self.bindings.object_reader(data.object)
            return reader.stream_object(data.object.key, self.config.max_bytes)
        payload = await self.payload(data, params.base64, request)
        if isinstance(payload, str):
            payload = encode_text(payload, self.config.max_bytes)
        return inline_chunks(payload)
