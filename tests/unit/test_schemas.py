"""The wire contract: the spec's bodies parse as written, unknown fields are refused, secrets stay masked."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from scf.schemas.connection import ServiceConnection
from scf.schemas.control import ConnectorMetrics
from scf.schemas.errors import ConfigurationError, ErrorCategory, PermanentError, SecurityError
from scf.schemas.operation import ConnectionTestResult, OperationRequest, OperationResult
from scf.schemas.secrets import MASK, redact
from tests.support.spec import SPEC_CREATE_BODY, SPEC_INSERT_REQUEST, SPEC_METRICS_KEYS


def test_spec_create_body_parses_with_every_field() -> None:
    connection = ServiceConnection.parse(SPEC_CREATE_BODY)

    assert connection.service_name == "analytics_db"
    assert connection.secret_password() == "secure_password"
    assert connection.custom_config == {"schema": "public", "auto_commit": True}


def test_public_view_masks_the_password_and_secret_custom_keys() -> None:
    custom = {"connection_string": "postgresql://u:hunter2@db/x", "schema": "public"}
    body = {**SPEC_CREATE_BODY, "custom_config": custom}
    view = ServiceConnection.parse(body).public_view()

    assert view["password"] == MASK
    assert "hunter2" not in repr(view)
    assert "secure_password" not in repr(view)
    assert view["custom_config"]["schema"] == "public"


def test_repr_of_a_connection_shows_no_secret() -> None:
    connection = ServiceConnection.parse(
        {**SPEC_CREATE_BODY, "custom_config": {"connection_string": "postgres://a:zz9@h/d"}}
    )

    assert "secure_password" not in repr(connection)
    assert "zz9" not in repr(connection)


@pytest.mark.parametrize(
    "change",
    [
        {"surprise": 1},
        {"service_type": "oracle"},
        {"service_name": "bad name with spaces"},
        {"service_name": "../etc"},
        {"port": 70000},
        {"connection_pool_size": 0},
        {"custom_config": {"schema": "public; drop table x"}},
        {"custom_config": {"not_a_setting": True}},
        {"host": None},
    ],
)
def test_bad_create_bodies_are_configuration_errors(change: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ServiceConnection.parse({**SPEC_CREATE_BODY, **change})

    assert caught.value.code == "INVALID_CONFIG"
    assert "secure_password" not in caught.value.message


def test_spec_execute_body_parses_and_connection_id_is_the_service_name() -> None:
    request = OperationRequest.model_validate(SPEC_INSERT_REQUEST)

    assert request.service_name == "analytics_db"
    assert request.parameters == {"batch_size": 100, "on_conflict": "update"}


def test_unknown_top_level_fields_of_a_request_are_refused() -> None:
    with pytest.raises(ValidationError):
        OperationRequest.model_validate({**SPEC_INSERT_REQUEST, "extra": True})


@pytest.mark.parametrize("timeout", [0, -1, 3601])
def test_timeouts_out_of_range_are_refused(timeout: float) -> None:
    with pytest.raises(ValidationError):
        OperationRequest.model_validate({**SPEC_INSERT_REQUEST, "timeout": timeout})


def test_with_defaults_assigns_an_operation_id_once() -> None:
    request = OperationRequest.model_validate(SPEC_INSERT_REQUEST).with_defaults()

    assert request.operation_id is not None and request.operation_id.startswith("op_")
    assert request.with_defaults().operation_id == request.operation_id


def test_result_shapes_match_the_spec() -> None:
    ok = OperationResult(
        operation_id="op_abc123",
        status="success",
        records_processed=1,
        records_affected=1,
        execution_time=0.245,
        result_data={"inserted_rows": 1, "updated_rows": 0},
    )
    failed = OperationResult.failed("op_x", PermanentError("bad data"))
    tested = ConnectionTestResult(service_name="analytics_db", status="success", response_time=0.123)
    metrics = ConnectorMetrics(service_name="analytics_db")

    assert set(ok.model_dump()) >= {
        "operation_id",
        "status",
        "records_processed",
        "records_affected",
        "execution_time",
        "result_data",
    }
    assert failed.error is not None and failed.error.category is ErrorCategory.PERMANENT
    assert set(tested.test_results) == {"connection_test", "authentication_test", "permissions_test"}
    assert set(metrics.model_dump()) >= SPEC_METRICS_KEYS


def test_security_errors_reach_callers_with_a_generic_message() -> None:
    info = SecurityError("password authentication failed for user analyst").to_info()

    assert info.message == "access denied"
    assert info.retryable is False


def test_redact_masks_nested_secret_keys_and_url_passwords() -> None:
    event = {
        "config": {"api_key": "k-123", "nested": [{"token": "t-456"}]},
        "url": "amqp://guest:g-789@host/",
    }

    rendered = repr(redact(event))

    assert not any(secret in rendered for secret in ("k-123", "t-456", "g-789"))
    assert "amqp://guest:" in rendered
