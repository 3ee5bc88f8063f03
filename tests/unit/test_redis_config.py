"""`RedisConfig` and the pool settings built from it: addresses, TLS, database index, the key prefix."""

from __future__ import annotations

from typing import Any

import pytest

from scf.connectors.redis.settings import pool_settings
from scf.schemas.configs.redis import RedisConfig, parse_url
from scf.schemas.connection import ServiceConnection
from scf.schemas.errors import ConfigurationError

SECRET = "s3cr3t-in-url"


def connection(**fields: Any) -> ServiceConnection:
    body = {"service_type": "redis", "service_name": "cache", "host": "127.0.0.1", **fields}
    return ServiceConnection.parse(body)


def refusal(**fields: Any) -> str:
    with pytest.raises(ConfigurationError) as caught:
        connection(**fields)
    return caught.value.message


def config_of(conn: ServiceConnection) -> RedisConfig:
    return RedisConfig.model_validate(conn.custom_config)


def test_the_default_prefix_is_the_service_name() -> None:
    conn = connection()

    assert config_of(conn).prefix_for(conn.service_name) == "cache:"


@pytest.mark.parametrize("prefix", ["scf:", "scf:mine:", "s", "sc", "scf", ""])
def test_a_prefix_that_could_reach_the_fleets_own_keys_is_refused(prefix: str) -> None:
    assert "key_prefix" in refusal(custom_config={"key_prefix": prefix})


def test_a_service_named_scf_must_choose_its_own_prefix() -> None:
    assert "set custom_config.key_prefix" in refusal(service_name="scf")
    assert connection(service_name="scf", custom_config={"key_prefix": "scf-app:"}).service_name == "scf"


def test_a_prefix_with_whitespace_is_refused() -> None:
    assert "whitespace" in refusal(custom_config={"key_prefix": "my app:"})


def test_a_url_is_an_alternative_to_host_and_port() -> None:
    conn = connection(host=None, custom_config={"url": f"rediss://worker:{SECRET}@cache.example:6380/3"})
    settings = pool_settings(conn, config_of(conn))

    assert settings.tls and settings.kwargs["ssl_cert_reqs"] == "required"
    assert (settings.kwargs["host"], settings.kwargs["port"], settings.kwargs["db"]) == (
        "cache.example",
        6380,
        3,
    )
    assert (settings.kwargs["username"], settings.kwargs["password"]) == ("worker", SECRET)
    assert settings.where == "rediss://cache.example:6380/3"


def test_the_password_in_a_url_never_shows() -> None:
    conn = connection(host=None, custom_config={"url": f"redis://:{SECRET}@cache.example"})
    settings = pool_settings(conn, config_of(conn))

    assert SECRET not in repr(config_of(conn))
    assert SECRET not in repr(settings)
    assert SECRET not in str(conn.public_view())


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"host": None}, "needs host or custom_config.url"),
        ({"custom_config": {"url": "redis://other"}}, "not both"),
        ({"host": None, "custom_config": {"url": "http://cache"}}, "redis:// or rediss://"),
        ({"host": None, "custom_config": {"url": "redis://cache?db=2"}}, "query string"),
        ({"host": None, "custom_config": {"url": "redis://cache/x"}}, "database index"),
        (
            {"host": None, "password": "p", "custom_config": {"url": "redis://:q@cache"}},
            "password is given both",
        ),
        ({"host": None, "ssl_enabled": True, "custom_config": {"url": "redis://cache"}}, "use rediss://"),
        ({"database": "2", "custom_config": {"db": 3}}, "given twice"),
        ({"database": "two"}, "database index"),
        ({"custom_config": {"ssl_ca_file": "/ca.pem"}}, "need TLS"),
        (
            {"ssl_enabled": True, "custom_config": {"ssl_certfile": "/c.pem"}},
            "both ssl_certfile and ssl_keyfile",
        ),
        ({"custom_config": {"db": 1024}}, "db"),
        ({"custom_config": {"dbs": 1}}, "Extra inputs"),
    ],
)
def test_contradictory_settings_are_refused(fields: dict[str, Any], problem: str) -> None:
    assert problem in refusal(**fields)


def test_the_database_index_comes_from_db_then_url_then_database() -> None:
    assert config_of(c := connection(custom_config={"db": 4})).db_for(c) == 4
    assert config_of(c := connection(host=None, custom_config={"url": "redis://h/5"})).db_for(c) == 5
    assert config_of(c := connection(database="6")).db_for(c) == 6
    assert config_of(c := connection()).db_for(c) == 0


def test_pool_defaults_follow_the_connection() -> None:
    conn = connection(connection_pool_size=7, connection_timeout=4, username="app", password="pw")
    settings = pool_settings(conn, config_of(conn))

    assert (settings.max_connections, settings.socket_timeout, settings.wait_timeout) == (7, 4, 4)
    assert (settings.kwargs["username"], settings.kwargs["password"], settings.tls) == ("app", "pw", False)
    assert "ssl_cert_reqs" not in settings.kwargs


def test_tls_can_skip_verification_when_asked() -> None:
    conn = connection(ssl_enabled=True, custom_config={"ssl_verify": False, "max_connections": 3})
    settings = pool_settings(conn, config_of(conn))

    assert settings.kwargs["ssl_cert_reqs"] == "none" and settings.kwargs["ssl_check_hostname"] is False
    assert settings.max_connections == 3


def test_parse_url_splits_ipv6_and_quoted_credentials() -> None:
    address = parse_url("redis://us%40er:p%3Ass@[::1]:7000")

    assert (address.host, address.port, address.username, address.password) == ("::1", 7000, "us@er", "p:ss")
