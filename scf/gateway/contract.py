"""The OpenAPI document made as strict as the server: what FastAPI's generated document leaves out.

FastAPI documents each route from its signature; what the gateway enforces elsewhere is added here, so a
request valid by the document is one the server accepts (checked by schemathesis in
tests/integration/test_gateway_schemathesis.py):

- every protected route may answer 401, 403 and 429 (the access guard), every route with a body 400
  (malformed JSON) and 413, and a 422 is the typed `FailedReply`, never FastAPI's `HTTPValidationError`;
- `service_type` is one of the types this build knows (plugins included);
- on path-scoped routes the path names the connector: the execute body documents neither `service_name`
  nor `connection_id`, and `idempotency_key` travels in the `Idempotency-Key` header; the update body's
  `service_name` is optional. The server still accepts them in the body (the spec's shape) when they
  agree with the path and the header.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

from fastapi import Request

from scf.schemas.connection_rules import declare_connection_rules
from scf.schemas.errors import ErrorCode, PermanentError

SCHEMAS = "#/components/schemas/"
EXECUTE_PATH = "/connectors/{service_name}/execute"
UPDATE_PATH = "/connectors/{service_name}"
#: The execute body over HTTP: the path and the Idempotency-Key header carry these.
PATH_SCOPED_EXECUTE_FIELDS = ("service_name", "connection_id", "idempotency_key")
GUARD_STATUSES = {"401": "Unauthorized", "403": "Forbidden", "429": "Too Many Requests"}
BODY_STATUSES = {"400": "Bad Request", "413": "Content Too Large"}


def tighten(document: dict[str, Any]) -> dict[str, Any]:
    """Add what the server enforces to FastAPI's document (in place; answered for chaining)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    declare_connection_rules(schemas)
    _path_scoped_bodies(document, schemas)
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                _declare_refusals(operation, _refusal_schema(method, path))
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return document


def _refusal_schema(method: str, path: str) -> dict[str, str]:
    """A refusal's body, as `scf.gateway.errors.refusal_body` builds it."""
    name = "OperationResult" if method == "post" and path.endswith("/execute") else "FailedReply"
    return {"$ref": SCHEMAS + name}


def _declare_refusals(operation: dict[str, Any], schema: dict[str, str]) -> None:
    responses: dict[str, Any] = operation["responses"]
    refusals: dict[str, str] = {"422": "Unprocessable Content"}
    if operation.get("security"):
        refusals |= GUARD_STATUSES
    if "requestBody" in operation:
        refusals |= BODY_STATUSES
    for status, description in refusals.items():
        answer = responses.setdefault(status, {"description": description})
        answer["content"] = {"application/json": {"schema": schema}}


def _path_scoped_bodies(document: dict[str, Any], schemas: dict[str, Any]) -> None:
    paths = document.get("paths", {})
    execute = paths.get(EXECUTE_PATH, {}).get("post")
    if execute is not None and "OperationRequest" in schemas:
        body = copy.deepcopy(schemas["OperationRequest"])
        for name in PATH_SCOPED_EXECUTE_FIELDS:
            body["properties"].pop(name, None)
        body["title"] = "ExecuteRequest"
        body["description"] = (
            "The execute body over HTTP: the path names the connector and the Idempotency-Key header "
            "carries the idempotency key. The spec's `connection_id`/`service_name` and `idempotency_key` "
            "are still accepted in the body when they agree with the path and the header."
        )
        schemas["ExecuteRequest"] = body
        _point_body(execute, "ExecuteRequest")
    update = paths.get(UPDATE_PATH, {}).get("put")
    if update is not None and "ServiceConnection" in schemas:
        body = copy.deepcopy(schemas["ServiceConnection"])
        body["required"] = [name for name in body.get("required", []) if name != "service_name"]
        body["properties"].pop("service_name", None)
        body["title"] = "ConnectorUpdate"
        body["description"] = (
            "A connector's new configuration; the path names it (a `service_name` in the body is accepted "
            "when it is the path's)."
        )
        schemas["ConnectorUpdate"] = body
        _point_body(update, "ConnectorUpdate")


def _point_body(operation: dict[str, Any], name: str) -> None:
    operation["requestBody"]["content"]["application/json"]["schema"] = {"$ref": SCHEMAS + name}


def single_valued_query(request: Request) -> None:
    """Every query parameter the gateway reads takes one value: `?a=1&a=2` is refused, not half-read."""
    counts = Counter(key for key, _ in request.query_params.multi_items())  # linear: 64 KiB of `a=&`
    repeated = sorted(key for key, seen in counts.items() if seen > 1)
    if repeated:
        raise PermanentError(
            f"invalid request: query.{repeated[0][:64]}: give it once", code=ErrorCode.INVALID_REQUEST
        )
