"""The RabbitMQ error table: what aio-pika/aiormq raise -> category and code, most specific row first.

Order follows aiormq's tree (PublishError is a DeliveryError; every channel error is a ChannelClosed).
A vhost refusal in the handshake surfaces as an InvalidFrameError naming `Connection.Close`, a TLS failure
as an AMQPConnectionError caused by an `ssl.SSLError`. Broker reply texts go into request errors only.
"""

from __future__ import annotations

import ssl

from aiormq.exceptions import (
    AMQPConnectionError,
    AuthenticationError,
    ChannelAccessRefused,
    ChannelClosed,
    ChannelInvalidStateError,
    ChannelLockedResource,
    ChannelNotFoundEntity,
    ChannelPreconditionFailed,
    ConnectionClosed,
    ConnectionCommandInvalid,
    ConnectionFrameError,
    ConnectionNotAllowed,
    ConnectionNotImplemented,
    ConnectionResourceError,
    ConnectionSyntaxError,
    ConnectionUnexpectedFrame,
    DeliveryError,
    IncompatibleProtocolError,
    InvalidFrameError,
    ProbableAuthenticationError,
    PublishError,
)

from scf.connectors.base import C, ErrorRule, P, R, S, T, classify
from scf.schemas.errors import ConnectorError, ErrorCategory, ErrorCode, ResourceError, TransientError

MAX_REPLY_TEXT = 300


def vhost_refused(exc: BaseException) -> bool:
    """Connection.Open answered by Connection.Close 530: no such vhost, or no permission on it."""
    if isinstance(exc, ConnectionNotAllowed):
        return True
    text = str(exc)
    return "Connection.OpenOk" in text and "Connection.Close" in text


#: Connection.Close 501-505/540: the frames sent were malformed, illegal or not implemented.
_PROTOCOL_REFUSALS = (
    ConnectionSyntaxError,
    ConnectionFrameError,
    ConnectionCommandInvalid,
    ConnectionUnexpectedFrame,
    ConnectionNotImplemented,
)

RABBITMQ_ERROR_RULES: tuple[ErrorRule, ...] = (
    # connecting
    ErrorRule(ProbableAuthenticationError, S, ErrorCode.AUTHENTICATION_FAILED, "RabbitMQ refused the login"),
    ErrorRule(
        AuthenticationError, S, ErrorCode.AUTHENTICATION_FAILED, "no authentication mechanism in common"
    ),
    ErrorRule(
        (InvalidFrameError, ConnectionNotAllowed),
        C,
        ErrorCode.INVALID_CONFIG,
        "RabbitMQ refused the virtual host: it does not exist or the user has no permissions on it",
        when=vhost_refused,
    ),
    ErrorRule(IncompatibleProtocolError, C, ErrorCode.INVALID_CONFIG, "the server does not speak AMQP 0-9-1"),
    ErrorRule(
        ssl.SSLCertVerificationError,
        C,
        ErrorCode.INVALID_CONFIG,
        "the broker's TLS certificate was not accepted (check custom_config.ssl_ca_file and ssl_verify)",
    ),
    ErrorRule(ssl.SSLError, C, ErrorCode.INVALID_CONFIG, "the TLS handshake with the broker failed"),
    ErrorRule(ConnectionResourceError, R, ErrorCode.TOO_MANY_CONNECTIONS, "the broker is out of resources"),
    # the broker closed the connection over what was sent (a frame too large, an illegal field): the
    # request's fault, not the broker's, so never retried and never counted by the breaker
    ErrorRule(
        _PROTOCOL_REFUSALS,
        P,
        ErrorCode.INVALID_REQUEST,
        "the broker refused what was sent (an AMQP protocol error) and closed the connection",
    ),
    ErrorRule(ConnectionClosed, T, ErrorCode.CONNECTION_FAILED, "the broker closed the connection"),
    ErrorRule(AMQPConnectionError, T, ErrorCode.CONNECTION_FAILED, "cannot reach RabbitMQ"),
    # channel errors: the channel is gone, the connector replaces it
    # 403 for an `amq.*` name: a naming mistake, not a permission problem
    ErrorRule(
        ChannelAccessRefused, P, ErrorCode.INVALID_IDENTIFIER, "reserved name", text=("reserved prefix",)
    ),
    ErrorRule(ChannelAccessRefused, S, ErrorCode.PERMISSION_DENIED, "permission denied"),
    ErrorRule(ChannelNotFoundEntity, P, ErrorCode.NOT_FOUND, "not found"),
    ErrorRule(ChannelPreconditionFailed, P, ErrorCode.INVALID_REQUEST, "refused by the broker"),
    ErrorRule(
        ChannelLockedResource, P, ErrorCode.CONSTRAINT_VIOLATION, "in exclusive use by another connection"
    ),
    ErrorRule(ChannelClosed, T, ErrorCode.CONNECTION_FAILED, "the broker closed the channel"),
    ErrorRule(ChannelInvalidStateError, T, ErrorCode.CONNECTION_FAILED, "the channel is closed"),
    # publishing
    ErrorRule(PublishError, P, ErrorCode.NOT_FOUND, "unroutable"),
    ErrorRule(
        DeliveryError,
        R,
        ErrorCode.QUEUE_FULL,
        "the broker refused the message (a queue is full with x-overflow=reject-publish, or failed)",
    ),
)


def reply_text(exc: BaseException) -> str | None:
    """The broker's reply text of a channel or connection close ("NOT_FOUND - no queue 'x' ...")."""
    if isinstance(exc, ChannelClosed | ConnectionClosed):
        texts = [a for a in exc.args if isinstance(a, str)]
        return texts[-1][:MAX_REPLY_TEXT] if texts else None
    return None


def _unwrap(exc: BaseException) -> BaseException:
    """aiormq wraps socket and TLS errors in AMQPConnectionError; the TLS cause decides the category."""
    cause = exc.__cause__
    if isinstance(exc, AMQPConnectionError) and isinstance(cause, ssl.SSLError):
        return cause
    return exc


def classify_amqp(exc: BaseException) -> ConnectorError:
    """Translate through `RABBITMQ_ERROR_RULES`, adding what the broker said to request errors."""
    error = classify(_unwrap(exc), RABBITMQ_ERROR_RULES)
    if error is exc or error.category is ErrorCategory.SECURITY:
        return error
    if isinstance(exc, PublishError):
        frame = exc.frame
        error.message = (
            f"unroutable: no queue is bound for routing key {getattr(frame, 'routing_key', '')!r} "
            f"on exchange {getattr(frame, 'exchange', '')!r} (mandatory publish)"
        )
    elif (text := reply_text(exc)) is not None and error.category is not ErrorCategory.TRANSIENT:
        error.message = f"{error.message}: {text}"
    if isinstance(error, ResourceError) and error.retry_after is None:
        error.retry_after = 1.0
    error.args = (error.message,)
    return error


def timeout_error(blocked: bool) -> ConnectorError:
    """A timed-out operation: `resource` when the broker had blocked the connection (memory or disk
    alarm, `connection.blocked`), else `transient`."""
    if blocked:
        return ResourceError(
            "RabbitMQ blocked publishing on this connection (memory or disk alarm); retry later",
            code=ErrorCode.LIMIT_EXCEEDED,
            retry_after=5.0,
        )
    return TransientError("RabbitMQ did not answer in time", code=ErrorCode.TIMEOUT)
