"""`PDFIngestionConnector`: ingest, preview and validate PDFs, parsed in sandboxed child processes.

This module loads the bytes (`source.py`), builds the parser's job (`requests.py`), runs it under a
per-connector bound on parser processes (`sandbox.py`), and shapes the reply (`results.py`) or
raises what `errors.py` makes of a failed run. Nothing here parses PDF itself.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import structlog

from scf.connectors.base import ServiceConnector
from scf.connectors.parsing.pdf.errors import missing_result, run_error
from scf.connectors.parsing.pdf.requests import build_job, parse_parameters
from scf.connectors.parsing.pdf.results import not_a_pdf_report, pages_outcome, validate_outcome
from scf.connectors.parsing.pdf.sandbox import ParserRun, SandboxLimits, run_parser
from scf.connectors.pdf.source import FetchSource, load_pdf_bytes, pdf_version
from scf.connectors.sources import ObjectRef, time_left
from scf.connectors.url_source import fetch_url_bytes
from scf.schemas.configs.pdf import PdfConfig
from scf.schemas.connection import ServiceConnection, ServiceType
from scf.schemas.errors import ConfigurationError, ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome, OperationRequest, TestVerdict

log = structlog.get_logger(__name__)

PROBE_TIMEOUT_SECONDS = 20.0


class PDFIngestionConnector(ServiceConnector):
    """Reads PDFs with pdfplumber, OCRs pages without a text layer with tesseract (the spec's
    `PDFIngestionConnector`).

    Operations (the PDF comes as base64 `data.file_data`, as `data.object` = `{service_name, key}` of
    an object-store connector, or as `data.url` fetched through the SSRF guard):

    * `ingest` -> `{"metadata", "page_count", "pages": [{"page", "text", "tables", "ocr",
      "text_truncated"[, "ocr_error"]}], "truncated"}` for `parameters.pages` ([1, 3] or "1-3,5"; default
      all, at most `max_pages`), with `extract_tables` (default true), `ocr` (auto|always|never) and
      `ocr_language`. `truncated` says the `max_text_bytes` cap cut the reply short.
    * `preview` -> the same for the first `parameters.pages_count` pages (default `preview_pages`),
      text cut to `parameters.chars` (default `preview_chars`), tables to their first rows.
    * `validate` -> `{"valid", "is_pdf", "encrypted", "page_count", "has_text_layer",
      "pages_without_text", "pages_checked", "pdf_version", "metadata", "errors"}`; a bad file is
      reported, not raised.

    Raises `permanent` errors: INVALID_REQUEST (bad parameters, page out of range, missing source),
    INVALID_DATA (bad base64, not a readable PDF, cyclic page tree, circular XObjects, parser crash),
    PERMISSION_DENIED (encrypted: `parameters.password` missing or wrong), LIMIT_EXCEEDED (max_bytes,
    max_pages, memory, CPU time, parse_timeout, max_text_bytes). `resource` when no parser process
    can start; `configuration` from the connection test when the parser cannot run on this worker.
    """

    service_type: ClassVar[ServiceType] = ServiceType.PDF
    operations: ClassVar[frozenset[str]] = frozenset({"ingest", "preview", "validate"})

    def __init__(self, connection: ServiceConnection) -> None:
        super().__init__(connection)
        config = self.type_config
        if not isinstance(config, PdfConfig):  # pragma: no cover - the registry guarantees it
            raise ConfigurationError("pdf connector without a PdfConfig")
        self.config: PdfConfig = config
        #: Resolves `data.object` (through the bound lookup) and `data.url` (through the SSRF guard).
        self.fetch_source: FetchSource | None = self._fetch_source
        self._parsers = asyncio.Semaphore(config.max_parsers)

    async def _fetch_source(self, reference: dict[str, Any]) -> bytes:
        if reference["kind"] == "object":
            ref = ObjectRef(service_name=reference["service_name"], key=reference["key"])
            reader = await self.bindings.object_reader(ref)
            return await reader.read_object_bytes(ref.key, reference["max_bytes"])
        config = self.config
        return await fetch_url_bytes(
            reference["url"],
            allowed_hosts=config.url_allowed_hosts,
            allow_private=config.url_allow_private,
            max_bytes=reference["max_bytes"],
            timeout=time_left(config.url_timeout),
        )

    # --- life cycle ---------------------------------------------------------------------------------

    async def _open(self) -> None:
        """Nothing to connect to: each operation starts its own parser process."""

    async def _close(self) -> None:
        """Nothing to release: a running parser is killed by its own operation's cancellation."""

    async def _check(self) -> dict[str, TestVerdict]:
        """Start a parser process on this worker and ask it what it can do."""
        limits = SandboxLimits.from_config(self.config, time_left(PROBE_TIMEOUT_SECONDS))
        run = await self._parse({"mode": "probe"}, b"", limits)
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

    # --- operations ---------------------------------------------------------------------------------

    async def _execute(self, request: OperationRequest) -> OperationOutcome:
        if request.page_token is not None:
            raise PermanentError(
                "the pdf connector does not page with page_token; choose pages with parameters.pages",
                code=ErrorCode.INVALID_REQUEST,
            )
        params = parse_parameters(request.operation, request.parameters)
        job = build_job(request.operation, params, self.config)  # checks the page selection before I/O
        data = await load_pdf_bytes(request, self.config, self.fetch_source)
        version = pdf_version(data)
        limits = SandboxLimits.from_config(self.config, time_left(request.timeout))
        if request.operation == "validate":
            if version is None:
                return not_a_pdf_report()
            run = await self._parse(job, data, limits)
            return validate_outcome(run, run_error(run, limits), version)
        if version is None:
            raise PermanentError(
                "file_data is not a PDF (no %PDF- header in its first 1024 bytes)",
                code=ErrorCode.INVALID_DATA,
            )
        run = await self._parse(job, data, limits)
        error = run_error(run, limits)
        if error is not None:
            raise error
        if run.first("done") is None:
            raise missing_result(run)
        return pages_outcome(run)

    async def _parse(self, job: dict[str, Any], data: bytes, limits: SandboxLimits) -> ParserRun:
        async with self._parsers:
            run = await run_parser(job, data, limits)
        failure = run.first("failure") or {}
        log.info(
            "pdf_parsed",
            service_name=self.service_name,
            mode=job["mode"],
            bytes=len(data),
            seconds=run.seconds,
            exit=run.returncode,
            timed_out=run.timed_out,
            failure=failure.get("kind"),
            pages=len(run.all("page")),
        )
        return run
