"""Shaping parser runs into replies: ingest/preview pages, and validate reports for good and bad files.

The runs are hand-made records, as the child would stream them.
"""

from __future__ import annotations

from typing import Any

from scf.connectors.parsing.pdf.results import not_a_pdf_report, pages_outcome, validate_outcome
from scf.connectors.parsing.pdf.sandbox import ParserRun, parse_records
from scf.schemas.errors import ErrorCode, PermanentError

DOCUMENT = {"type": "document", "encrypted": False, "metadata": {"Title": "T"}}
COUNT = {"type": "page_count", "page_count": 3}


def run(*records: dict[str, Any], returncode: int = 0) -> ParserRun:
    return ParserRun(records=records, returncode=returncode, seconds=0.2)


def page(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "page",
        "page": n,
        "text": f"p{n}",
        "tables": [],
        "ocr": False,
        "text_truncated": False,
        **extra,
    }


def test_ingest_returns_the_pages_read_and_counts_them() -> None:
    outcome = pages_outcome(
        run(DOCUMENT, COUNT, page(1), page(3, ocr_error="no tesseract"), {"type": "done", "truncated": True})
    )

    assert outcome.records_processed == 2
    assert outcome.result_data == {
        "metadata": {"Title": "T"},
        "page_count": 3,
        "pages": [
            {"page": 1, "text": "p1", "tables": [], "ocr": False, "text_truncated": False},
            {
                "page": 3,
                "text": "p3",
                "tables": [],
                "ocr": False,
                "text_truncated": False,
                "ocr_error": "no tesseract",
            },
        ],
        "truncated": True,
    }


def test_a_good_file_validates_with_its_facts() -> None:
    checked = {"type": "validate", "pages_checked": 3, "has_text_layer": True, "pages_without_text": [2]}

    report = validate_outcome(run(DOCUMENT, COUNT, checked), None, "1.7").result_data

    assert report["valid"] and report["is_pdf"] and report["errors"] == []
    assert (report["page_count"], report["has_text_layer"], report["pages_without_text"]) == (3, True, [2])
    assert (report["encrypted"], report["pdf_version"], report["metadata"]) == (False, "1.7", {"Title": "T"})


def test_a_bomb_that_opened_is_a_pdf_reported_with_its_limit() -> None:
    error = PermanentError("too much memory", code=ErrorCode.LIMIT_EXCEEDED)

    report = validate_outcome(run(DOCUMENT, COUNT, returncode=3), error, "1.7").result_data

    assert report["is_pdf"] and not report["valid"]
    assert report["page_count"] == 3 and report["has_text_layer"] is None
    assert report["errors"] == [{"code": "LIMIT_EXCEEDED", "message": "too much memory"}]


def test_a_locked_file_is_an_encrypted_pdf_whose_pages_are_unknown() -> None:
    error = PermanentError("the PDF is encrypted: pass parameters.password", code=ErrorCode.PERMISSION_DENIED)

    report = validate_outcome(run(returncode=3), error, "1.6").result_data

    assert (report["is_pdf"], report["encrypted"], report["page_count"]) == (True, True, None)
    assert report["errors"][0]["code"] == "PERMISSION_DENIED"


def test_an_unreadable_file_is_not_a_pdf() -> None:
    error = PermanentError("the file is not a readable PDF", code=ErrorCode.INVALID_DATA)

    assert validate_outcome(run(returncode=3), error, "1.4").result_data["is_pdf"] is False
    assert not_a_pdf_report().result_data["is_pdf"] is False
    assert not_a_pdf_report().result_data["pdf_version"] is None


def test_output_cut_by_a_kill_keeps_only_whole_records() -> None:
    records = parse_records(b'{"type": "document"}\n{"type": "page", "te')

    assert records == ({"type": "document"},)
    assert parse_records(b"[1]\nnot json\n") == ()
