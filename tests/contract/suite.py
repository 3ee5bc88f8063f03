"""The standard suite every connector runs (one contract, one suite: docs/architecture.md).

Subclass `ConnectorContract` in a `test_<type>_contract.py` module and provide the fixtures. A type with
no network (CSV) or a stand-in server without authentication returns None from the matching fixture,
and the test skips with that reason stated.
"""

from __future__ import annotations

import pytest

from scf.connectors.base import ServiceConnector
from scf.connectors.registry import connector_class
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConnectorError, ErrorCategory, PermanentError
from scf.schemas.operation import OperationRequest

CANARY_SECRET = "contract-canary-secret-4b1d"


def build(connection: ServiceConnection) -> ServiceConnector:
    return connector_class(connection.service_type)(connection)


class ConnectorContract:
    #: why `unreachable` / `bad_credentials` may be None for this type
    no_network_reason = "this connector type makes no network connection"
    no_auth_reason = "the server here accepts any credentials"

    @pytest.fixture
    def connection(self) -> ServiceConnection:
        raise NotImplementedError

    @pytest.fixture
    def unreachable(self) -> ServiceConnection | None:
        """A config pointing at a port nothing listens on, with short timeouts and no retries."""
        raise NotImplementedError

    @pytest.fixture
    def bad_credentials(self) -> ServiceConnection | None:
        """A config the server refuses for its credentials; its password is `CANARY_SECRET`."""
        raise NotImplementedError

    async def test_check_passes_against_the_real_service(self, connection: ServiceConnection) -> None:
        connector = build(connection)
        try:
            result = await connector.check()
        finally:
            await connector.close()

        assert result.status == "success", result.error
        assert result.test_results["connection_test"] == "passed"
        assert result.service_name == connection.service_name

    async def test_unreachable_host_is_a_transient_error(self, unreachable: ServiceConnection | None) -> None:
        if unreachable is None:
            pytest.skip(self.no_network_reason)
        connector = build(unreachable)
        try:
            with pytest.raises(ConnectorError) as caught:
                await connector.open()
            result = await connector.check()
        finally:
            await connector.close()

        assert caught.value.category is ErrorCategory.TRANSIENT
        assert caught.value.retryable
        assert result.status == "failed"
        assert result.test_results["connection_test"] == "failed"

    async def test_unknown_operation_is_a_permanent_error(self, connection: ServiceConnection) -> None:
        connector = build(connection)
        try:
            with pytest.raises(PermanentError) as caught:
                await connector.execute(OperationRequest(operation="no_such_operation"))
        finally:
            await connector.close()

        assert caught.value.code == "UNKNOWN_OPERATION"
        assert not caught.value.retryable

    async def test_bad_credentials_are_a_security_error_without_the_secret(
        self, bad_credentials: ServiceConnection | None
    ) -> None:
        if bad_credentials is None:
            pytest.skip(self.no_auth_reason)
        connector = build(bad_credentials)
        try:
            with pytest.raises(ConnectorError) as caught:
                await connector.open()
                await connector.check()  # some services accept the connection and refuse the first call
                raise AssertionError("the service accepted bad credentials")
        finally:
            await connector.close()

        assert caught.value.category is ErrorCategory.SECURITY
        assert not caught.value.retryable
        assert CANARY_SECRET not in caught.value.to_info().model_dump_json()

    async def test_close_is_idempotent_and_never_raises(self, connection: ServiceConnection) -> None:
        connector = build(connection)
        await connector.close()  # before open
        await connector.open()
        await connector.close()
        await connector.close()

        assert not connector.is_open

    async def test_a_closed_connector_opens_again_on_use(self, connection: ServiceConnection) -> None:
        connector = build(connection)
        await connector.open()
        await connector.close()
        try:
            result = await connector.check()
        finally:
            await connector.close()

        assert result.status == "success", result.error

    async def test_the_spec_api_reports_failures_as_results(self, connection: ServiceConnection) -> None:
        connector = build(connection)
        try:
            result = await connector.execute_operation({"operation": "no_such_operation"})
        finally:
            await connector.close()

        assert result.status == "failed"
        assert result.error is not None and result.error.code == "UNKNOWN_OPERATION"
