"""The PostgreSQL connector against the standard contract (real PostgreSQL on 127.0.0.1:5432)."""

from __future__ import annotations

import pytest

from scf.schemas.connection import ServiceConnection
from tests.contract.suite import CANARY_SECRET, ConnectorContract
from tests.support.services import require


@pytest.fixture(scope="module", autouse=True)
def postgres_is_up() -> None:
    require("PostgreSQL", "127.0.0.1", 5432)


BASE = {"service_type": "postgresql", "service_name": "contract_pg", "host": "127.0.0.1", "database": "test"}


class TestPostgresContract(ConnectorContract):
    @pytest.fixture
    def connection(self) -> ServiceConnection:
        return ServiceConnection.model_validate({**BASE, "username": "postgres"})

    @pytest.fixture
    def unreachable(self) -> ServiceConnection | None:
        return ServiceConnection.model_validate(
            {**BASE, "port": 1, "username": "postgres", "connection_timeout": 2, "retry_attempts": 0}
        )

    @pytest.fixture
    def bad_credentials(self) -> ServiceConnection | None:
        # Trust authentication ignores passwords here, but an unknown role is refused at login.
        return ServiceConnection.model_validate(
            {**BASE, "username": "no_such_role_contract", "password": CANARY_SECRET}
        )
