"""The PDF parser's child process: it limits itself first, then reads one job and one PDF from stdin.

Run by path under `python -I` (see sandbox.py), so none of scf's imports load here and no fleet
environment reaches it; it imports only the standard library until its limits are set. Stdin holds
one JSON job line, then the PDF; stdout gets JSON lines: `document`, `page_count`, `page`..., then `done`
(or `validate`, `probe`) or one `failure` whose kind errors.py maps to a typed error.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import resource
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pdfminer.pdfdocument import PDFDocument
    from pdfplumber.page import Page
    from pdfplumber.pdf import PDF

# The helpers live next to this file. Run by path under `python -I` (the child), this directory is not
# on sys.path: it is appended (after the standard library and site-packages, so no sibling shadows one).
if TYPE_CHECKING or __name__ != "__main__":
    from scf.connectors.parsing.pdf.extract_ocr import MAX_OCR_PIXELS as MAX_OCR_PIXELS
    from scf.connectors.parsing.pdf.extract_ocr import Ocr
    from scf.connectors.parsing.pdf.extract_ocr import render_dpi as render_dpi
    from scf.connectors.parsing.pdf.extract_output import MAX_METADATA_CHARS as MAX_METADATA_CHARS
    from scf.connectors.parsing.pdf.extract_output import MAX_METADATA_ITEMS as MAX_METADATA_ITEMS
    from scf.connectors.parsing.pdf.extract_output import Output, plain
else:  # pragma: no cover - the child process
    sys.path.append(os.path.dirname(os.path.abspath(__file__)))
    from extract_ocr import Ocr
    from extract_output import Output, plain

# Failure kinds: the child's half of the table in errors.py.
MALFORMED = "malformed"
PASSWORD_REQUIRED = "password_required"  # noqa: S105 - a failure kind, not a password
PASSWORD_INCORRECT = "password_incorrect"  # noqa: S105 - a failure kind, not a password
UNSUPPORTED_ENCRYPTION = "unsupported_encryption"
BAD_PAGE_TREE = "bad_page_tree"
CIRCULAR_XOBJECT = "circular_xobject"
TOO_DEEP = "too_deep"
MEMORY = "memory"
TOO_MANY_PAGES = "too_many_pages"
PAGE_OUT_OF_RANGE = "page_out_of_range"
BAD_JOB = "bad_job"

MAX_JOB_BYTES = 2 * 1024 * 1024  # a selection of 100 000 pages is ~800 KB of JSON
MAX_TREE_DEPTH = 256
MAX_PAGES_WITHOUT_TEXT = 1_000
# pdfminer refuses a Form XObject that draws itself (CWE-835) with nothing but this warning.
CIRCULAR_WARNING = "Refusing to execute circular reference"


class Failure(Exception):
    """An ending the parent maps to a typed error; `message` is user-safe, `detail` is for logs."""

    def __init__(self, kind: str, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.kind, self.message, self.detail = kind, message, detail


@dataclass(frozen=True)
class Job:
    """What to do with the PDF. Built by sandbox.py; `password` is never echoed or logged."""

    mode: str  # ingest | preview | validate | probe
    pages: tuple[int, ...] | None = None
    first_pages: int | None = None
    max_pages: int = 1_000
    extract_tables: bool = True
    ocr: str = "auto"
    ocr_language: str = "eng"
    ocr_resolution: int = 200
    max_ocr_pages: int = 50
    max_text_bytes: int = 16 * 1024 * 1024
    text_chars: int | None = None
    table_rows: int | None = None
    password: str = ""

    @classmethod
    def parse(cls, line: bytes) -> Job:
        try:
            raw = json.loads(line)
            pages = raw.pop("pages", None)
            return cls(**raw, pages=None if pages is None else tuple(int(p) for p in pages))
        except (ValueError, TypeError, AttributeError) as exc:
            raise Failure(BAD_JOB, "the parser received an unreadable job", type(exc).__name__) from None


def set_limits(memory_bytes: int, cpu_seconds: int, max_open_files: int) -> None:
    """Cap this process (and the tesseract it may start) before it touches the PDF."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))  # SIGXCPU, then SIGKILL
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # nothing here writes files; stdout is a pipe
    resource.setrlimit(resource.RLIMIT_NOFILE, (max_open_files, max_open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


# --- document ---------------------------------------------------------------------------------------


def open_pdf(data: bytes, password: str) -> PDF:
    import pdfplumber

    return pdfplumber.open(io.BytesIO(data), password=password)


def count_pages(doc: PDFDocument) -> int:
    """Pages under the catalog's /Pages, refusing a tree that reaches a node twice.

    pdfminer skips a node it has seen and carries on, so a cyclic tree (Kids pointing back at an
    ancestor) or a shared one (the same subtree listed many times) would parse as fewer pages or
    none. Neither is a valid PDF, and both are a classic way to hang or blow up other readers.
    """
    from pdfminer.pdfpage import LITERAL_PAGE, LITERAL_PAGES, PDFPage
    from pdfminer.pdftypes import PDFObjRef, resolve1

    seen: set[int] = set()
    count = 0
    stack: list[tuple[Any, int]] = [(doc.catalog.get("Pages"), 0)]
    while stack:
        ref, depth = stack.pop()
        if isinstance(ref, PDFObjRef):
            if ref.objid in seen:
                raise Failure(BAD_PAGE_TREE, "the page tree is cyclic: a /Kids entry reaches a node twice")
            seen.add(ref.objid)
        if depth > MAX_TREE_DEPTH:
            raise Failure(BAD_PAGE_TREE, f"the page tree is nested more than {MAX_TREE_DEPTH} levels deep")
        node = resolve1(ref)
        if not isinstance(node, dict):
            continue
        kind = node.get("Type", node.get("type"))
        if kind is LITERAL_PAGES:
            kids = resolve1(node.get("Kids"))
            if isinstance(kids, list):
                stack.extend((kid, depth + 1) for kid in reversed(kids))
        elif kind is LITERAL_PAGE:
            count += 1
    if count == 0:  # no usable tree: pdfminer (and so pdfplumber) falls back to scanning for pages
        count = sum(1 for _ in PDFPage.create_pages(doc))
    return count


def select_pages(job: Job, page_count: int) -> tuple[int, ...]:
    if job.pages is not None:
        beyond = [p for p in job.pages if p > page_count]
        if beyond:
            raise Failure(
                PAGE_OUT_OF_RANGE,
                f"parameters.pages asks for page {beyond[0]}, but the PDF has {page_count} pages",
            )
        return job.pages
    if job.first_pages is not None:
        return tuple(range(1, min(job.first_pages, page_count) + 1))
    if page_count > job.max_pages:
        raise Failure(
            TOO_MANY_PAGES,
            f"the PDF has {page_count} pages, more than max_pages ({job.max_pages}); "
            "choose some with parameters.pages",
        )
    return tuple(range(1, page_count + 1))


class CircularWatcher(logging.Handler):
    """Turns pdfminer's warning about a Form XObject that draws itself into a failure."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen = False

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith(CIRCULAR_WARNING):
            self.seen = True

    def check(self, page_number: int) -> None:
        if self.seen:
            raise Failure(
                CIRCULAR_XOBJECT, f"page {page_number} has circular Form XObjects (a form that draws itself)"
            )

    @classmethod
    def install(cls) -> CircularWatcher:
        watcher = cls()
        logger = logging.getLogger("pdfminer")
        logger.addHandler(watcher)
        logger.setLevel(logging.WARNING)
        logger.propagate = False  # pdfminer's other warnings are noise on stderr
        return watcher


# --- operations -------------------------------------------------------------------------------------


def read_page(page: Page, job: Job, ocr: Ocr, watcher: CircularWatcher) -> dict[str, Any]:
    text = page.extract_text() or ""
    tables = page.extract_tables() if job.extract_tables else []
    watcher.check(page.page_number)
    record: dict[str, Any] = {
        "type": "page",
        "page": page.page_number,
        "text": text,
        "tables": [[list(row) for row in table[: job.table_rows]] for table in tables],
        "ocr": False,
        "text_truncated": False,
    }
    if job.ocr == "always" or (job.ocr == "auto" and not text.strip()):
        read, error = ocr.read(page)
        if read is not None:
            record.update(text=read, ocr=True)
        if error is not None:
            record["ocr_error"] = error
    if job.text_chars is not None and len(record["text"]) > job.text_chars:
        record.update(text=record["text"][: job.text_chars], text_truncated=True)
    return record


class PageSet(list[int]):
    """pdfplumber's page filter (typed as a list) answering `in` from a set: it asks for every page."""

    def __init__(self, pages: Iterable[int]) -> None:
        super().__init__(pages)
        self._members = frozenset(self)

    def __contains__(self, page: object) -> bool:
        return page in self._members


def run_pages(pdf: PDF, job: Job, selection: tuple[int, ...], out: Output) -> None:
    watcher, ocr = CircularWatcher.install(), Ocr(job)
    pdf.pages_to_parse = PageSet(selection)  # pdfplumber's own filter, set once the page count is known
    for page in pdf.pages:
        try:
            record = read_page(page, job, ocr, watcher)
        finally:
            page.close()
        if not out.emit_page(record):
            break
    out.emit({"type": "done", "truncated": out.full})


def run_validate(pdf: PDF, job: Job, page_count: int, out: Output) -> None:
    watcher = CircularWatcher.install()
    checked = min(page_count, job.max_pages)
    pdf.pages_to_parse = PageSet(range(1, checked + 1))
    without_text: list[int] = []
    for page in pdf.pages:
        try:
            if not any(char["text"].strip() for char in page.chars):
                without_text.append(page.page_number)
            watcher.check(page.page_number)
        finally:
            page.close()
    out.emit(
        {
            "type": "validate",
            "pages_checked": checked,
            "has_text_layer": checked > len(without_text),
            "pages_without_text": without_text[:MAX_PAGES_WITHOUT_TEXT],
        }
    )


def run(job: Job, data: bytes, out: Output) -> None:
    if job.mode == "probe":
        import pdfplumber

        out.emit({"type": "probe", "pdfplumber": pdfplumber.__version__, "tesseract": bool(Ocr(job).binary)})
        return
    with open_pdf(data, job.password) as pdf:
        out.emit(
            {"type": "document", "encrypted": pdf.doc.encryption is not None, "metadata": plain(pdf.metadata)}
        )
        page_count = count_pages(pdf.doc)
        out.emit({"type": "page_count", "page_count": page_count})
        if job.mode == "validate":
            run_validate(pdf, job, page_count, out)
        else:
            run_pages(pdf, job, select_pages(job, page_count), out)


# --- endings ----------------------------------------------------------------------------------------


def as_failure(exc: BaseException, password_given: bool) -> Failure:
    """Classify any exception; pdfplumber wraps pdfminer's in PdfminerException(original)."""
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect
    from pdfplumber.utils.exceptions import PdfminerException

    if isinstance(exc, PdfminerException) and exc.args and isinstance(exc.args[0], BaseException):
        exc = exc.args[0]
    detail = f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"[:1_000]
    if isinstance(exc, Failure):
        return exc
    if isinstance(exc, MemoryError):
        return Failure(MEMORY, "the PDF needs more memory to parse than memory_limit_mb allows", detail)
    if isinstance(exc, RecursionError):
        return Failure(TOO_DEEP, "the PDF nests its objects too deeply to parse", detail)
    if isinstance(exc, PDFPasswordIncorrect):
        if password_given:
            return Failure(PASSWORD_INCORRECT, "parameters.password does not open this PDF", detail)
        return Failure(PASSWORD_REQUIRED, "the PDF is encrypted: pass parameters.password", detail)
    if isinstance(exc, PDFEncryptionError):
        return Failure(UNSUPPORTED_ENCRYPTION, "the PDF uses an encryption this parser cannot open", detail)
    # pdfminer meets broken files with anything from PSEOF to KeyError or TypeError.
    return Failure(MALFORMED, "the file is not a readable PDF", detail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--memory-bytes", type=int, required=True)
    parser.add_argument("--cpu-seconds", type=int, required=True)
    parser.add_argument("--max-open-files", type=int, required=True)
    args = parser.parse_args(argv)
    set_limits(args.memory_bytes, args.cpu_seconds, args.max_open_files)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    password_given = False
    try:
        job = Job.parse(stdin.readline(MAX_JOB_BYTES))
        password_given = bool(job.password)
        run(job, stdin.read(), Output(stdout, job.max_text_bytes))
    except BaseException as exc:  # every ending reaches the parent as one record
        failure = as_failure(exc, password_given)
    else:
        return 0
    Output(stdout, 0).emit(
        {"type": "failure", "kind": failure.kind, "message": failure.message, "detail": failure.detail}
    )
    return 3


if __name__ == "__main__":
    sys.exit(main())
