"""Operation requests and results: the data-plane half of the wire contract (docs/architecture.md).

`OperationRequest` is what callers send; `OperationEnvelope` is what the dispatcher forwards to a worker
(the request plus the facts it resolved: type, deadline, registry version); `OperationResult` is the one
reply every request gets.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from scf.schemas.connection import SERVICE_NAME_PATTERN
from scf.schemas.errors import ConnectorError, ErrorCode, ErrorInfo, PermanentError
from scf.schemas.validation import parse_model

OPERATION_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
OPERATION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
MIN_TIMEOUT_SECONDS = 0.001
#: One run of an operation stays well under RabbitMQ's consumer ack timeout (30 min by default), since a
#: worker acks only after the reply: longer work goes in pages (`page_token`) or sink batches, each its
#: own request. Raising this needs the broker's `consumer_timeout` raised with it.
MAX_TIMEOUT_SECONDS = 1500.0


def new_operation_id() -> str:
    return f"op_{uuid.uuid4().hex}"


class OperationRequest(BaseModel):
    """The spec's execute body. `connection_id` is accepted as an alias of `service_name`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    service_name: str | None = Field(
        default=None,
        pattern=SERVICE_NAME_PATTERN,
        validation_alias=AliasChoices("service_name", "connection_id"),
    )
    operation: str = Field(pattern=OPERATION_PATTERN)
    data_format: str = Field(default="json", pattern=r"^[a-z0-9_-]{1,32}$")
    data: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "The operation's payload: records or rows, documents, vectors and their metadata, messages, "
            'object bodies, the file to ingest. PostgreSQL `insert` takes `{"records": [{column: value}, '
            '...]}` or, column-oriented, `{"columns": [name, ...], "rows": [[value, ...], ...]}`. Every '
            "operation's shape: docs/operations.md and `GET /connector-types`."
        ),
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "What the operation acts on and how: the table, index, collection, queue, key or endpoint, the "
            "query, options and `page_size`. PostgreSQL `insert` takes `parameters.table` (the spec's "
            "`data.table_name` is accepted too)."
        ),
    )
    operation_id: str | None = Field(default=None, pattern=OPERATION_ID_PATTERN)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=256)
    timeout: float | None = Field(default=None, ge=MIN_TIMEOUT_SECONDS, le=MAX_TIMEOUT_SECONDS)
    page_token: str | None = Field(default=None, max_length=4096)
    no_worker: Literal["wait", "fail"] | None = Field(
        default=None,
        description=(
            "With no live worker for the connector's type: `wait` in its queue until the deadline (so an "
            "autoscaler can start one), or `fail` at once with `NO_WORKER`. Default: the fleet's "
            "`SCF_NO_WORKER` (`wait`)."
        ),
    )

    def with_defaults(self, service_name: str | None = None) -> OperationRequest:
        """A copy with the service name and an operation id filled in."""
        update: dict[str, Any] = {}
        if service_name is not None and service_name != self.service_name:
            update["service_name"] = service_name
        if self.operation_id is None:
            update["operation_id"] = new_operation_id()
        return self.model_copy(update=update) if update else self


UNPARSED_OPERATION_ID = "op_unparsed"


def request_digest(request: OperationRequest) -> str:
    """What "the same request" means for an idempotency key: operation, data and parameters."""
    body = [request.operation, request.data, request.parameters]
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@lru_cache(maxsize=4096)
def owner_tag(owner: str) -> str:
    """The mark of the principal an operation id belongs to, at the head of its claim (access control:
    stored results and cancels are scoped to it). A digest: a principal name may be any text."""
    return hashlib.sha256(owner.encode("utf-8", "backslashreplace")).hexdigest()[:16]


def owned_identity(owner: str | None, identity: str) -> str:
    return identity if owner is None else f"{owner_tag(owner)}:{identity}"


def owner_matches(owner: str, claim: str) -> bool:
    return claim.startswith(owner_tag(owner) + ":")


def delivery_identity(reply_to: str | None, correlation_id: str | None, request: OperationRequest) -> str:
    """Which request holds an operation id.

    A keyed request is its connector and idempotency key: a caller asking again with the same key (after
    IN_PROGRESS, or after its reply was lost to a broker restart) is the same request, and what repeats
    is decided by the key. Otherwise the correlation id, which every redelivery, delayed retry,
    dead-letter replay and reconnection re-publish keeps (the reply queue may be re-declared under a new
    name after a broker restart, so it is not part of it); a message with neither is its content.
    `reply_to` stays in the signature for callers; it no longer decides anything.
    """
    if request.idempotency_key:
        text = f"k\x00{request.service_name or ''}\x00{request.idempotency_key}"
        return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()
    if correlation_id:
        text = f"c\x00{correlation_id}"
        return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()
    return "d" + request_digest(request)


