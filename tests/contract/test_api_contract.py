"""The API connector against the standard contract, on a local HTTP server started by the tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scf.schemas.connection import ServiceConnection
from tests.contract.suite import CANARY_SECRET, ConnectorContract
from tests.support.http_servers import RunningApi, running_api


@pytest.fixture(scope="module")
def api() -> Iterator[RunningApi]:
    yield from running_api()


class TestApiContract(ConnectorContract):
    @pytest.fixture
    def connection(self, api: RunningApi) -> ServiceConnection:
        return ServiceConnection.parse(
            {
                "service_type": "api",
                "service_name": "contract_api",
                "custom_config": {"base_url": api.url, "allowed_hosts": [api.server.host_port]},
            }
        )

    @pytest.fixture
    def unreachable(self) -> ServiceConnection | None:
        return ServiceConnection.parse(
            {
                "service_type": "api",
                "service_name": "contract_api_nowhere",
                "connection_timeout": 2,
                "retry_attempts": 0,
                "custom_config": {
                    "base_url": "http://127.0.0.1:1",
                    "allowed_hosts": ["127.0.0.1"],
                    "timeouts": {"connect": 2, "read": 2, "total": 5},
                },
            }
        )

    @pytest.fixture
    def bad_credentials(self, api: RunningApi) -> ServiceConnection | None:
        # the health path demands basic auth, and this password is not the demo's
        return ServiceConnection.parse(
            {
                "service_type": "api",
                "service_name": "contract_api_refused",
                "username": api.api.creds.username,
                "password": CANARY_SECRET,
                "custom_config": {
                    "base_url": api.url,
                    "allowed_hosts": [api.server.host_port],
                    "health_path": "/auth/basic",
                },
            }
        )
