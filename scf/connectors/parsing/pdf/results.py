"""Pure shaping of a parser run into the PDF connector's replies: ingest, preview and validate.

The child streams a `document` record, then one record per page and a closing one; these functions
pick the fields callers see. `validate_outcome` also turns a failed run into a report, because
validate describes a bad file instead of refusing it.
"""

from __future__ import annotations

from typing import Any

from scf.connectors.parsing.pdf.sandbox import ParserRun
from scf.schemas.errors import ConnectorError
from scf.schemas.operation import OperationOutcome

PAGE_FIELDS = ("page", "text", "tables", "ocr", "text_truncated", "ocr_error")


def _page(record: dict[str, Any]) -> dict[str, Any]:
    return {name: record[name] for name in PAGE_FIELDS if name in record}


def pages_outcome(run: ParserRun) -> OperationOutcome:
    """Ingest and preview: `{"metadata", "page_count", "pages", "truncated"}`, one record per page read."""
    document = run.first("document") or {}
    counted = run.first("page_count") or {}
    done = run.first("done") or {}
    pages = [_page(record) for record in run.all("page")]
    return OperationOutcome(
        records_processed=len(pages),
        result_data={
            "metadata": document.get("metadata") or {},
            "page_count": counted.get("page_count", 0),
            "pages": pages,
            "truncated": bool(done.get("truncated")),
        },
    )


def not_a_pdf_report() -> OperationOutcome:
    return OperationOutcome(
        result_data=_report(
            is_pdf=False,
            version=None,
            errors=[
                {"code": "INVALID_DATA", "message": "not a PDF: no %PDF- header in the first 1024 bytes"}
            ],
        )
    )


def validate_outcome(run: ParserRun, error: ConnectorError | None, version: str | None) -> OperationOutcome:
    """A report for any run: what the parser learnt before it stopped, and why it stopped."""
    document = run.first("document")
    counted = run.first("page_count") or {}
    checked = run.first("validate")
    errors = [] if error is None else [{"code": error.code, "message": error.message}]
    password = error is not None and error.code == "PERMISSION_DENIED"
    report = _report(
        # A PDF is one whose document opened, or which only a password keeps closed.
        is_pdf=document is not None or password,
        version=version,
        errors=errors,
    )
    if document is not None:
        report.update(
            encrypted=bool(document.get("encrypted")),
            page_count=counted.get("page_count"),
            metadata=document.get("metadata") or {},
        )
    elif password:
        report["encrypted"] = True
    if checked is not None:
        report.update(
            has_text_layer=bool(checked.get("has_text_layer")),
            pages_without_text=checked.get("pages_without_text") or [],
            pages_checked=checked.get("pages_checked", 0),
        )
    return OperationOutcome(records_processed=report["pages_checked"], result_data=report)


def _report(*, is_pdf: bool, version: str | None, errors: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "valid": is_pdf and not errors,
        "is_pdf": is_pdf,
        "encrypted": None,
        "page_count": None,
        "has_text_layer": None,
        "pages_without_text": [],
        "pages_checked": 0,
        "pdf_version": version,
        "metadata": {},
        "errors": errors,
    }
