"""The RabbitMQ error table against the exceptions aiormq really raises (texts as RabbitMQ 3.10 has them)."""

from __future__ import annotations

import ssl
from typing import Any, cast

import pytest
from aiormq import spec
from aiormq.abc import DeliveredMessage
from aiormq.exceptions import (
    AMQPConnectionError,
    ChannelAccessRefused,
    ChannelClosed,
    ChannelInvalidStateError,
    ChannelLockedResource,
    ChannelNotFoundEntity,
    ChannelPreconditionFailed,
    ConnectionClosed,
    ConnectionNotAllowed,
    ConnectionResourceError,
    DeliveryError,
    IncompatibleProtocolError,
    InvalidFrameError,
    ProbableAuthenticationError,
    PublishError,
)
from pamqp.header import ContentHeader

from scf.connectors.rabbitmq.errors import (
    RABBITMQ_ERROR_RULES,
    classify_amqp,
    timeout_error,
)

VHOST_CLOSE = "Expected one of ['Connection.OpenOk'], got <Connection.Close object at 0x7f>"
LOGIN_REFUSED = "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN."


def returned(routing_key: str) -> PublishError:
    delivery = spec.Basic.Return(reply_code=312, reply_text="NO_ROUTE", exchange="", routing_key=routing_key)
    # The error reads only the delivery frame; no channel is involved in classifying it.
    message = DeliveredMessage(delivery=delivery, header=ContentHeader(), body=b"", channel=cast(Any, None))
    return PublishError(message, delivery)


def tls_failure() -> AMQPConnectionError:
    try:
        raise AMQPConnectionError(1, "certificate verify failed") from ssl.SSLCertVerificationError(
            1, "certificate verify failed"
        )
    except AMQPConnectionError as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "category", "code"),
    [
        (ProbableAuthenticationError(LOGIN_REFUSED), "security", "AUTHENTICATION_FAILED"),
        (InvalidFrameError(VHOST_CLOSE), "configuration", "INVALID_CONFIG"),
        (ConnectionNotAllowed("NOT_ALLOWED - vhost v not found"), "configuration", "INVALID_CONFIG"),
        (IncompatibleProtocolError("eof"), "configuration", "INVALID_CONFIG"),
        (tls_failure(), "configuration", "INVALID_CONFIG"),
        (ConnectionResourceError("RESOURCE_ERROR"), "resource", "TOO_MANY_CONNECTIONS"),
        (
            ConnectionClosed(320, "CONNECTION_FORCED - broker forced connection closure"),
            "transient",
            "CONNECTION_FAILED",
        ),
        (AMQPConnectionError(111, "Connect call failed ('127.0.0.1', 1)"), "transient", "CONNECTION_FAILED"),
        (
            ChannelAccessRefused("ACCESS_REFUSED - queue name 'amq.x' contains reserved prefix 'amq.*'"),
            "permanent",
            "INVALID_IDENTIFIER",
        ),
        (
            ChannelAccessRefused("ACCESS_REFUSED - access to queue 'q' in vhost 'v' refused for user 'u'"),
            "security",
            "PERMISSION_DENIED",
        ),
        (ChannelNotFoundEntity("NOT_FOUND - no queue 'q' in vhost 'v'"), "permanent", "NOT_FOUND"),
        (
            ChannelPreconditionFailed("PRECONDITION_FAILED - inequivalent arg 'durable'"),
            "permanent",
            "INVALID_REQUEST",
        ),
        (
            ChannelLockedResource("RESOURCE_LOCKED - cannot obtain exclusive access"),
            "permanent",
            "CONSTRAINT_VIOLATION",
        ),
        (ChannelClosed(320, "closed"), "transient", "CONNECTION_FAILED"),
        (ChannelInvalidStateError("<Channel: 1> closed"), "transient", "CONNECTION_FAILED"),
        (returned("nowhere"), "permanent", "NOT_FOUND"),
        (DeliveryError(None, spec.Basic.Nack(delivery_tag=1)), "resource", "QUEUE_FULL"),
        (TimeoutError(), "transient", "TIMEOUT"),
        (ValueError("something else"), "permanent", "INVALID_DATA"),
    ],
)
def test_driver_exceptions_classify_by_the_table(exc: BaseException, category: str, code: str) -> None:
    error = classify_amqp(exc)

    assert (error.category, error.code) == (category, code)


def test_request_errors_carry_the_brokers_words_and_security_errors_do_not() -> None:
    missing = classify_amqp(ChannelNotFoundEntity("NOT_FOUND - no queue 'orders' in vhost 'v'"))
    unroutable = classify_amqp(returned("orders.eu"))
    refused = classify_amqp(
        ChannelAccessRefused("ACCESS_REFUSED - access to queue 'q' refused for user 'bob'")
    )

    assert "no queue 'orders'" in missing.message
    assert "'orders.eu'" in unroutable.message and "mandatory" in unroutable.message
    assert "bob" not in refused.to_info().message


def test_nacks_are_retried_later_and_a_blocked_connection_is_a_resource_error() -> None:
    nack = classify_amqp(DeliveryError(None, spec.Basic.Nack(delivery_tag=1)))
    blocked, slow = timeout_error(blocked=True), timeout_error(blocked=False)

    assert nack.retryable and nack.retry_after == 1.0
    assert (blocked.category, blocked.code, blocked.retry_after) == ("resource", "LIMIT_EXCEEDED", 5.0)
    assert (slow.category, slow.code) == ("transient", "TIMEOUT")


def test_no_row_is_shadowed_by_an_earlier_broader_row() -> None:
    """A row narrowed by `text` or `when` may precede a broader one; an unconditional row may not."""
    rules = RABBITMQ_ERROR_RULES
    for position, rule in enumerate(rules):
        kinds = rule.exception if isinstance(rule.exception, tuple) else (rule.exception,)
        for earlier in rules[:position]:
            if earlier.text or earlier.when is not None:
                continue
            assert not any(issubclass(kind, earlier.exception) for kind in kinds), rule
