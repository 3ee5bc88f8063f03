"""The Elasticsearch error tables: transport exceptions by class, API errors by HTTP status and error type.

A reply the cluster sent (`ApiError`) is classified by `API_ERROR_RULES`, the first row whose status
and (if given) error type match; network trouble by `ELASTICSEARCH_ERROR_RULES`. The cluster's reason
is added to the user-safe message for request errors, with document values (mapping previews) removed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import elasticsearch as es
from elastic_transport import ApiError

from scf.connectors.base import ErrorRule
from scf.schemas.errors import ConnectorError, ErrorCategory, ErrorCode, error_class

_T, _R, _P, _C, _S = (
    ErrorCategory.TRANSIENT,
    ErrorCategory.RESOURCE,
    ErrorCategory.PERMANENT,
    ErrorCategory.CONFIGURATION,
    ErrorCategory.SECURITY,
)

#: Failures without an HTTP reply, most specific first (TlsError is a ConnectionError).
ELASTICSEARCH_ERROR_RULES: tuple[ErrorRule, ...] = (
    ErrorRule(
        es.UnsupportedProductError,
        _C,
        ErrorCode.INVALID_CONFIG,
        "the server is not a supported Elasticsearch (8.x or 9.x)",
    ),
    ErrorRule(
        es.SSLError,
        _C,
        ErrorCode.INVALID_CONFIG,
        "the TLS handshake with the cluster failed (check custom_config.ca_certs and verify_certs)",
    ),
    ErrorRule(es.ConnectionTimeout, _T, ErrorCode.TIMEOUT, "the cluster did not answer in time"),
    ErrorRule(es.ConnectionError, _T, ErrorCode.CONNECTION_FAILED, "cannot reach the cluster"),
    ErrorRule(es.SerializationError, _P, ErrorCode.INVALID_DATA, "a value could not be serialized to JSON"),
)


@dataclass(frozen=True)
class ApiErrorRule:
    """One row: HTTP statuses (and optionally an Elasticsearch error type) -> category, code, message."""

    statuses: range
    error_type: str | None
    category: ErrorCategory
    code: ErrorCode
    message: str
    with_reason: bool = True


def _status(code: int) -> range:
    return range(code, code + 1)


API_ERROR_RULES: tuple[ApiErrorRule, ...] = (
    ApiErrorRule(_status(401), None, _S, ErrorCode.AUTHENTICATION_FAILED, "authentication failed", False),
    ApiErrorRule(_status(403), None, _S, ErrorCode.PERMISSION_DENIED, "permission denied", False),
    ApiErrorRule(
        _status(404), "index_not_found_exception", _C, ErrorCode.NOT_FOUND, "the index does not exist"
    ),
    ApiErrorRule(
        _status(404),
        "search_context_missing_exception",
        _P,
        ErrorCode.NOT_FOUND,
        "the paged search expired; start it again without page_token",
        False,
    ),
    ApiErrorRule(
        _status(404), "document_missing_exception", _P, ErrorCode.NOT_FOUND, "the document does not exist"
    ),
    ApiErrorRule(_status(404), None, _P, ErrorCode.NOT_FOUND, "not found"),
    ApiErrorRule(
        _status(400),
        "resource_already_exists_exception",
        _P,
        ErrorCode.CONSTRAINT_VIOLATION,
        "already exists",
    ),
    ApiErrorRule(
        _status(400), "invalid_index_name_exception", _P, ErrorCode.INVALID_IDENTIFIER, "invalid index name"
    ),
    ApiErrorRule(
        _status(400),
        "document_parsing_exception",
        _P,
        ErrorCode.INVALID_DATA,
        "a document does not fit the mapping",
    ),
    ApiErrorRule(
        _status(400),
        "mapper_parsing_exception",
        _P,
        ErrorCode.INVALID_DATA,
        "the mapping refused the request",
    ),
    ApiErrorRule(_status(400), None, _P, ErrorCode.QUERY_FAILED, "the cluster refused the request"),
    ApiErrorRule(_status(409), None, _P, ErrorCode.CONSTRAINT_VIOLATION, "version conflict"),
    ApiErrorRule(
        _status(413),
        None,
        _P,
        ErrorCode.LIMIT_EXCEEDED,
        "the request is too large (lower parameters.batch_size)",
    ),
    ApiErrorRule(_status(422), None, _P, ErrorCode.INVALID_DATA, "the cluster could not process the request"),
    ApiErrorRule(
        _status(429),
        None,
        _R,
        ErrorCode.LIMIT_EXCEEDED,
        "the cluster is overloaded (HTTP 429); retry later",
        False,
    ),
    ApiErrorRule(_status(503), None, _T, ErrorCode.CONNECTION_FAILED, "the cluster is unavailable", False),
    ApiErrorRule(_status(504), None, _T, ErrorCode.TIMEOUT, "the cluster did not answer in time", False),
    ApiErrorRule(range(500, 600), None, _T, ErrorCode.QUERY_FAILED, "the cluster failed the request", False),
    ApiErrorRule(range(400, 500), None, _P, ErrorCode.QUERY_FAILED, "the cluster refused the request"),
)
_UNEXPECTED = ApiErrorRule(range(0), None, _P, ErrorCode.INTERNAL, "unexpected reply from the cluster", False)

MAX_REASON_CHARS = 300
# document_parsing_exception quotes the offending value: "Preview of field's value: 'secret'".
_VALUE_PREVIEW = re.compile(r"Preview of field's value: .*?(?=(; |$))", re.DOTALL)


def safe_reason(reason: object) -> str:
    """The cluster's reason text without quoted document values, cut to a readable length."""
    text = _VALUE_PREVIEW.sub("Preview of field's value omitted", str(reason or "")).strip()
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


def error_types(body: Any) -> list[str]:
    """The error's type, then its root causes' types (the meaningful ones of a search phase failure)."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return []
    types = [str(error["type"])] if error.get("type") else []
    for cause in error.get("root_cause") or ():
        if isinstance(cause, Mapping) and cause.get("type"):
            types.append(str(cause["type"]))
    return types


def error_reason(body: Any) -> str:
    """The most specific reason: the first root cause's, else the error's own."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return ""
    causes = [c for c in error.get("root_cause") or () if isinstance(c, Mapping) and c.get("reason")]
    return safe_reason(causes[0]["reason"] if causes else error.get("reason"))


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from a `Retry-After: <seconds>` header (the HTTP-date form is ignored)."""
    value = (headers or {}).get("retry-after") or (headers or {}).get("Retry-After")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds <= 3600 else None


def api_rule(status: int, types: list[str]) -> ApiErrorRule:
    for rule in API_ERROR_RULES:
        if status in rule.statuses and (rule.error_type is None or rule.error_type in types):
            return rule
    return _UNEXPECTED


def classify_api_error(exc: ApiError) -> ConnectorError:
    """Translate an error reply of the cluster through `API_ERROR_RULES`."""
    status = int(exc.meta.status)
    types = error_types(exc.body)
    rule = api_rule(status, types)
    reason = error_reason(exc.body)
    message = f"{rule.message}: {reason}" if rule.with_reason and reason else rule.message
    detail = f"{type(exc).__module__}.{type(exc).__qualname__}: HTTP {status} {', '.join(types) or '-'}"
    if reason and rule.category is not ErrorCategory.SECURITY:  # security replies may echo credentials
        detail += f": {reason}"
    return error_class(rule.category)(
        message, code=rule.code, retry_after=retry_after(exc.meta.headers), detail=detail
    )
