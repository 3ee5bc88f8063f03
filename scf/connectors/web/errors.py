"""Error tables of guarded HTTP exchanges (the API connector, files by URL).

httpx failures by class, HTTP replies by status, TLS failures by reason.

429 (and 503 with Retry-After) is a `resource` error carrying `retry_after`, so the fleet's retry waits
at least that long; other 5xx are `transient`; 401/403 `security`; other 4xx `permanent`. Every text
taken from a reply passes through a `Redactor` that masks the connector's secrets first.
"""

from __future__ import annotations

import email.utils
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from scf.connectors.base import ErrorRule, P, R, S, T, classify
from scf.connectors.web.redaction import Redactor, body_excerpt
from scf.schemas.errors import ConfigurationError, ConnectorError, ErrorCategory, ErrorCode, error_class

#: Failures without an HTTP reply, most specific first.
HTTP_ERROR_RULES: tuple[ErrorRule, ...] = (
    ErrorRule(httpx.ConnectTimeout, T, ErrorCode.TIMEOUT, "connecting to the API timed out"),
    ErrorRule(httpx.TimeoutException, T, ErrorCode.TIMEOUT, "the API did not answer in time"),
    ErrorRule(httpx.ConnectError, T, ErrorCode.CONNECTION_FAILED, "cannot reach the API"),
    ErrorRule(httpx.RemoteProtocolError, T, ErrorCode.CONNECTION_FAILED, "the API broke off the exchange"),
    ErrorRule(httpx.NetworkError, T, ErrorCode.CONNECTION_FAILED, "the connection to the API failed"),
    ErrorRule(httpx.InvalidURL, P, ErrorCode.INVALID_REQUEST, "the URL is not valid"),
    ErrorRule(httpx.DecodingError, P, ErrorCode.INVALID_DATA, "the API's response could not be decoded"),
    # the client refused to send what the request asked for: the request's fault, not the API's
    ErrorRule(httpx.LocalProtocolError, P, ErrorCode.INVALID_REQUEST, "the request cannot be sent over HTTP"),
    ErrorRule(httpx.UnsupportedProtocol, P, ErrorCode.INVALID_REQUEST, "the URL's scheme is not HTTP(S)"),
    ErrorRule(httpx.HTTPError, T, ErrorCode.CONNECTION_FAILED, "the exchange with the API failed"),
)

#: TLS alerts a server sends when it refuses the client certificate (or its absence).
CLIENT_CERT_REFUSED = frozenset(
    {
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "TLSV1_ALERT_UNKNOWN_CA",
        "TLSV1_ALERT_ACCESS_DENIED",
    }
)


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def translate_transport_error(exc: BaseException) -> ConnectorError:
    """Typed error for a failure without a reply: TLS trouble by its reason, the rest by the table."""
    if isinstance(exc, ConnectorError):
        return exc
    tls = _ssl_cause(exc)
    if isinstance(tls, ssl.SSLCertVerificationError):
        return ConfigurationError(
            "the API's TLS certificate was not accepted (check the URL's hostname and custom_config.ca_file)",
            code=ErrorCode.INVALID_CONFIG,
            detail=f"{tls.reason}: {tls.verify_message}",
        )
    if tls is not None and tls.reason in CLIENT_CERT_REFUSED:
        return error_class(S)(
            "the API refused the client certificate", code=ErrorCode.AUTHENTICATION_FAILED, detail=tls.reason
        )
    if tls is not None:
        return ConfigurationError(
            "the TLS handshake with the API failed", code=ErrorCode.INVALID_CONFIG, detail=str(tls.reason)
        )
    return classify(exc, HTTP_ERROR_RULES)


@dataclass(frozen=True)
class StatusRule:
    statuses: range
    category: ErrorCategory
    code: ErrorCode
    message: str
    with_body: bool = True


def _status(code: int) -> range:
    return range(code, code + 1)


STATUS_RULES: tuple[StatusRule, ...] = (
    StatusRule(_status(401), S, ErrorCode.AUTHENTICATION_FAILED, "the API refused the credentials", False),
    StatusRule(_status(403), S, ErrorCode.PERMISSION_DENIED, "the API denied access", False),
    StatusRule(_status(404), P, ErrorCode.NOT_FOUND, "the API endpoint was not found"),
    StatusRule(_status(410), P, ErrorCode.NOT_FOUND, "the API endpoint is gone"),
    StatusRule(_status(405), P, ErrorCode.INVALID_REQUEST, "the API does not allow this method"),
    StatusRule(_status(408), T, ErrorCode.TIMEOUT, "the API timed out reading the request", False),
    StatusRule(_status(409), P, ErrorCode.CONSTRAINT_VIOLATION, "the API reported a conflict"),
    StatusRule(_status(413), P, ErrorCode.LIMIT_EXCEEDED, "the request is too large for the API"),
    StatusRule(_status(429), R, ErrorCode.LIMIT_EXCEEDED, "the API is rate limiting (HTTP 429)", False),
    StatusRule(range(400, 500), P, ErrorCode.INVALID_REQUEST, "the API refused the request"),
    StatusRule(_status(504), T, ErrorCode.TIMEOUT, "the API's gateway timed out", False),
    StatusRule(range(500, 600), T, ErrorCode.CONNECTION_FAILED, "the API failed the request", False),
    StatusRule(
        range(300, 400),
        P,
        ErrorCode.INVALID_REQUEST,
        "the API redirected, but redirects are off (custom_config.follow_redirects) or lack a Location",
        False,
    ),
)
_UNEXPECTED = StatusRule(range(0), P, ErrorCode.INTERNAL, "unexpected reply from the API", False)
_RATE_LIMITED_503 = StatusRule(
    _status(503), R, ErrorCode.LIMIT_EXCEEDED, "the API is overloaded (HTTP 503 with Retry-After)", False
)

MAX_RETRY_AFTER = 3600.0


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from `Retry-After`: delta-seconds or an HTTP date; capped at an hour, None if unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def status_rule(status: int, headers: Mapping[str, str]) -> StatusRule:
    if status == 503 and retry_after(headers.get("retry-after")) is not None:
        return _RATE_LIMITED_503
    for rule in STATUS_RULES:
        if status in rule.statuses:
            return rule
    return _UNEXPECTED


def status_error(
    status: int, headers: Mapping[str, str], content: bytes, redact: Redactor, where: str
) -> ConnectorError:
    """The typed error for an HTTP error reply; `where` is a URL already stripped of secrets."""
    rule = status_rule(status, headers)
    excerpt = body_excerpt(content, redact) if content else ""
    message = f"{rule.message} (HTTP {status})"
    if rule.with_body and excerpt:
        message += f": {excerpt}"
    detail = f"HTTP {status} from {where}"
    if excerpt and rule.category is not ErrorCategory.SECURITY:
        detail += f": {excerpt}"
    wait = retry_after(headers.get("retry-after")) if rule.category in (R, T) else None
    return error_class(rule.category)(message, code=rule.code, retry_after=wait, detail=detail)