def operation_id_in_use(operation_id: str) -> PermanentError:
    """The refusal of a request whose operation id another request holds."""
    return PermanentError(
        f"operation_id {operation_id!r} is already in use by another request; choose a new one (or "
        "fetch that one's result with operation.result)",
        code=ErrorCode.OPERATION_ID_IN_USE,
    )


def prepare_request(request: OperationRequest | Mapping[str, Any], service_name: str) -> OperationRequest:
    """The request validated, addressed to `service_name` and given an operation id.

    Raises `permanent` INVALID_REQUEST for a bad body or one that names another service.
    """
    parsed = request if isinstance(request, OperationRequest) else parse_model(OperationRequest, request)
    if parsed.service_name not in (None, service_name):
        raise PermanentError(
            f"the request names service {parsed.service_name!r} but was sent to {service_name!r}",
            code=ErrorCode.INVALID_REQUEST,
        )
    return parsed.with_defaults(service_name)


class OperationEnvelope(BaseModel):
    """What the dispatcher publishes to `scf.ops`: the request and what it resolved for the worker."""

    model_config = ConfigDict(extra="forbid")

    request: OperationRequest
    service_type: str
    connector_version: int = Field(ge=0)
    deadline: float = Field(description="absolute Unix time after which the request is not executed")
    accepted_at: float = Field(default_factory=time.time)

    def remaining(self, now: float | None = None) -> float:
        return self.deadline - (time.time() if now is None else now)

    def capped(self, now: float) -> OperationEnvelope:
        """This envelope with its deadline at most MAX_TIMEOUT_SECONDS after `now` (when a worker took
        it): a raw publisher's far-future deadline gets no more time than any request may."""
        latest = now + MAX_TIMEOUT_SECONDS
        return self if self.deadline <= latest else self.model_copy(update={"deadline": latest})


class OperationOutcome(BaseModel):
    """What a connector returns from a successful operation; the factory adds id and timing."""

    model_config = ConfigDict(extra="forbid")

    records_processed: int = 0
    records_affected: int = 0
    result_data: Any = None
    next_page_token: str | None = None
    replayed: bool = Field(
        default=False, description="true when an idempotency key matched: the stored result, nothing re-run"
    )


class OperationResult(BaseModel):
    """The spec's execute response, plus `error` on failure and `next_page_token` for paged results."""

    operation_id: str
    status: Literal["success", "failed"]
    records_processed: int = 0
    records_affected: int = 0
    execution_time: float = 0.0
    result_data: Any = None
    error: ErrorInfo | None = None
    next_page_token: str | None = None
    replayed: bool = False

    @classmethod
    def succeeded(
        cls, operation_id: str, outcome: OperationOutcome, execution_time: float
    ) -> OperationResult:
        return cls(
            operation_id=operation_id,
            status="success",
            records_processed=outcome.records_processed,
            records_affected=outcome.records_affected,
            execution_time=round(execution_time, 6),
            result_data=outcome.result_data,
            next_page_token=outcome.next_page_token,
            replayed=outcome.replayed,
        )

    @classmethod
    def failed(
        cls, operation_id: str, error: ConnectorError | ErrorInfo, execution_time: float = 0.0
    ) -> OperationResult:
        info = error.to_info() if isinstance(error, ConnectorError) else error
        return cls(
            operation_id=operation_id, status="failed", execution_time=round(execution_time, 6), error=info
        )

    @property
    def ok(self) -> bool:
        return self.status == "success"


TestVerdict = Literal["passed", "failed", "skipped"]
SKIPPED_VERDICTS: dict[str, TestVerdict] = {
    "connection_test": "skipped",
    "authentication_test": "skipped",
    "permissions_test": "skipped",
}


class ConnectionTestResult(BaseModel):
    """The spec's `POST /connectors/{name}/test` response."""

    service_name: str
    status: Literal["success", "failed"]
    response_time: float
    test_results: dict[str, TestVerdict] = Field(default_factory=lambda: dict(SKIPPED_VERDICTS))
    error: ErrorInfo | None = None
