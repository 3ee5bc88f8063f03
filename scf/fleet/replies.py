"""The one builder of failure replies, and the one reader of them.

Every failed answer a dispatcher, worker or dead-letter desk sends is built by `failure_reply`: an
operation (`operation.execute`, or anything that carries an operation id) gets an `OperationResult` under
its operation id; any other call gets a `FailedReply`. The id is picked in one place (`operation_id_of`):
the one given, else the message's id, else its correlation id, else `op_unknown`.
"""

from __future__ import annotations

from aio_pika.abc import AbstractIncomingMessage

from scf.fleet import amqp
from scf.schemas.control import FailedReply, MessageType
from scf.schemas.errors import ConnectorError, ErrorInfo, error_from_info
from scf.schemas.operation import OperationResult

UNKNOWN_OPERATION_ID = "op_unknown"


def operation_id_of(message: AbstractIncomingMessage, operation_id: str | None = None) -> str:
    """The id a failure is answered under: the operation's own, else what the message says."""
    return operation_id or message.message_id or message.correlation_id or UNKNOWN_OPERATION_ID


def failed_result(
    message: AbstractIncomingMessage, error: ConnectorError | ErrorInfo, operation_id: str | None = None
) -> OperationResult:
    """The failed result of an operation, under `operation_id_of`."""
    return OperationResult.failed(operation_id_of(message, operation_id), error)


def failure_reply(
    message: AbstractIncomingMessage, error: ConnectorError | ErrorInfo, operation_id: str | None = None
) -> bytes:
    """The encoded failed reply to `message`: an operation's result, or a control-plane `FailedReply`."""
    if operation_id or message.type == MessageType.OPERATION_EXECUTE:
        return amqp.encode(failed_result(message, error, operation_id))
    return amqp.encode(FailedReply.of(error if isinstance(error, ConnectorError) else error_from_info(error)))


def failure_of(body: bytes) -> ErrorInfo | None:
    """The error of a failed reply body (`{"status": "failed", "error": {...}}`), else None."""
    answer = amqp.decode(body)
    error = answer.get("error") if isinstance(answer, dict) and answer.get("status") == "failed" else None
    return ErrorInfo.model_validate(error) if isinstance(error, dict) else None
