"""The parser child's own helpers, run in-process on small safe inputs (no limits, no subprocess):
page-tree checks, page selection, the output budget, metadata, failure kinds, render sizes.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from pdfminer.pdfdocument import PDFDocument, PDFPasswordIncorrect
from pdfminer.pdfparser import PDFParser
from pdfminer.psexceptions import PSEOF
from pdfplumber.utils.exceptions import PdfminerException

from scf.connectors.parsing.pdf import extract
from scf.connectors.parsing.pdf.extract import (
    CircularWatcher,
    Failure,
    Job,
    as_failure,
    count_pages,
    render_dpi,
    select_pages,
)
from scf.connectors.parsing.pdf.extract_output import Output, plain
from tests.support import pdfs


def document(data: bytes) -> PDFDocument:
    return PDFDocument(PDFParser(io.BytesIO(data)))


def lines(stream: io.BytesIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


# --- page tree --------------------------------------------------------------------------------------


def test_pages_are_counted_from_the_page_tree() -> None:
    assert count_pages(document(pdfs.text_pdf(pages=4))) == 4


def test_a_cyclic_page_tree_is_refused() -> None:
    with pytest.raises(Failure) as caught:
        count_pages(document(pdfs.cyclic_page_tree_pdf()))

    assert caught.value.kind == extract.BAD_PAGE_TREE
    assert "cyclic" in caught.value.message


def test_a_page_tree_that_lists_one_subtree_twice_is_refused() -> None:
    # Shared subtrees multiply: a few objects could otherwise describe 2**n pages.
    shared = pdfs.raw_pdf(
        [
            pdfs.CATALOG,
            b"<< /Type /Pages /Kids [4 0 R 4 0 R] /Count 2 >>",
            pdfs.page(),
            b"<< /Type /Pages /Kids [3 0 R] /Parent 2 0 R /Count 1 >>",
        ]
    )

    with pytest.raises(Failure) as caught:
        count_pages(document(shared))

    assert caught.value.kind == extract.BAD_PAGE_TREE


def test_a_pdf_without_a_page_tree_falls_back_to_its_page_objects() -> None:
    loose = pdfs.raw_pdf([b"<< /Type /Catalog >>", b"<< /Type /Page /MediaBox [0 0 10 10] >>"])

    assert count_pages(document(loose)) == 1


# --- page selection ---------------------------------------------------------------------------------


def test_without_a_selection_every_page_up_to_max_pages_is_read() -> None:
    assert select_pages(Job(mode="ingest", max_pages=5), 5) == (1, 2, 3, 4, 5)

    with pytest.raises(Failure) as caught:
        select_pages(Job(mode="ingest", max_pages=5), 6)
    assert caught.value.kind == extract.TOO_MANY_PAGES
    assert "parameters.pages" in caught.value.message


def test_a_selection_past_the_last_page_is_refused() -> None:
    assert select_pages(Job(mode="ingest", pages=(1, 3)), 3) == (1, 3)

    with pytest.raises(Failure) as caught:
        select_pages(Job(mode="ingest", pages=(2, 9)), 3)
    assert caught.value.kind == extract.PAGE_OUT_OF_RANGE
    assert "page 9, but the PDF has 3 pages" in caught.value.message


def test_a_preview_reads_the_first_pages_that_exist() -> None:
    assert select_pages(Job(mode="preview", first_pages=2), 5) == (1, 2)
    assert select_pages(Job(mode="preview", first_pages=2), 1) == (1,)
    assert select_pages(Job(mode="preview", first_pages=2, max_pages=1), 9) == (1, 2)


# --- output -----------------------------------------------------------------------------------------


def page_record(text: str, tables: list[Any] | None = None) -> dict[str, Any]:
    return {
        "type": "page",
        "page": 1,
        "text": text,
        "tables": tables or [],
        "ocr": False,
        "text_truncated": False,
    }


def test_pages_within_the_budget_are_written_whole() -> None:
    stream = io.BytesIO()
    out = Output(stream, budget=10_000)

    assert out.emit_page(page_record("hello", [[["a", None]]]))
    assert lines(stream) == [page_record("hello", [[["a", None]]])]
    assert not out.full


def test_the_page_that_crosses_the_budget_is_cut_and_ends_the_output() -> None:
    stream = io.BytesIO()
    out = Output(stream, budget=1_000)
    text = "line of text\n" * 500

    assert not out.emit_page(page_record(text, [[["big table"]]]))

    (written,) = lines(stream)
    assert out.full and out.used <= 1_000
    assert written["text_truncated"] and written["tables"] == []
    assert 0 < len(written["text"]) < len(text) and text.startswith(written["text"])


def test_a_budget_too_small_for_any_text_writes_nothing_more() -> None:
    stream = io.BytesIO()
    out = Output(stream, budget=20)

    assert not out.emit_page(page_record("x" * 100))
    assert stream.getvalue() == b"" and out.full


def test_lone_surrogates_from_broken_fonts_do_not_break_the_output() -> None:
    stream = io.BytesIO()
    Output(stream, 1_000).emit_page(page_record("ok \ud800 ok"))

    assert "ok" in lines(stream)[0]["text"]


def test_metadata_becomes_small_plain_json() -> None:
    from pdfminer.psparser import LIT

    value = plain(
        {
            "Title": b"Report \xff",
            "Trapped": LIT("False"),
            "Pages": float("nan"),
            "Keywords": ["a"] * 100,
            "Nested": {"a": {"b": {"c": {"d": 1}}}},
            "Long": "x" * 5_000,
        }
    )

    json.dumps(value, allow_nan=False)
    assert value["Title"] == "Report \ufffd"
    assert value["Trapped"] == "/'False'"
    assert value["Pages"] is None
    assert len(value["Keywords"]) == extract.MAX_METADATA_ITEMS
    assert isinstance(value["Nested"]["a"], dict) and isinstance(value["Nested"]["a"]["b"], str)
    assert len(value["Long"]) == extract.MAX_METADATA_CHARS


# --- failures ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "password_given", "kind"),
    [
        (MemoryError(), False, extract.MEMORY),
        (PdfminerException(MemoryError("Unable to allocate output buffer.")), False, extract.MEMORY),
        (RecursionError(), False, extract.TOO_DEEP),
        (PdfminerException(PDFPasswordIncorrect()), False, extract.PASSWORD_REQUIRED),
        (PdfminerException(PDFPasswordIncorrect()), True, extract.PASSWORD_INCORRECT),
        (PdfminerException(PSEOF("Unexpected EOF")), False, extract.MALFORMED),
        (KeyError("Root"), False, extract.MALFORMED),
        (Failure(extract.BAD_PAGE_TREE, "cyclic"), False, extract.BAD_PAGE_TREE),
    ],
)
def test_exceptions_are_classified_into_failure_kinds(
    exc: BaseException, password_given: bool, kind: str
) -> None:
    assert as_failure(exc, password_given).kind == kind


def test_an_unreadable_job_is_a_bad_job() -> None:
    for line in (b"not json", b"[1, 2]", b'{"mode": "ingest", "surprise": 1}'):
        with pytest.raises(Failure) as caught:
            Job.parse(line)
        assert caught.value.kind == extract.BAD_JOB


def test_the_circular_watcher_reacts_only_to_pdfminers_circular_warning() -> None:
    watcher = CircularWatcher()
    other = logging.LogRecord("pdfminer", logging.WARNING, "", 0, "Undefined xobject id %r", ("X",), None)
    circular = logging.LogRecord(
        "pdfminer.pdfinterp",
        logging.WARNING,
        "",
        0,
        extract.CIRCULAR_WARNING + " to content stream %d",
        (5,),
        None,
    )

    watcher.emit(other)
    watcher.check(1)
    watcher.emit(circular)
    with pytest.raises(Failure) as caught:
        watcher.check(2)
    assert caught.value.kind == extract.CIRCULAR_XOBJECT
    assert "page 2" in caught.value.message


@pytest.mark.parametrize(
    ("size", "wanted", "dpi"),
    [
        ((612, 792), 200, 200),  # US letter: 1700 x 2200 pixels
        ((14_400, 14_400), 200, 25),  # the largest page PDF allows: rendered small, not at 8 GB
        ((1, 1), 600, 600),
    ],
)
def test_pages_are_rendered_below_the_pixel_cap(size: tuple[int, int], wanted: int, dpi: int) -> None:
    chosen = render_dpi(size[0], size[1], wanted)

    assert chosen == dpi
    assert (size[0] / 72 * chosen) * (size[1] / 72 * chosen) <= extract.MAX_OCR_PIXELS


def test_the_page_filter_is_a_list_that_answers_membership_from_a_set() -> None:
    pages = extract.PageSet(range(1, 100_001))

    assert isinstance(pages, list) and len(pages) == 100_000
    assert 100_000 in pages and 0 not in pages and 100_001 not in pages


def test_a_job_selecting_every_page_of_a_large_pdf_fits_the_job_line() -> None:
    line = json.dumps({"mode": "ingest", "pages": list(range(1, 100_001))}).encode()

    assert len(line) < extract.MAX_JOB_BYTES
    assert Job.parse(line).pages == tuple(range(1, 100_001))
