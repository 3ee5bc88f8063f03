"""The Qdrant error table: remote answers by status / gRPC code, local mode by what it really raises.

Remote errors are built as qdrant-client builds them (a real Qdrant server is not needed to know what a
401 looks like); local-mode errors are provoked from qdrant-client's real in-memory local mode, so a
client upgrade that rewords them fails here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from scf.connectors.base import classify
from scf.connectors.qdrant.errors import QDRANT_ERROR_RULES, refine
from scf.schemas.errors import ConnectorError, ErrorCategory

CANARY = "qdrant-api-key-canary-93d0"


def translate(exc: BaseException) -> ConnectorError:
    return refine(classify(exc, QDRANT_ERROR_RULES), exc)


def response(status: int, error: str = "", headers: dict[str, str] | None = None) -> UnexpectedResponse:
    body = json.dumps({"status": {"error": error}}).encode() if error else b""
    return UnexpectedResponse(status, "reason", body, httpx.Headers(headers or {}))


def rpc(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="details")


@pytest.mark.parametrize(
    ("exc", "category", "code"),
    [
        (response(401, f"Invalid api-key {CANARY}"), "security", "AUTHENTICATION_FAILED"),
        (response(403, "read-only key"), "security", "PERMISSION_DENIED"),
        (response(404, "Not found: Collection `x` doesn't exist!"), "configuration", "NOT_FOUND"),
        (response(409, "Collection `x` already exists!"), "permanent", "CONSTRAINT_VIOLATION"),
        (
            response(400, "Wrong input: Vector dimension error: expected dim: 3, got 2"),
            "permanent",
            "INVALID_DATA",
        ),
        (response(400, "Format error in JSON body"), "permanent", "QUERY_FAILED"),
        (response(422, "unprocessable"), "permanent", "QUERY_FAILED"),
        (response(413), "permanent", "LIMIT_EXCEEDED"),
        (response(429), "resource", "LIMIT_EXCEEDED"),
        (ResourceExhaustedResponse("slow down", 3), "resource", "LIMIT_EXCEEDED"),
        (response(500), "transient", "CONNECTION_FAILED"),
        (response(503), "transient", "CONNECTION_FAILED"),
        (ResponseHandlingException(httpx.ConnectError("refused")), "transient", "CONNECTION_FAILED"),
        (ResponseHandlingException(httpx.ReadTimeout("slow")), "transient", "TIMEOUT"),
        (httpx.ConnectError("refused"), "transient", "CONNECTION_FAILED"),
        (rpc(grpc.StatusCode.UNAVAILABLE), "transient", "CONNECTION_FAILED"),
        (rpc(grpc.StatusCode.DEADLINE_EXCEEDED), "transient", "TIMEOUT"),
        (rpc(grpc.StatusCode.UNAUTHENTICATED), "security", "AUTHENTICATION_FAILED"),
        (rpc(grpc.StatusCode.PERMISSION_DENIED), "security", "PERMISSION_DENIED"),
        (rpc(grpc.StatusCode.NOT_FOUND), "configuration", "NOT_FOUND"),
        (rpc(grpc.StatusCode.INVALID_ARGUMENT), "permanent", "QUERY_FAILED"),
        (rpc(grpc.StatusCode.RESOURCE_EXHAUSTED), "resource", "LIMIT_EXCEEDED"),
        (PermissionError("read-only file system"), "configuration", "INVALID_CONFIG"),
        (ConnectionResetError("reset"), "transient", "CONNECTION_FAILED"),
    ],
)
def test_remote_and_os_errors_by_status_and_code(exc: BaseException, category: str, code: str) -> None:
    error = translate(exc)

    assert (error.category.value, error.code) == (category, code)
    assert error.retryable is (category in ("transient", "resource"))


def test_security_errors_say_nothing_of_the_server_text_or_key() -> None:
    error = translate(response(401, f"Invalid api-key {CANARY}"))

    assert error.message == "authentication failed"
    assert error.to_info().message == "access denied"
    assert CANARY not in error.to_info().model_dump_json()


def test_refused_requests_carry_the_servers_words() -> None:
    error = translate(response(400, "Wrong input: Vector dimension error: expected dim: 384, got 3"))

    assert "expected dim: 384, got 3" in error.message


def test_rate_limits_honour_retry_after() -> None:
    assert translate(response(429, headers={"Retry-After": "7"})).retry_after == 7.0
    assert translate(ResourceExhaustedResponse("slow down", 3)).retry_after == 3.0
    assert translate(response(429, headers={"Retry-After": "soon"})).retry_after is None


# --- local mode, provoked for real ------------------------------------------------------------------


@pytest.fixture
def local() -> Any:
    client = QdrantClient(location=":memory:")
    client.create_collection("c", vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
    yield client
    client.close()


def provoke(action: Callable[[], object]) -> BaseException:
    try:
        action()
    except Exception as exc:
        return exc
    raise AssertionError("local mode accepted it")


def test_local_missing_collection_is_a_configuration_error(local: QdrantClient) -> None:
    exc = provoke(lambda: local.count("missing"))

    assert (translate(exc).category, translate(exc).code) == (ErrorCategory.CONFIGURATION, "NOT_FOUND")


def test_local_dimension_mismatch_is_permanent_invalid_data(local: QdrantClient) -> None:
    exc = provoke(lambda: local.upsert("c", points=[models.PointStruct(id=1, vector=[1.0, 2.0])]))

    error = translate(exc)
    assert (error.category, error.code) == (ErrorCategory.PERMANENT, "INVALID_DATA")
    assert "expected dim: 3, got 2" in error.message


def test_local_existing_collection_is_a_constraint_violation(local: QdrantClient) -> None:
    exc = provoke(
        lambda: local.create_collection("c", vectors_config=models.VectorParams(size=3, distance="Dot"))
    )

    assert translate(exc).code == "CONSTRAINT_VIOLATION"


def test_local_bad_point_id_is_permanent(local: QdrantClient) -> None:
    exc = provoke(lambda: local.upsert("c", points=[models.PointStruct(id="abc", vector=[1.0, 2.0, 3.0])]))

    assert translate(exc).category is ErrorCategory.PERMANENT


def test_local_closed_client_is_transient(local: QdrantClient) -> None:
    local.close()

    exc = provoke(lambda: local.get_collections())

    assert (translate(exc).category, translate(exc).code) == (ErrorCategory.TRANSIENT, "CONNECTION_FAILED")


def test_local_path_held_by_another_client_is_a_configuration_error(tmp_path: Path) -> None:
    owner = QdrantClient(path=str(tmp_path))
    try:
        exc = provoke(lambda: QdrantClient(path=str(tmp_path)))
    finally:
        owner.close()

    error = translate(exc)
    assert (error.category, error.code) == (ErrorCategory.CONFIGURATION, "INVALID_CONFIG")
    assert "one process owns a local path" in error.message
