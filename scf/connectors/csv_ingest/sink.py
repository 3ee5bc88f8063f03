"""CSV `ingest` with a `sink`: stream a file of any size into an output connector in batches.

The file is read chunk by chunk (from an object store, a fetched URL or the request), decoded
incrementally and parsed by the csv module in a worker thread; each batch of records is written through
the bound `BatchSink` before the next is read, so memory stays bounded by one chunk plus one batch
whatever the file's size. Every batch carries an idempotency key `<operation_id>:<batch>`, so a sink
that honours keys writes a redelivered batch once. Values travel as text (blank -> null): the sink
connector coerces them to its own column types.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from scf.connectors.parsing.csv_rows import column_names
from scf.connectors.parsing.csv_text import (
    CsvDialect,
    CsvLimits,
    bom_codec,
    canonical_encoding,
    check_dialect,
    detect_codec,
    limit_exceeded,
    sniff_delimiter,
)
from scf.connectors.sources import BatchSink, SinkTarget, report_progress
from scf.schemas.errors import ErrorCode, PermanentError, TransientError

SNIFF_BYTES = 64 * 1024

Chunks = AbstractContextManager[Iterator[bytes]]


@dataclass(frozen=True)
class StreamOptions:
    delimiter: str | None
    quotechar: str
    has_headers: bool
    encoding: str | None


@dataclass
class SinkReport:
    rows: int = 0
    batches: int = 0
    affected: int = 0
    encoding: str = ""
    delimiter: str = ""
    columns: list[str] | None = None

    def result_data(self, target: SinkTarget) -> dict[str, Any]:
        return {
            "sink": {
                "service_name": target.service_name,
                "table_name": target.table_name,
                "index": target.index,
            },
            "rows": self.rows,
            "batches": self.batches,
            "records_written": self.affected,
            "columns": self.columns,
            "delimiter": self.delimiter,
            "encoding": self.encoding,
        }


def inline_chunks(raw: bytes) -> Chunks:
    return nullcontext(iter([raw]))


async def stream_to_sink(
    chunks: Chunks,
    options: StreamOptions,
    limits: CsvLimits,
    target: SinkTarget,
    sink: BatchSink,
    key_prefix: str,
    deadline: float,
) -> SinkReport:
    """Parse in a thread, write each batch on the event loop, stop promptly if the caller gives up."""
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    report = SinkReport()

    def write(batch: list[dict[str, Any]]) -> None:
        if stop.is_set():
            raise TransientError("the ingest was cancelled", code=ErrorCode.DEADLINE_EXCEEDED)
        key = f"{key_prefix}:{report.batches}"
        future = asyncio.run_coroutine_threadsafe(sink.write(target, batch, key, deadline), loop)
        report.affected += future.result()
        report.batches += 1
        report.rows += len(batch)
        report_progress(report.rows)

    def work() -> None:
        with chunks as source:
            for batch in batches(source, options, limits, target.batch_size, report):
                write(batch)

    try:
        await asyncio.to_thread(work)
    except BaseException:
        stop.set()
        raise
    return report


def batches(
    chunks: Iterable[bytes], options: StreamOptions, limits: CsvLimits, size: int, report: SinkReport
) -> Iterator[list[dict[str, Any]]]:
    """Records in batches of `size`; raises typed errors naming the line and the limit."""
    head, rest = _head(iter(chunks))
    if len(head) > limits.max_bytes:
        raise limit_exceeded("max_bytes", limits.max_bytes, f"the file (over {len(head)} bytes)")
    codec = _codec(head, options.encoding)
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    sample = decoder.decode(head, final=False)
    delimiter = options.delimiter or sniff_delimiter(sample[:SNIFF_BYTES])
    dialect = CsvDialect(delimiter, options.quotechar)
    check_dialect(dialect)
    report.encoding, report.delimiter = codec.replace("-sig", ""), delimiter
    lines = _lines(sample, rest, decoder, limits.max_bytes, len(head))
    reader = csv.reader(lines, delimiter=dialect.delimiter, quotechar=dialect.quotechar, strict=True)
    try:
        yield from _records(reader, options.has_headers, limits, size, report)
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):  # the csv module's own cap (131072)
            raise limit_exceeded(
                "max_field_size", csv.field_size_limit(), f"a field near line {reader.line_num}"
            ) from None
        raise PermanentError(
            f"malformed CSV near line {reader.line_num}: {exc}", code=ErrorCode.INVALID_DATA
        ) from None
    except UnicodeDecodeError:
        raise PermanentError(
            f"the file is not valid {report.encoding} near line {reader.line_num}",
            code=ErrorCode.INVALID_DATA,
        ) from None


def _records(
    reader: Any, has_headers: bool, limits: CsvLimits, size: int, report: SinkReport
) -> Iterator[list[dict[str, Any]]]:
    columns: list[str] | None = None
    batch: list[dict[str, Any]] = []
    for row in reader:
        if not row:
            continue  # a blank line is not a record
        _check_fields(row, limits, reader.line_num)
        if columns is None:
            columns = column_names(row if has_headers else None, len(row))
            report.columns = columns
            if has_headers:
                continue
        if len(row) != len(columns):
            raise PermanentError(
                f"line {reader.line_num} has {len(row)} fields, the header has {len(columns)}",
                code=ErrorCode.INVALID_DATA,
            )
        if report.rows + len(batch) >= limits.max_rows:
            raise limit_exceeded("max_rows", limits.max_rows, f"data row at line {reader.line_num}")
        batch.append(
            {name: (value if value != "" else None) for name, value in zip(columns, row, strict=True)}
        )
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _check_fields(row: list[str], limits: CsvLimits, line: int) -> None:
    if len(row) > limits.max_columns:
        raise limit_exceeded("max_columns", limits.max_columns, f"line {line} with {len(row)} columns")
    longest = max(len(field) for field in row)
    if longest > limits.max_field_size:
        raise limit_exceeded(
            "max_field_size", limits.max_field_size, f"a field of {longest} characters at line {line}"
        )


def _head(chunks: Iterator[bytes]) -> tuple[bytes, Iterator[bytes]]:
    """At least SNIFF_BYTES of the start (or the whole file), and the chunks after it."""
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if size >= SNIFF_BYTES:
            break
    return b"".join(parts), chunks


def _codec(head: bytes, encoding: str | None) -> str:
    if encoding is not None:
        codec = canonical_encoding(encoding)
        return "utf-8-sig" if codec == "utf-8" else codec
    marked = bom_codec(head)
    if marked is not None:
        return marked
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the sample's end
            return detect_codec(head)
    return "utf-8-sig"


def _lines(
    first: str, rest: Iterator[bytes], decoder: codecs.IncrementalDecoder, max_bytes: int, seen: int
) -> Iterator[str]:
    """Text lines with their endings, split as a file opened with newline="" would be (what csv wants).

    Text is cut after the last newline of what has arrived, so a CRLF pair is never split in two.
    """
    pending = first
    for chunk in rest:
        seen += len(chunk)
        if seen > max_bytes:
            raise limit_exceeded("max_bytes", max_bytes, f"the file (over {seen} bytes so far)")
        pending += decoder.decode(chunk)
        cut = pending.rfind("\n") + 1
        if cut:
            yield from io.StringIO(pending[:cut], newline="")
            pending = pending[cut:]
    pending += decoder.decode(b"", final=True)
    yield from io.StringIO(pending, newline="")
