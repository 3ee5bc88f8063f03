"""The RabbitMQ connector against the standard contract (real RabbitMQ on 127.0.0.1:5672, own vhost)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scf.schemas.connection import ServiceConnection
from tests.contract.suite import CANARY_SECRET, ConnectorContract
from tests.support.services import Vhost, create_vhost, delete_vhost, require


@pytest.fixture(scope="module")
def vhost() -> Iterator[Vhost]:
    require("RabbitMQ", "127.0.0.1", 5672)
    created = create_vhost()
    yield created
    delete_vhost(created)


def base(vhost: Vhost, name: str) -> dict[str, object]:
    return {
        "service_type": "rabbitmq",
        "service_name": name,
        "host": "127.0.0.1",
        "custom_config": {"vhost": vhost.name},
    }


class TestRabbitMQContract(ConnectorContract):
    @pytest.fixture
    def connection(self, vhost: Vhost) -> ServiceConnection:
        return ServiceConnection.model_validate(
            {**base(vhost, "contract_rabbitmq"), "username": "guest", "password": "guest"}
        )

    @pytest.fixture
    def unreachable(self, vhost: Vhost) -> ServiceConnection | None:
        return ServiceConnection.model_validate(
            {
                **base(vhost, "contract_rabbitmq_nowhere"),
                "port": 1,
                "connection_timeout": 2,
                "retry_attempts": 0,
            }
        )

    @pytest.fixture
    def bad_credentials(self, vhost: Vhost) -> ServiceConnection | None:
        return ServiceConnection.model_validate(
            {**base(vhost, "contract_rabbitmq_bad_login"), "username": "guest", "password": CANARY_SECRET}
        )
