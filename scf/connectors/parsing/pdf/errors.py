"""The PDF error tables: a parser's failure kind, or the way its process ended, to a typed error.

The child names what went wrong (`extract.py`'s kinds) with a user-safe message; a process killed
by a limit or crashed says nothing, so its exit status and our own timeout decide. Every row is
permanent: the same bytes fail the same way again, so retrying would only burn another process.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any

from scf.connectors.parsing.pdf import extract
from scf.connectors.parsing.pdf.sandbox import ParserRun, SandboxLimits
from scf.schemas.errors import ConnectorError, ErrorCode, PermanentError

MAX_MESSAGE_CHARS = 500


@dataclass(frozen=True)
class FailureRule:
    """One row: a failure kind the child reports -> error code (category: permanent)."""

    kind: str
    code: ErrorCode


FAILURE_RULES: tuple[FailureRule, ...] = (
    FailureRule(extract.MALFORMED, ErrorCode.INVALID_DATA),
    FailureRule(extract.BAD_PAGE_TREE, ErrorCode.INVALID_DATA),
    FailureRule(extract.CIRCULAR_XOBJECT, ErrorCode.INVALID_DATA),
    FailureRule(extract.TOO_DEEP, ErrorCode.INVALID_DATA),
    FailureRule(extract.UNSUPPORTED_ENCRYPTION, ErrorCode.INVALID_DATA),
    # Permanent, not `security`: a missing document password is the caller's input, not a refused
    # login to a service, so the message stays readable and no security event is raised.
    FailureRule(extract.PASSWORD_REQUIRED, ErrorCode.PERMISSION_DENIED),
    FailureRule(extract.PASSWORD_INCORRECT, ErrorCode.PERMISSION_DENIED),
    FailureRule(extract.MEMORY, ErrorCode.LIMIT_EXCEEDED),
    FailureRule(extract.TOO_MANY_PAGES, ErrorCode.LIMIT_EXCEEDED),
    FailureRule(extract.PAGE_OUT_OF_RANGE, ErrorCode.INVALID_REQUEST),
    FailureRule(extract.BAD_JOB, ErrorCode.INTERNAL),
)
_BY_KIND = {rule.kind: rule for rule in FAILURE_RULES}


def failure_error(record: dict[str, Any]) -> PermanentError:
    """The typed error for a `failure` record; an unknown kind is INTERNAL."""
    rule = _BY_KIND.get(str(record.get("kind")))
    message = str(record.get("message") or "the PDF parser failed")[:MAX_MESSAGE_CHARS]
    detail = f"{record.get('kind')}: {record.get('detail', '')}"[:2000]
    if rule is None:
        return PermanentError("the PDF parser failed unexpectedly", code=ErrorCode.INTERNAL, detail=detail)
    return PermanentError(message, code=rule.code, detail=detail)


def _limit(message: str, run: ParserRun) -> PermanentError:
    return PermanentError(message, code=ErrorCode.LIMIT_EXCEEDED, detail=_detail(run))


def _detail(run: ParserRun) -> str:
    return f"exit {run.returncode} after {run.seconds} s; stderr: {run.stderr_tail[-1500:]}"


def run_error(run: ParserRun, limits: SandboxLimits) -> ConnectorError | None:
    """Why a run failed, or None when it ended normally."""
    failure = run.first("failure")
    if failure is not None:
        return failure_error(failure)
    if run.timed_out:
        return _limit(f"the PDF took too long to parse (more than {limits.wall_seconds:g} s)", run)
    if run.overflowed:
        return _limit("the parser's output passed max_text_bytes", run)
    code = run.returncode or 0
    if code == 0:
        return None
    if code == -signal.SIGXCPU:
        return _limit(f"the PDF took too much CPU time to parse (more than {limits.cpu_seconds} s)", run)
    if code == -signal.SIGKILL:  # the hard CPU limit, or the kernel reclaiming memory
        return _limit("the PDF took too much CPU time or memory to parse", run)
    if code == -signal.SIGXFSZ:
        return _limit("the PDF parser tried to write a file", run)
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        return PermanentError(
            f"the PDF parser crashed on this file ({name})", code=ErrorCode.INVALID_DATA, detail=_detail(run)
        )
    if "MemoryError" in run.stderr_tail:  # ran out before it could report
        return _limit("the PDF needs more memory to parse than memory_limit_mb allows", run)
    return PermanentError("the PDF parser failed unexpectedly", code=ErrorCode.INTERNAL, detail=_detail(run))


def missing_result(run: ParserRun) -> PermanentError:
    return PermanentError(
        "the PDF parser ended without a result", code=ErrorCode.INTERNAL, detail=_detail(run)
    )
