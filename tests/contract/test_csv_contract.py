"""The CSV connector against the standard contract (it has no server: network cases skip)."""

from __future__ import annotations

import pytest

from scf.schemas.connection import ServiceConnection
from tests.contract.suite import ConnectorContract


class TestCsvContract(ConnectorContract):
    @pytest.fixture
    def connection(self) -> ServiceConnection:
        return ServiceConnection(service_type="csv", service_name="contract_csv")

    @pytest.fixture
    def unreachable(self) -> ServiceConnection | None:
        return None

    @pytest.fixture
    def bad_credentials(self) -> ServiceConnection | None:
        return None

    no_auth_reason = "CSV parsing has no credentials to refuse"
