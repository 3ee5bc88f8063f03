"""The Elasticsearch error tables: transport exceptions by class, API errors by HTTP status and error type.

A reply the cluster sent (`ApiError`) is classified by `API_ERROR_RULES`, the first row whose status and
(if given) error type match (`Reply`); network trouble by `ELASTICSEARCH_ERROR_RULES`. The cluster's
reason is added to the user-safe message of request errors, with document values (mapping previews)
removed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import elasticsearch as es
from elastic_transport import ApiError

from scf.connectors.base import C, ErrorRule, P, R, S, T
from scf.schemas.errors import ConnectorError, ErrorCategory, ErrorCode, error_class

#: Failures without an HTTP reply, most specific first (TlsError is a ConnectionError).
ELASTICSEARCH_ERROR_RULES: tuple[ErrorRule, ...] = (
    ErrorRule(
        es.UnsupportedProductError,
        C,
        ErrorCode.INVALID_CONFIG,
        "the server is not a supported Elasticsearch (8.x or 9.x)",
    ),
    ErrorRule(
        es.SSLError,
        C,
        ErrorCode.INVALID_CONFIG,
        "the TLS handshake with the cluster failed (check custom_config.ca_certs and verify_certs)",
    ),
    ErrorRule(es.ConnectionTimeout, T, ErrorCode.TIMEOUT, "the cluster did not answer in time"),
    ErrorRule(es.ConnectionError, T, ErrorCode.CONNECTION_FAILED, "cannot reach the cluster"),
    ErrorRule(es.SerializationError, P, ErrorCode.INVALID_DATA, "a value could not be serialized to JSON"),
)


@dataclass(frozen=True)
class Reply:
    """A predicate on an error reply: its HTTP status is one of `statuses` and, if given, `error_type` is
    the cluster's error type (or a root cause's)."""

    statuses: range
    error_type: str | None = None

    def __call__(self, exc: BaseException) -> bool:
        if not isinstance(exc, ApiError) or int(exc.meta.status) not in self.statuses:
            return False
        return self.error_type is None or self.error_type in error_types(exc.body)


def reply(
    status: int | range, category: ErrorCategory, code: ErrorCode, message: str, error_type: str | None = None
) -> ErrorRule:
    """A row for an error reply; permanent and configuration rows add the cluster's reason."""
    statuses = range(status, status + 1) if isinstance(status, int) else status
    return ErrorRule(ApiError, category, code, message, when=Reply(statuses, error_type))


API_ERROR_RULES: tuple[ErrorRule, ...] = (
    reply(401, S, ErrorCode.AUTHENTICATION_FAILED, "authentication failed"),
    reply(403, S, ErrorCode.PERMISSION_DENIED, "permission denied"),
    reply(404, C, ErrorCode.NOT_FOUND, "the index does not exist", "index_not_found_exception"),
    reply(
        404,
        P,
        ErrorCode.NOT_FOUND,
        "the paged search expired; start it again without page_token",
        "search_context_missing_exception",
    ),
    reply(404, P, ErrorCode.NOT_FOUND, "the document does not exist", "document_missing_exception"),
    reply(404, P, ErrorCode.NOT_FOUND, "not found"),
    reply(400, P, ErrorCode.CONSTRAINT_VIOLATION, "already exists", "resource_already_exists_exception"),
    reply(400, P, ErrorCode.INVALID_IDENTIFIER, "invalid index name", "invalid_index_name_exception"),
    reply(
        400, P, ErrorCode.INVALID_DATA, "a document does not fit the mapping", "document_parsing_exception"
    ),
    reply(400, P, ErrorCode.INVALID_DATA, "the mapping refused the request", "mapper_parsing_exception"),
    reply(400, P, ErrorCode.QUERY_FAILED, "the cluster refused the request"),
    reply(409, P, ErrorCode.CONSTRAINT_VIOLATION, "version conflict"),
    reply(413, P, ErrorCode.LIMIT_EXCEEDED, "the request is too large (lower parameters.batch_size)"),
    reply(422, P, ErrorCode.INVALID_DATA, "the cluster could not process the request"),
    reply(429, R, ErrorCode.LIMIT_EXCEEDED, "the cluster is overloaded (HTTP 429); retry later"),
    reply(503, T, ErrorCode.CONNECTION_FAILED, "the cluster is unavailable"),
    reply(504, T, ErrorCode.TIMEOUT, "the cluster did not answer in time"),
    reply(range(500, 600), T, ErrorCode.QUERY_FAILED, "the cluster failed the request"),
    reply(range(400, 500), P, ErrorCode.QUERY_FAILED, "the cluster refused the request"),
)
_UNEXPECTED = ErrorRule(ApiError, P, ErrorCode.INTERNAL, "unexpected reply from the cluster")
#: Rows whose message carries the cluster's reason (security replies may echo credentials).
_WITH_REASON = frozenset({P, C})

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


def api_rule(exc: ApiError) -> ErrorRule:
    return next((rule for rule in API_ERROR_RULES if rule.matches(exc)), _UNEXPECTED)


def classify_api_error(exc: ApiError) -> ConnectorError:
    """Translate an error reply of the cluster through `API_ERROR_RULES`."""
    status = int(exc.meta.status)
    types = error_types(exc.body)
    rule = api_rule(exc)
    reason = error_reason(exc.body)
    with_reason = reason and rule.category in _WITH_REASON and rule is not _UNEXPECTED
    message = f"{rule.message}: {reason}" if with_reason else rule.message
    detail = f"{type(exc).__module__}.{type(exc).__qualname__}: HTTP {status} {', '.join(types) or '-'}"
    if reason and rule.category is not ErrorCategory.SECURITY:  # security replies may echo credentials
        detail += f": {reason}"
    return error_class(rule.category)(
        message, code=rule.code, retry_after=retry_after(exc.meta.headers), detail=detail
    )
