"""The Elasticsearch error table, on errors built exactly as elasticsearch-py builds them from a reply."""

from __future__ import annotations

from typing import Any

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    BadRequestError,
    ConflictError,
    ConnectionError,
    ConnectionTimeout,
    NotFoundError,
    SerializationError,
    SSLError,
    UnsupportedProductError,
)

from scf.connectors.elasticsearch import ElasticsearchConnector
from scf.connectors.elasticsearch.errors import API_ERROR_RULES, Reply, retry_after, safe_reason
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConnectorError, ErrorCategory

CANARY = "es-canary-secret-9d2f"


def connector() -> ElasticsearchConnector:
    return ElasticsearchConnector(
        ServiceConnection.model_validate(
            {
                "service_type": "elasticsearch",
                "service_name": "errors",
                "host": "127.0.0.1",
                "username": "elastic",
                "password": CANARY,
            }
        )
    )


def reply_error(
    cls: type[ApiError], status: int, body: Any, headers: dict[str, str] | None = None
) -> ApiError:
    """What `AsyncElasticsearch.perform_request` raises for an error reply (see its `_raise_error` path)."""
    meta = ApiResponseMeta(
        status=status,
        http_version="1.1",
        headers=HttpHeaders(headers or {}),
        duration=0.01,
        node=NodeConfig("http", "127.0.0.1", 9200),
    )
    message = (
        body["error"]["type"] if isinstance(body, dict) and isinstance(body.get("error"), dict) else str(body)
    )
    return cls(message=message, meta=meta, body=body)


def es_error(error_type: str, reason: str, status: int, root: str | None = None) -> dict[str, Any]:
    cause = {"type": root or error_type, "reason": reason}
    return {"error": {"root_cause": [cause], "type": error_type, "reason": reason}, "status": status}


def translate(exc: BaseException) -> ConnectorError:
    return connector().translate(exc)


def test_401_is_a_security_error_that_hides_everything() -> None:
    body = es_error("security_exception", f"unable to authenticate user [elastic] with {CANARY}", 401)
    error = translate(reply_error(AuthenticationException, 401, body, {"WWW-Authenticate": "Basic"}))

    assert (error.category, error.code) == (ErrorCategory.SECURITY, "AUTHENTICATION_FAILED")
    assert not error.retryable
    info = error.to_info().model_dump_json()
    assert CANARY not in info
    assert CANARY not in (error.detail or "")
    assert error.to_info().message == "access denied"


def test_403_is_a_permission_error() -> None:
    body = es_error("security_exception", "action [indices:data/write/bulk] is unauthorized", 403)
    error = translate(reply_error(AuthorizationException, 403, body))

    assert (error.category, error.code) == (ErrorCategory.SECURITY, "PERMISSION_DENIED")


def test_a_missing_index_is_a_configuration_error_naming_it() -> None:
    body = es_error("index_not_found_exception", "no such index [books]", 404)
    error = translate(reply_error(NotFoundError, 404, body))

    assert (error.category, error.code) == (ErrorCategory.CONFIGURATION, "NOT_FOUND")
    assert "no such index [books]" in error.message


