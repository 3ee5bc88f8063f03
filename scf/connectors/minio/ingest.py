"""`ingest`: read an object inside the worker and parse it there, so large files travel by reference.

The caller names a key; the connector reads the object the way CSV and PDF read a `data.object` (the
`ObjectReader` protocol of `sources.py`, here on itself) and calls the same pure parsers
(`scf.connectors.parsing`); only the parsed page comes back. Paging works as in the CSV connector: send
the same request with `page_token`; the token is bound to the object's content, so a page of a changed
object is refused. No other connector is imported or built.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from scf.connectors.operation_table import Call, NoData
from scf.connectors.parsing.csv import CsvPageOptions, load_source, run_ingest
from scf.connectors.parsing.csv_text import CsvLimits
from scf.connectors.parsing.pdf.requests import PdfPages, PdfReadOptions, build_job
from scf.connectors.parsing.pdf.run import Parsers, parse_pdf
from scf.connectors.sources import ObjectReader
from scf.schemas.configs.csv import CsvConfig
from scf.schemas.configs.pdf import PdfConfig
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome

if TYPE_CHECKING:
    from scf.connectors.minio.connector import MinIOStorageConnector

Format = Literal["csv", "pdf"]

FORMATS_BY_EXTENSION: dict[str, Format] = {".csv": "csv", ".tsv": "csv", ".pdf": "pdf"}


class IngestParameters(CsvPageOptions, PdfReadOptions, PdfPages):
    """`key`, `format` (default from the key's extension), and the options of that format's parser:
    CSV reading options and `page_size` (paged with `page_token`), or the PDF `pages` and options."""

    key: str = Field(max_length=4096)
    format: Format | None = None

    def only_for(self, kind: Format) -> None:
        """Refuse an option of the other format (a PDF has no `delimiter`, a CSV no `pages`)."""
        own = set(
            CsvPageOptions.model_fields if kind == "csv" else {**PdfReadOptions.model_fields, "pages": 0}
        )
        misplaced = sorted(self.model_fields_set - own - {"key", "format"})
        if misplaced:
            raise PermanentError(
                f"parameters {', '.join(misplaced)} do not apply to a {kind} object",
                code=ErrorCode.INVALID_REQUEST,
            )


def object_format(key: str, declared: Format | None) -> Format:
    """The parser for an object: the declared format, else the key's extension."""
    if declared is not None:
        return declared
    extension = key[key.rfind(".") :].lower() if "." in key.rsplit("/", 1)[-1] else ""
    found = FORMATS_BY_EXTENSION.get(extension)
    if found is None:
        raise PermanentError(
            "cannot tell the object's format from its key; give parameters.format ('csv' or 'pdf')",
            code=ErrorCode.INVALID_REQUEST,
        )
    return found


async def handle_ingest(
    connector: MinIOStorageConnector, call: Call[NoData, IngestParameters]
) -> OperationOutcome:
    """The row `ingest`: read the object (`ObjectReader`), parse it with the pure CSV or PDF parser."""
    params = call.parameters
    kind = object_format(params.key, params.format)
    params.only_for(kind)
    max_bytes = connector.config.max_ingest_bytes
    reader: ObjectReader = connector
    if kind == "pdf":
        return await _ingest_pdf(connector, reader, call, max_bytes)
    content = await reader.read_object_bytes(params.key, max_bytes)
    config = CsvConfig(max_bytes=max_bytes)
    outcome = await asyncio.to_thread(_parse_csv, content, params, config, call.page_token)
    return _with_source(outcome, connector, params.key, content)


def _parse_csv(
    content: bytes, params: CsvPageOptions, config: CsvConfig, token: str | None
) -> OperationOutcome:
    source = load_source(content, params, config, lenient=False)
    return run_ingest(source, params, CsvLimits.from_config(config), token)


async def _ingest_pdf(
    connector: MinIOStorageConnector,
    reader: ObjectReader,
    call: Call[NoData, IngestParameters],
    max_bytes: int,
) -> OperationOutcome:
    if call.page_token is not None:
        raise PermanentError(
            "a PDF object is not paged with page_token; choose pages with parameters.pages",
            code=ErrorCode.INVALID_REQUEST,
        )
    params = call.parameters
    config = PdfConfig(max_bytes=max_bytes)
    job = build_job("ingest", params, config)  # checks the page selection before reading the object
    content = await reader.read_object_bytes(params.key, max_bytes)
    timeout = connector.time_left(call.request.timeout)
    outcome = await parse_pdf(job, content, config, _parsers(connector, config), timeout)
    return _with_source(outcome, connector, params.key, content)


_PARSERS: weakref.WeakKeyDictionary[Any, Parsers] = weakref.WeakKeyDictionary()


def _parsers(connector: MinIOStorageConnector, config: PdfConfig) -> Parsers:
    """Each MinIO connector's own bound on PDF parser processes (the PDF connector's default)."""
    parsers = _PARSERS.get(connector)
    if parsers is None:
        parsers = _PARSERS[connector] = Parsers.of(f"{connector.service_name}-pdf", config)
    return parsers


def _with_source(
    outcome: OperationOutcome, connector: MinIOStorageConnector, key: str, content: bytes
) -> OperationOutcome:
    source = {"bucket": connector.config.bucket_name, "key": key, "size": len(content)}
    return outcome.model_copy(update={"result_data": {**outcome.result_data, "source": source}})


__all__ = ["Format", "IngestParameters", "handle_ingest", "object_format"]
