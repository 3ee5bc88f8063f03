"""How a parser run ends, mapped to typed errors: the child's failure kinds, its exit status, our timeout.

Pure: every run here is a hand-made `ParserRun`, no process is started.
"""

from __future__ import annotations

import signal
from typing import Any

import pytest

from scf.connectors.parsing.pdf import extract
from scf.connectors.parsing.pdf.errors import FAILURE_RULES, failure_error, missing_result, run_error
from scf.connectors.parsing.pdf.sandbox import ParserRun, SandboxLimits
from scf.schemas.configs.pdf import PdfConfig
from scf.schemas.errors import ErrorCategory, ErrorCode

LIMITS = SandboxLimits.from_config(PdfConfig(cpu_limit_seconds=7, parse_timeout=9))


def ended(returncode: int | None = 0, *records: dict[str, Any], **kw: Any) -> ParserRun:
    return ParserRun(records=records, returncode=returncode, seconds=0.1, **kw)


def failure(kind: str, message: str = "what happened") -> dict[str, Any]:
    return {"type": "failure", "kind": kind, "message": message, "detail": "pdfminer said so"}


def test_every_failure_kind_the_child_can_report_has_a_row() -> None:
    assert {r.kind for r in FAILURE_RULES} >= {
        extract.MALFORMED,
        extract.PASSWORD_REQUIRED,
        extract.PASSWORD_INCORRECT,
        extract.UNSUPPORTED_ENCRYPTION,
        extract.BAD_PAGE_TREE,
        extract.CIRCULAR_XOBJECT,
        extract.TOO_DEEP,
        extract.MEMORY,
        extract.TOO_MANY_PAGES,
        extract.PAGE_OUT_OF_RANGE,
        extract.BAD_JOB,
    }


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (extract.MALFORMED, ErrorCode.INVALID_DATA),
        (extract.BAD_PAGE_TREE, ErrorCode.INVALID_DATA),
        (extract.CIRCULAR_XOBJECT, ErrorCode.INVALID_DATA),
        (extract.TOO_DEEP, ErrorCode.INVALID_DATA),
        (extract.PASSWORD_REQUIRED, ErrorCode.PERMISSION_DENIED),
        (extract.PASSWORD_INCORRECT, ErrorCode.PERMISSION_DENIED),
        (extract.MEMORY, ErrorCode.LIMIT_EXCEEDED),
        (extract.TOO_MANY_PAGES, ErrorCode.LIMIT_EXCEEDED),
        (extract.PAGE_OUT_OF_RANGE, ErrorCode.INVALID_REQUEST),
        ("no_such_kind", ErrorCode.INTERNAL),
    ],
)
def test_failure_kinds_become_permanent_errors(kind: str, code: ErrorCode) -> None:
    error = run_error(ended(3, failure(kind)), LIMITS)

    assert error is not None
    assert (error.category, error.code) == (ErrorCategory.PERMANENT, code)
    assert not error.retryable
    assert error.detail is not None and "pdfminer said so" in error.detail


def test_the_childs_message_is_shown_and_its_detail_only_logged() -> None:
    error = failure_error(failure(extract.PAGE_OUT_OF_RANGE, "page 9 of 3"))

    assert error.message == "page 9 of 3"
    assert "pdfminer said so" not in error.to_info().model_dump_json()


def test_a_security_category_is_never_used_for_a_document_password() -> None:
    error = failure_error(
        failure(extract.PASSWORD_REQUIRED, "the PDF is encrypted: pass parameters.password")
    )

    assert error.category is ErrorCategory.PERMANENT
    assert error.to_info().message == "the PDF is encrypted: pass parameters.password"


@pytest.mark.parametrize(
    ("run", "code", "fragment"),
    [
        (
            ended(-signal.SIGKILL, timed_out=True),
            ErrorCode.LIMIT_EXCEEDED,
            "too long to parse (more than 9 s)",
        ),
        (ended(-signal.SIGXCPU), ErrorCode.LIMIT_EXCEEDED, "too much CPU time to parse (more than 7 s)"),
        (ended(-signal.SIGKILL), ErrorCode.LIMIT_EXCEEDED, "CPU time or memory"),
        (ended(-signal.SIGXFSZ), ErrorCode.LIMIT_EXCEEDED, "tried to write a file"),
        (ended(-signal.SIGKILL, overflowed=True), ErrorCode.LIMIT_EXCEEDED, "max_text_bytes"),
        (ended(-signal.SIGSEGV), ErrorCode.INVALID_DATA, "crashed on this file (SIGSEGV)"),
        (ended(1, stderr_tail="MemoryError\n"), ErrorCode.LIMIT_EXCEEDED, "memory_limit_mb"),
        (ended(1, stderr_tail="Traceback: ImportError"), ErrorCode.INTERNAL, "failed unexpectedly"),
    ],
)
def test_a_silent_ending_is_judged_by_exit_status_and_timeout(
    run: ParserRun, code: ErrorCode, fragment: str
) -> None:
    error = run_error(run, LIMITS)

    assert error is not None
    assert error.code == code
    assert fragment in error.message


def test_a_reported_failure_wins_over_the_exit_status() -> None:
    error = run_error(
        ended(-signal.SIGKILL, failure(extract.MEMORY, "out of memory"), timed_out=True), LIMITS
    )

    assert error is not None
    assert (error.code, error.message) == (ErrorCode.LIMIT_EXCEEDED, "out of memory")


def test_a_clean_exit_is_no_error_and_a_missing_result_is_internal() -> None:
    run = ended(0, {"type": "document"})

    assert run_error(run, LIMITS) is None
    assert missing_result(run).code == ErrorCode.INTERNAL


def test_the_wall_clock_leaves_room_inside_a_request_timeout() -> None:
    config = PdfConfig(parse_timeout=60)

    assert SandboxLimits.from_config(config).wall_seconds == 60
    assert SandboxLimits.from_config(config, 10).wall_seconds == 9
    assert SandboxLimits.from_config(config, 0.1).wall_seconds == 0.5
    assert SandboxLimits.from_config(config, 100).wall_seconds == 60
