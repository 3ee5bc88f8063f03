"""The PDF operations as one pure function: bytes, options and limits in, an outcome out.

No connector here: the PDF connector and MinIO's `ingest` fetch the bytes and call `parse_pdf` with
their own bound on parser processes (`Parsers`). The parsing itself runs in a sandboxed child.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import structlog

from scf.connectors.parsing.pdf import sandbox
from scf.connectors.parsing.pdf.errors import missing_result, run_error
from scf.connectors.parsing.pdf.results import not_a_pdf_report, pages_outcome, validate_outcome
from scf.connectors.parsing.pdf.sandbox import ParserRun, SandboxLimits
from scf.connectors.parsing.pdf.source import pdf_version
from scf.schemas.configs.pdf import PdfConfig
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.operation import OperationOutcome

log = structlog.get_logger(__name__)


@dataclass
class Parsers:
    """A bound on the parser processes one owner (a connector) runs at once, and its name for logs."""

    owner: str
    bound: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))

    @classmethod
    def of(cls, owner: str, config: PdfConfig) -> Parsers:
        return cls(owner, asyncio.Semaphore(config.max_parsers))

    async def run(self, job: dict[str, Any], data: bytes, limits: SandboxLimits) -> ParserRun:
        async with self.bound:
            run = await sandbox.run_parser(job, data, limits)
        failure = run.first("failure") or {}
        log.info(
            "pdf_parsed",
            service_name=self.owner,
            mode=job["mode"],
            bytes=len(data),
            seconds=run.seconds,
            exit=run.returncode,
            timed_out=run.timed_out,
            failure=failure.get("kind"),
            pages=len(run.all("page")),
        )
        return run


async def parse_pdf(
    job: dict[str, Any], data: bytes, config: PdfConfig, parsers: Parsers, timeout: float | None
) -> OperationOutcome:
    """`job` from `requests.build_job` (built before fetching: it checks the page selection).

    Ingest or preview (`{"metadata", "page_count", "pages", "truncated"}`) or validate (a report)."""
    version = pdf_version(data)
    limits = SandboxLimits.from_config(config, timeout)
    if job["mode"] == "validate":
        if version is None:
            return not_a_pdf_report()
        run = await parsers.run(job, data, limits)
        return validate_outcome(run, run_error(run, limits), version)
    if version is None:
        raise PermanentError(
            "file_data is not a PDF (no %PDF- header in its first 1024 bytes)", code=ErrorCode.INVALID_DATA
        )
    run = await parsers.run(job, data, limits)
    error = run_error(run, limits)
    if error is not None:
        raise error
    if run.first("done") is None:
        raise missing_result(run)
    return pages_outcome(run)
