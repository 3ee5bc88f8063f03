"""The Elasticsearch connector against the standard contract, on a noida-db server started for the session."""

from __future__ import annotations

import pytest

from scf.schemas.connection import ServiceConnection
from tests.contract.suite import ConnectorContract
from tests.support.noida import NoidaServer, noida_server

__all__ = ["noida_server"]  # the session fixture, shared with the other Elasticsearch test modules


class TestElasticsearchContract(ConnectorContract):
    no_auth_reason = (
        "noida-db enforces no authentication; a refused login is covered by the integration tests "
        "through an authenticating gateway and by tests/unit/test_elasticsearch_errors.py"
    )

    @pytest.fixture
    def connection(self, noida_server: NoidaServer) -> ServiceConnection:
        return ServiceConnection.model_validate(
            {
                "service_type": "elasticsearch",
                "service_name": "contract_es",
                "custom_config": {"hosts": [noida_server.url]},
            }
        )

    @pytest.fixture
    def unreachable(self) -> ServiceConnection | None:
        return ServiceConnection.model_validate(
            {
                "service_type": "elasticsearch",
                "service_name": "contract_es_nowhere",
                "connection_timeout": 2,
                "retry_attempts": 0,
                "custom_config": {"hosts": ["http://127.0.0.1:1"]},
            }
        )

    @pytest.fixture
    def bad_credentials(self) -> ServiceConnection | None:
        return None
