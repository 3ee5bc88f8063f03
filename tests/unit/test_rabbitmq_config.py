"""The RabbitMQ connector's configuration: `custom_config` rules and where and how it connects."""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from scf.connectors.rabbitmq.settings import connect_settings, tls_context
from scf.schemas.configs.rabbitmq import RabbitMQConfig
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConfigurationError


def connection(**fields: Any) -> ServiceConnection:
    return ServiceConnection.parse({"service_type": "rabbitmq", "service_name": "mq", **fields})


def config(**fields: Any) -> RabbitMQConfig:
    return RabbitMQConfig.model_validate(fields)


def test_a_connector_needs_a_host_or_a_url() -> None:
    with pytest.raises(ConfigurationError, match=r"needs host or custom_config\.url"):
        connection()


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"custom_config": {"url": "http://broker:5672/"}}, "amqp:// or amqps://"),
        ({"custom_config": {"url": "amqp://broker/?heartbeat=5"}}, "query string"),
        ({"host": "broker", "custom_config": {"url": "amqp://broker/"}}, "not both"),
        (
            {"username": "u", "custom_config": {"url": "amqp://a:b@broker/"}},
            "credentials are given both",
        ),
        ({"ssl_enabled": True, "custom_config": {"url": "amqp://broker/"}}, "use amqps://"),
        ({"custom_config": {"url": "amqp://broker/v1", "vhost": "v2"}}, "vhost is given both"),
        ({"host": "broker", "custom_config": {"vhost": "v\x00"}}, "control characters"),
        ({"host": "broker", "custom_config": {"max_bacth": 5}}, "max_bacth"),
    ],
)
def test_contradictory_or_misspelt_configs_are_refused(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        connection(**fields)


def test_settings_from_host_default_to_guest_on_the_plain_port() -> None:
    settings = connect_settings(connection(host="127.0.0.1"), config(vhost="tenant-a"))

    assert (settings.host, settings.port, settings.vhost, settings.tls) == (
        "127.0.0.1",
        5672,
        "tenant-a",
        False,
    )
    assert (settings.login, settings.password) == ("guest", "guest")
    assert settings.name == "scf-connector:mq"


def test_settings_from_an_amqps_url_take_its_credentials_and_vhost_and_never_show_them() -> None:
    conn = connection(custom_config={"url": "amqps://alice:s%40cret@broker.example/orders%2Fv1"})
    settings = connect_settings(conn, RabbitMQConfig.model_validate(conn.custom_config))

    assert (settings.port, settings.tls, settings.vhost) == (5671, True, "orders/v1")
    assert (settings.login, settings.password) == ("alice", "s@cret")
    assert "s@cret" not in repr(settings) and "s@cret" not in settings.where
    assert "s%40cret" not in repr(conn)


def test_a_ca_file_without_tls_and_an_unreadable_ca_file_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="TLS is off"):
        connect_settings(connection(host="h"), config(ssl_ca_file="/ca.pem"))
    settings = connect_settings(connection(host="h", ssl_enabled=True), config(ssl_ca_file="/no/such/ca.pem"))

    with pytest.raises(ConfigurationError, match="ssl_ca_file"):
        tls_context(settings)


def test_tls_verification_can_be_turned_off_explicitly() -> None:
    plain = connect_settings(connection(host="h"), config())
    unverified = connect_settings(connection(host="h", ssl_enabled=True), config(ssl_verify=False))
    context = tls_context(unverified)

    assert tls_context(plain) is None
    assert context is not None and context.verify_mode is ssl.CERT_NONE and not context.check_hostname


def test_a_failover_endpoint_of_a_url_config_connects_to_the_backup_host() -> None:
    conn = connection(
        failover_hosts=["mq-2.example:5673"],
        custom_config={"url": "amqp://alice:pw@mq-1.example/orders"},
    )
    primary, backup = (
        connect_settings(c, RabbitMQConfig.model_validate(c.custom_config)) for c in conn.endpoints()
    )

    assert (primary.host, primary.port) == ("mq-1.example", 5672)
    assert (backup.host, backup.port, backup.vhost, backup.login) == ("mq-2.example", 5673, "orders", "alice")