@pytest.mark.parametrize(
    ("cls", "status", "body", "category", "code"),
    [
        (
            NotFoundError,
            404,
            es_error("document_missing_exception", "[7]: document missing", 404),
            "permanent",
            "NOT_FOUND",
        ),
        (NotFoundError, 404, {"_index": "books", "_id": "7", "found": False}, "permanent", "NOT_FOUND"),
        (
            NotFoundError,
            404,
            es_error("search_context_missing_exception", "No search context", 404),
            "permanent",
            "NOT_FOUND",
        ),
        (
            BadRequestError,
            400,
            es_error("resource_already_exists_exception", "index [b] exists", 400),
            "permanent",
            "CONSTRAINT_VIOLATION",
        ),
        (
            BadRequestError,
            400,
            es_error("invalid_index_name_exception", "Invalid index name", 400),
            "permanent",
            "INVALID_IDENTIFIER",
        ),
        (
            BadRequestError,
            400,
            es_error("parsing_exception", "unknown query [bogus]", 400),
            "permanent",
            "QUERY_FAILED",
        ),
        (
            BadRequestError,
            400,
            es_error(
                "search_phase_execution_exception",
                "all shards failed",
                400,
                root="document_parsing_exception",
            ),
            "permanent",
            "INVALID_DATA",
        ),
        (
            ConflictError,
            409,
            es_error("version_conflict_engine_exception", "version conflict", 409),
            "permanent",
            "CONSTRAINT_VIOLATION",
        ),
        (ApiError, 413, "Request Entity Too Large", "permanent", "LIMIT_EXCEEDED"),
        (ApiError, 422, es_error("x_content_parse_exception", "bad", 422), "permanent", "INVALID_DATA"),
        (
            ApiError,
            429,
            es_error("es_rejected_execution_exception", "queue full", 429),
            "resource",
            "LIMIT_EXCEEDED",
        ),
        (ApiError, 500, es_error("null_pointer_exception", "oops", 500), "transient", "QUERY_FAILED"),
        (ApiError, 502, "Bad Gateway", "transient", "QUERY_FAILED"),
        (
            ApiError,
            503,
            es_error("cluster_block_exception", "blocked", 503),
            "transient",
            "CONNECTION_FAILED",
        ),
        (ApiError, 504, "Gateway Timeout", "transient", "TIMEOUT"),
        (ApiError, 418, "teapot", "permanent", "QUERY_FAILED"),
    ],
)
def test_replies_are_classified_by_status_and_error_type(
    cls: type[ApiError], status: int, body: Any, category: str, code: str
) -> None:
    error = translate(reply_error(cls, status, body))

    assert (error.category.value, error.code) == (category, code)
    assert error.retryable == (category in ("transient", "resource"))


def test_429_honours_retry_after() -> None:
    body = es_error("es_rejected_execution_exception", "rejected", 429)
    error = translate(reply_error(ApiError, 429, body, {"Retry-After": "7"}))

    assert error.retry_after == 7.0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({}, None),
        ({"retry-after": "2.5"}, 2.5),
        ({"Retry-After": "Wed, 21 Oct"}, None),
        ({"Retry-After": "-1"}, None),
    ],
)
def test_retry_after_reads_seconds_only(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after(headers) == seconds


def test_request_errors_carry_the_clusters_reason_without_document_values() -> None:
    reason = (
        "failed to parse field [pin] of type [integer] in document with id '1'. "
        "Preview of field's value: '4321'"
    )
    error = translate(reply_error(BadRequestError, 400, es_error("document_parsing_exception", reason, 400)))

    assert "failed to parse field [pin]" in error.message
    assert "4321" not in error.message
    assert "4321" not in (error.detail or "")


@pytest.mark.parametrize(
    ("exc", "category", "code"),
    [
        (ConnectionError("Connection refused"), "transient", "CONNECTION_FAILED"),
        (ConnectionTimeout("timed out"), "transient", "TIMEOUT"),
        (SSLError("certificate verify failed"), "configuration", "INVALID_CONFIG"),
        (SerializationError("cannot serialize"), "permanent", "INVALID_DATA"),
        (TimeoutError(), "transient", "TIMEOUT"),
        (RuntimeError("surprise"), "permanent", "INTERNAL"),
    ],
)
def test_transport_failures_are_classified_by_class(exc: BaseException, category: str, code: str) -> None:
    error = translate(exc)

    assert (error.category.value, error.code) == (category, code)


def test_a_server_that_is_not_elasticsearch_is_a_configuration_error() -> None:
    exc = reply_error(UnsupportedProductError, 200, {"name": "something else"})

    error = translate(exc)

    assert (error.category, error.code) == (ErrorCategory.CONFIGURATION, "INVALID_CONFIG")


def test_every_status_row_is_reachable() -> None:
    # A row hidden behind an earlier, broader row would never apply.
    replies = [rule.when for rule in API_ERROR_RULES]
    assert all(isinstance(r, Reply) for r in replies)
    for position, rule in enumerate(replies):
        assert isinstance(rule, Reply)
        earlier = [e for e in replies[:position] if isinstance(e, Reply)]
        shadowed = any(
            set(rule.statuses) <= set(e.statuses)
            and (e.error_type is None or e.error_type == rule.error_type)
            for e in earlier
        )
        assert not shadowed, rule


def test_safe_reason_is_bounded() -> None:
    assert len(safe_reason("x" * 5000)) == 300
    assert safe_reason(None) == ""
