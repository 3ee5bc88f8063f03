"""`PDFIngestionConnector`: ingest, preview and validate PDFs, parsed in sandboxed child processes.

Each operation builds the parser's job (checking the page selection before any I/O), loads the bytes
(`parsing.pdf.source`: inline base64, or an object or URL through `sources.read_reference`) and calls
the pure `parsing.pdf.run.parse_pdf` under this connector's bound on parser processes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import structlog

from scf.connectors.base import ServiceConnector
from scf.connectors.operation_table import READ, Call, Operation, table
from scf.connectors.parsing.pdf.errors import run_error
from scf.connectors.parsing.pdf.requests import (
    PdfIngestParameters,
    PdfOptions,
    PdfPreviewParameters,
    PdfValidateParameters,
    build_job,
)
from scf.connectors.parsing.pdf.run import Parsers, parse_pdf
from scf.connectors.parsing.pdf.sandbox import SandboxLimits
from scf.connectors.parsing.pdf.source import load_pdf_bytes
from scf.connectors.sources import FileData, UrlSource, read_reference
from scf.schemas.configs.pdf import PdfConfig
from scf.schemas.connection import ServiceConnection, ServiceType
from scf.schemas.errors import ConfigurationError, ErrorCode
from scf.schemas.operation import OperationOutcome, TestVerdict

if TYPE_CHECKING:
    from scf.connectors.operation_table import Traits

log = structlog.get_logger(__name__)

PROBE_TIMEOUT_SECONDS = 20.0


async def _parse(connector: PDFIngestionConnector, call: Call[FileData, PdfOptions]) -> OperationOutcome:
    """Every PDF operation: the job (checked before I/O), the bytes, then the pure parser."""
    config, request = connector.config, call.request
    job = build_job(request.operation, call.parameters, config)
    data = await load_pdf_bytes(call.data, request.data_format, config, connector.fetch)
    return await parse_pdf(job, data, config, connector.parsers, connector.time_left(request.timeout))


def _row(
    name: str, parameters: type[PdfOptions], summary: str, traits: Traits = READ
) -> Operation[PDFIngestionConnector]:
    return Operation(name, _parse, FileData, parameters, traits, summary)


class PDFIngestionConnector(ServiceConnector):
    """Reads PDFs with pdfplumber, OCRs pages without a text layer with tesseract (the spec's
    `PDFIngestionConnector`). Operations and replies: docs/pdf.md.

    Raises `permanent` errors: INVALID_REQUEST (bad parameters, page out of range, missing source),
    INVALID_DATA (bad base64, not a readable PDF, cyclic page tree, circular XObjects, parser crash),
    PERMISSION_DENIED (encrypted: `parameters.password` missing or wrong), LIMIT_EXCEEDED (max_bytes,
    max_pages, memory, CPU time, parse_timeout, max_text_bytes). `resource` when no parser process
    can start; `configuration` from the connection test when the parser cannot run on this worker.
    """

    service_type: ClassVar[ServiceType] = ServiceType.PDF
    operation_table = table(
        _row("ingest", PdfIngestParameters, "text, tables and OCR of the chosen pages (parameters.pages)"),
        _row("preview", PdfPreviewParameters, "the first pages, text cut short, tables to their first rows"),
        _row("validate", PdfValidateParameters, "a report on the file: PDF or not, encrypted, text layer"),
    )

    def __init__(self, connection: ServiceConnection) -> None:
        super().__init__(connection)
        self.config: PdfConfig = self.config_of(PdfConfig)
        self.parsers = Parsers.of(self.service_name, self.config)

    async def fetch(self, data: FileData, max_bytes: int) -> bytes:
        """`data.object` through the bound object reader, `data.url` through the SSRF guard."""
        config = self.config
        url = UrlSource(config.url_allowed_hosts, config.url_allow_private, config.url_timeout)
        return await read_reference(data, self.bindings, url, max_bytes)

    # --- life cycle ---------------------------------------------------------------------------------

    async def _open(self) -> None:
        """Nothing to connect to: each operation starts its own parser process."""

    async def _close(self) -> None:
        """Nothing to release: a running parser is killed by its own operation's cancellation."""

    async def _check(self) -> dict[str, TestVerdict]:
        """Start a parser process on this worker and ask it what it can do."""
        limits = SandboxLimits.from_config(self.config, self.time_left(PROBE_TIMEOUT_SECONDS))
        run = await self.parsers.run({"mode": "probe"}, b"", limits)
        probe = run.first("probe")
        if probe is None:
            error = run_error(run, limits)
            raise ConfigurationError(
                "the PDF parser cannot run on this worker",
                code=ErrorCode.INVALID_CONFIG,
                detail=error.detail if error is not None else run.stderr_tail[-1500:],
            )
        if not probe.get("tesseract") and self.config.ocr != "never":
            log.warning("pdf_ocr_unavailable", service_name=self.service_name, reason="tesseract not found")
        return {"connection_test": "passed", "authentication_test": "passed", "permissions_test": "passed"}
