"""PDF request handling without a parser: parameters, page selections and the job sent to the child.

Every job built here must be one `extract.Job` can read.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from scf.connectors.parsing.pdf import extract
from scf.connectors.parsing.pdf.requests import PARAMETERS, PdfOptions, build_job, parse_page_selection
from scf.schemas.configs.pdf import PdfConfig
from scf.schemas.errors import ErrorCode, PermanentError
from scf.schemas.validation import parse_model


def refused(spec: Any, max_pages: int = 1_000) -> PermanentError:
    with pytest.raises(PermanentError) as caught:
        parse_page_selection(spec, max_pages)
    return caught.value


@pytest.mark.parametrize(
    ("spec", "pages"),
    [
        ([3, 1, 3], (1, 3)),
        ("1-3,5", (1, 2, 3, 5)),
        (" 2 - 4 , 3-6 ", (2, 3, 4, 5, 6)),
        ("7", (7,)),
        ("4-4,1", (1, 4)),
    ],
)
def test_page_selections_become_sorted_distinct_pages(spec: Any, pages: tuple[int, ...]) -> None:
    assert parse_page_selection(spec, 100) == pages


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("1-", "'1-' is not a page number"),
        ("a", "'a' is not a page number"),
        ("1,,2", "'' is not a page number"),
        ("5-2", "runs backwards"),
        ("0-2", "numbered from 1"),
        ([0], "numbered from 1"),
        ([], "selects no pages"),
        ("", "is not a page number"),
    ],
)
def test_bad_page_selections_are_invalid_requests(spec: Any, fragment: str) -> None:
    error = refused(spec)

    assert error.code == ErrorCode.INVALID_REQUEST
    assert fragment in error.message


def test_a_huge_range_is_refused_by_count_without_being_expanded() -> None:
    error = refused("1-999999999", max_pages=1_000)

    assert error.code == ErrorCode.LIMIT_EXCEEDED
    assert "999999999 pages, more than max_pages (1000)" in error.message


def test_overlapping_ranges_count_each_page_once() -> None:
    assert parse_page_selection("1-10,5-12", 12) == tuple(range(1, 13))


def test_unknown_parameters_are_refused() -> None:
    with pytest.raises(PermanentError) as caught:
        parse_parameters("ingest", {"page": [1]})

    assert caught.value.code == ErrorCode.INVALID_REQUEST
    assert "page" in caught.value.message


@pytest.mark.parametrize(
    ("operation", "parameters", "fragment"),
    [
        ("preview", {"pages": [1]}, "pages: Extra inputs are not permitted"),
        ("validate", {"pages": "1-2"}, "pages: Extra inputs are not permitted"),
        ("ingest", {"pages_count": 2}, "pages_count: Extra inputs are not permitted"),
        ("ingest", {"chars": 10}, "chars: Extra inputs are not permitted"),
        ("ingest", {"base64": False}, "always travels as base64"),
        ("ingest", {"ocr": "sometimes"}, "ocr"),
        ("ingest", {"ocr_language": "eng; rm -rf /"}, "ocr_language"),
        ("ingest", {"password": ""}, "password"),
    ],
)
def test_misplaced_or_bad_parameters_are_refused(
    operation: str, parameters: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(PermanentError) as caught:
        parse_parameters(operation, parameters)

    assert caught.value.code == ErrorCode.INVALID_REQUEST
    assert fragment in caught.value.message


def test_the_password_is_hidden_in_the_parameters_repr() -> None:
    params = parse_parameters("ingest", {"password": "hunter2-canary"})

    assert "hunter2-canary" not in repr(params)
    assert "hunter2-canary" not in str(params.model_dump())


def test_an_ingest_job_takes_request_choices_within_the_config() -> None:
    config = PdfConfig(max_pages=10, ocr="never", ocr_language="deu", max_text_bytes=4096)
    params = parse_parameters(
        "ingest", {"pages": "2-3", "ocr": "always", "extract_tables": False, "password": "pw"}
    )

    job = build_job("ingest", params, config)

    assert job["pages"] == [2, 3]
    assert (job["ocr"], job["ocr_language"], job["extract_tables"]) == ("always", "deu", False)
    assert (job["max_pages"], job["max_text_bytes"], job["password"]) == (10, 4096, "pw")
    assert "first_pages" not in job


def test_a_preview_job_reads_the_first_pages_with_cut_text() -> None:
    config = PdfConfig(preview_pages=3, preview_chars=50)

    default = build_job("preview", parse_parameters("preview", {}), config)
    chosen = build_job("preview", parse_parameters("preview", {"pages_count": 1, "chars": 5}), config)

    assert (default["first_pages"], default["text_chars"], default["table_rows"]) == (3, 50, 5)
    assert (chosen["first_pages"], chosen["text_chars"]) == (1, 5)
    assert chosen["ocr"] == "auto" and chosen["password"] == ""


@pytest.mark.parametrize("operation", ["ingest", "preview", "validate"])
def test_every_job_is_one_the_child_can_read(operation: str) -> None:
    parameters: dict[str, Any] = {"pages": [1, 2]} if operation == "ingest" else {}
    job = build_job(operation, parse_parameters(operation, parameters), PdfConfig())

    parsed = extract.Job.parse(json.dumps(job).encode())

    assert parsed.mode == operation
    assert parsed.pages == ((1, 2) if operation == "ingest" else None)


def parse_parameters(operation: str, raw: dict[str, Any]) -> PdfOptions:
    """`parameters` as the operation table parses them (each operation's own model)."""
    return parse_model(PARAMETERS[operation], raw, "parameters")
