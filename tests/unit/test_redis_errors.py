"""The Redis error table: each exception redis-py raises (with the text the server or pool gives it) lands
in the right category. The real server's answers are checked in tests/integration/test_redis_connector.py.
"""

from __future__ import annotations

import pytest
from redis import exceptions as rx

from scf.connectors.base import classify
from scf.connectors.redis.errors import REDIS_ERROR_RULES, refine
from scf.schemas.errors import ConnectorError, ErrorCategory


def translate(exc: BaseException) -> ConnectorError:
    return refine(classify(exc, REDIS_ERROR_RULES), exc)


@pytest.mark.parametrize(
    ("exc", "category", "code"),
    [
        (rx.AuthenticationError("invalid username-password pair"), "security", "AUTHENTICATION_FAILED"),
        (rx.AuthenticationWrongNumberOfArgsError("wrong number"), "security", "AUTHENTICATION_FAILED"),
        (
            rx.NoPermissionError("this user has no permissions to run the 'set' command"),
            "security",
            "PERMISSION_DENIED",
        ),
        (rx.ConnectionError("max number of clients reached"), "resource", "TOO_MANY_CONNECTIONS"),
        (rx.ConnectionError("No connection available."), "resource", "TOO_MANY_CONNECTIONS"),
        (
            rx.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
            "resource",
            "LIMIT_EXCEEDED",
        ),
        (
            rx.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused."),
            "transient",
            "CONNECTION_FAILED",
        ),
        (rx.TimeoutError("Timeout reading from socket"), "transient", "TIMEOUT"),
        (rx.BusyLoadingError("Redis is loading the dataset in memory"), "transient", "CONNECTION_FAILED"),
        (rx.ReadOnlyError("You can't write against a read only replica."), "transient", "CONNECTION_FAILED"),
        (rx.ResponseError("BUSY Redis is busy running a script."), "transient", "CONNECTION_FAILED"),
        (
            rx.ConnectionError("Error 1 connecting: [SSL: CERTIFICATE_VERIFY_FAILED]"),
            "configuration",
            "INVALID_CONFIG",
        ),
        (rx.ResponseError("DB index is out of range"), "configuration", "INVALID_CONFIG"),
        (
            rx.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
            "permanent",
            "INVALID_DATA",
        ),
        (rx.ResponseError("value is not an integer or out of range"), "permanent", "INVALID_DATA"),
        (rx.ResponseError("syntax error"), "permanent", "QUERY_FAILED"),
        (rx.DataError("Invalid input of type: 'dict'"), "permanent", "INVALID_DATA"),
        (TimeoutError(), "transient", "TIMEOUT"),
    ],
)
def test_each_redis_error_lands_in_its_category(exc: BaseException, category: str, code: str) -> None:
    error = translate(exc)

    assert (error.category.value, error.code) == (category, code)


def test_authentication_is_checked_before_connection_trouble() -> None:
    # redis-py makes AuthenticationError a ConnectionError: the order of the table decides.
    assert issubclass(rx.AuthenticationError, rx.ConnectionError)
    assert translate(rx.AuthenticationError("x")).category is ErrorCategory.SECURITY


def test_refused_commands_carry_the_servers_words_but_security_errors_do_not() -> None:
    wrongtype = translate(
        rx.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")
    )
    denied = translate(rx.NoPermissionError("this user has no permissions to access one of the keys"))

    assert "WRONGTYPE" in wrongtype.message
    assert denied.to_info().message == "access denied"
    assert "keys" not in denied.message
